#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The edge seen from outside, over raw sockets: malformed and borderline requests (each
//! with a pipelined probe behind it) against a logging upstream, pipelining, timeouts,
//! connection caps, responses with bad framing, and memory per connection under floods.

mod support;

#[path = "edge/corpus.rs"]
mod corpus;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use support::logging::LoggingUpstream;
use support::Gateway;

fn routes(up: &LoggingUpstream) -> String {
    format!(
        r#"
[[services]]
name = "log"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "public"
path = "/public/"
service = "log"
[[routes]]
name = "admin"
path = "/admin/"
service = "log"
[[routes]]
name = "all"
path = "/"
service = "log"
"#,
        up.addr
    )
}

fn gateway(up: &LoggingUpstream, edge: &str) -> Gateway {
    Gateway::start(&format!("[edge]\n{edge}\n{}", routes(up)))
}

/// One response read off a raw connection.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `bytes` on a new connection and reads responses until the connection closes or
/// stays quiet for `quiet`. Returns the responses and whether the gateway closed.
fn exchange(addr: &str, bytes: &[u8], quiet: Duration) -> (Vec<Response>, bool) {
    exchange_after_head(addr, bytes, quiet, false)
}

/// As [`exchange`]; `head_first`: the first request is a HEAD (its answer has no body).
fn exchange_after_head(
    addr: &str,
    bytes: &[u8],
    quiet: Duration,
    head_first: bool,
) -> (Vec<Response>, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(quiet)).unwrap();
    let _ = s.write_all(bytes);
    let mut raw = Vec::new();
    let mut closed = false;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut chunk = [0u8; 8192];
    while Instant::now() < deadline {
        match s.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    (parse_responses(&raw, head_first), closed)
}

fn parse_responses(mut raw: &[u8], mut head_first: bool) -> Vec<Response> {
    let mut out = Vec::new();
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        let Ok(httparse::Status::Complete(len)) = r.parse(raw) else {
            return out;
        };
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let status = r.code.unwrap_or(0);
        let n: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        let n = if std::mem::take(&mut head_first) {
            0
        } else {
            n
        };
        let end = (len + n).min(raw.len());
        out.push(Response {
            status,
            headers,
            body: raw[len..end].to_vec(),
        });
        raw = &raw[end..];
    }
}

fn probe(name: &str, host: &str) -> Vec<u8> {
    format!("GET /probe/{name} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_is_refused_or_forwarded_exactly_once() {
    let up = LoggingUpstream::start().await;
    let gw = gateway(&up, "header_read_timeout_ms = 2000");
    let host = "edge.test";
    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    for case in corpus::CASES {
        assert!(names.insert(case.name), "duplicate case {}", case.name);
        up.clear();
        let mut bytes = corpus::request_for(case, host);
        bytes.extend(probe(case.name, host));
        let addr = gw.addr();
        let head_first = case.request.starts_with(b"HEAD ");
        let (responses, closed) = tokio::task::spawn_blocking(move || {
            exchange_after_head(&addr, &bytes, Duration::from_millis(700), head_first)
        })
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let seen = up.requests();
        let probe_path = format!("/probe/{}", case.name);
        let probes = seen.iter().filter(|r| r.target == probe_path).count();
        let others: Vec<&support::logging::Recorded> =
            seen.iter().filter(|r| r.target != probe_path).collect();
        if seen.iter().any(|r| r.target == corpus::SMUGGLED_PATH) {
            failures.push(format!(
                "{}: a smuggled request reached the upstream",
                case.name
            ));
        }
        let first = responses.first().map_or(0, |r| r.status);
        let verdict = match &case.expect {
            corpus::Expect::Refused { status, closes } => {
                let mut problems = Vec::new();
                if first != *status {
                    problems.push(format!("answered {first}, want {status}"));
                }
                if !others.is_empty() {
                    problems.push(format!("reached the upstream: {:?}", others));
                }
                if *closes
                    && responses
                        .first()
                        .and_then(|r| r.header("connection"))
                        .is_none_or(|v| !v.eq_ignore_ascii_case("close"))
                {
                    problems.push("the refusal does not say Connection: close".into());
                }
                if *closes && (!closed || responses.len() > 1 || probes > 0) {
                    problems.push(format!(
                        "connection not closed after the refusal ({} responses, {probes} probes upstream)",
                        responses.len()
                    ));
                }
                if !*closes && probes != 1 {
                    problems.push("the probe behind it was not answered".into());
                }
                problems
            }
            corpus::Expect::Forwarded { method, path, body } => {
                let mut problems = Vec::new();
                if others.len() != 1 {
                    problems.push(format!("forwarded {} times: {others:?}", others.len()));
                } else {
                    let r = others[0];
                    if r.method != *method || r.target != *path {
                        problems.push(format!("upstream saw {} {}", r.method, r.target));
                    }
                    if let Some(body) = body {
                        if r.body != *body {
                            problems.push(format!(
                                "upstream body {:?}",
                                String::from_utf8_lossy(&r.body)
                            ));
                        }
                    }
                }
                if first != 200 {
                    problems.push(format!("answered {first}"));
                }
                if probes != 1 || responses.len() < 2 {
                    problems.push(format!(
                        "the probe behind it was not answered ({} responses)",
                        responses.len()
                    ));
                }
                problems
            }
        };
        if !verdict.is_empty() {
            failures.push(format!(
                "{} ({}): {}",
                case.name,
                case.source,
                verdict.join("; ")
            ));
        }
    }
    eprintln!(
        "{} corpus cases, {} failed",
        corpus::CASES.len(),
        failures.len()
    );
    assert!(corpus::CASES.len() >= 60, "corpus too small");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let up = LoggingUpstream::start().await;
    let gw = gateway(&up, "");
    let mut bytes = Vec::new();
    for i in 0..50 {
        bytes.extend(format!("GET /p/{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
    }
    bytes.extend(b"POST /p/body HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    bytes.extend(b"POST /p/chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    bytes.extend(b"GET /p/last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let addr = gw.addr();
    let (responses, closed) =
        tokio::task::spawn_blocking(move || exchange(&addr, &bytes, Duration::from_secs(2)))
            .await
            .unwrap();
    assert!(closed);
    assert_eq!(responses.len(), 53);
    let targets: Vec<String> = responses
        .iter()
        .map(|r| {
            support::json(&String::from_utf8_lossy(&r.body))["target"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let want: Vec<String> = (0..50)
        .map(|i| format!("/p/{i}"))
        .chain(["/p/body".into(), "/p/chunked".into(), "/p/last".into()])
        .collect();
    assert_eq!(targets, want);
    let seen = up.requests();
    assert_eq!(seen[50].body, b"hello");
    assert_eq!(seen[51].body, b"abc");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_get_408_and_idle_connections_close() {
    let up = LoggingUpstream::start().await;
    let gw = gateway(
        &up,
        "header_read_timeout_ms = 800\nkeepalive_timeout_ms = 600",
    );
    let addr = gw.addr();
    let (started, responses, closed) = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let (r, c) = exchange(
            &addr,
            b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ",
            Duration::from_secs(3),
        );
        (started.elapsed(), r, c)
    })
    .await
    .unwrap();
    assert_eq!(
        responses.first().map(|r| r.status),
        Some(408),
        "{responses:?}"
    );
    assert!(closed);
    assert!(started >= Duration::from_millis(700), "{started:?}");
    assert!(up.requests().is_empty());

    // A kept-alive connection is closed once idle longer than keepalive_timeout_ms.
    let addr = gw.addr();
    let idle_closed = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // The whole response first: head and body may come in separate segments.
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while parse_responses(&raw, false).first().is_none_or(|r| {
            r.header("content-length").and_then(|v| v.parse().ok()) != Some(r.body.len())
        }) {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed before the response was complete");
            raw.extend_from_slice(&buf[..n]);
        }
        let t = Instant::now();
        let n = s.read(&mut buf).unwrap_or(1);
        (n, t.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(idle_closed.0, 0, "idle connection not closed");
    assert!(
        idle_closed.1 < Duration::from_millis(2500),
        "{:?}",
        idle_closed.1
    );
    // A silent new connection is closed after the header timeout.
    let addr = gw.addr();
    let silent = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 16];
        s.read(&mut buf).unwrap_or(1)
    })
    .await
    .unwrap();
    assert_eq!(silent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_with_bad_framing_become_502() {
    let up = LoggingUpstream::start().await;
    let gw = gateway(&up, "");
    for path in ["/bad/te-gzip", "/bad/te-twice", "/bad/cl-differ"] {
        let addr = gw.addr();
        let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
        let (responses, _) =
            tokio::task::spawn_blocking(move || exchange(&addr, &req, Duration::from_millis(700)))
                .await
                .unwrap();
        assert_eq!(
            responses.first().map(|r| r.status),
            Some(502),
            "{path}: {responses:?}"
        );
        let body = String::from_utf8_lossy(&responses[0].body).to_string();
        assert!(
            !body.contains("\"n\""),
            "{path}: the upstream's body was relayed: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_address_cap_refuses_the_101st_while_another_address_is_served() {
    raise_fd_limit();
    let up = LoggingUpstream::start().await;
    let gw = gateway(
        &up,
        "max_connections_per_ip = 100\nheader_read_timeout_ms = 30000",
    );
    let addr: SocketAddr = gw.addr().parse().unwrap();
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The 101st from 127.0.0.1 is closed at once, without an answer.
    let mut extra = TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = extra.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
    let mut buf = [0u8; 64];
    let n = extra.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the 101st connection was served");
    // Another address (127.0.0.2 is loopback too) is served meanwhile.
    let other = bind_from("127.0.0.2", addr);
    let (responses, _) = {
        let mut s = other;
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"GET /other HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        (parse_responses(&raw, false), ())
    };
    assert_eq!(responses.first().map(|r| r.status), Some(200));
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("tidegate_connections_refused_total{reason=\"max_connections_per_ip\"} 1"),
        "{metrics}"
    );
    drop(held);
}

fn bind_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Stream,
        nix::sys::socket::SockFlag::empty(),
        None,
    )
    .unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    nix::sys::socket::bind(
        std::os::fd::AsRawFd::as_raw_fd(&socket),
        &nix::sys::socket::SockaddrIn::from(match from {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => unreachable!(),
        }),
    )
    .unwrap();
    let stream = TcpStream::from(socket);
    // connect through std after binding: go via socket2-free path with nix.
    nix::sys::socket::connect(
        std::os::fd::AsRawFd::as_raw_fd(&stream),
        &nix::sys::socket::SockaddrIn::from(match to {
            SocketAddr::V4(v4) => v4,
            SocketAddr::V6(_) => unreachable!(),
        }),
    )
    .unwrap();
    stream
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Waits for the RSS to settle (two readings 200 ms apart within 1 %).
fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        let now = rss_kib(pid);
        if now.abs_diff(last) * 100 <= last {
            return now;
        }
        last = now;
    }
    last
}

/// A client sending one request every 10 ms on its own connection while a flood runs:
/// every request must succeed; returns the latencies.
fn steady_client(
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let mut conn = None;
        let mut latencies = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            let t = Instant::now();
            support::raw::get(&addr, &mut conn, true)
                .expect("a normal client failed during a flood");
            latencies.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(10));
        }
        latencies
    })
}

fn p99(mut l: Vec<Duration>) -> Duration {
    l.sort();
    l[(l.len() * 99 / 100).min(l.len() - 1)]
}

const FLOOD: usize = 3000;

/// One flood against a fresh gateway: `open` makes a connection in the flood's state.
/// Returns (KiB per connection while open, RSS after they closed relative to the baseline,
/// the steady client's latencies).
fn flood(
    addr: &str,
    pid: u32,
    open: &dyn Fn(&str, usize) -> TcpStream,
) -> (f64, f64, Vec<Duration>) {
    // Warm up: the runtime, pools and allocator at their working size.
    let mut conn = None;
    for _ in 0..200 {
        support::raw::get(addr, &mut conn, true).unwrap();
    }
    drop(conn);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let steady = steady_client(addr.to_string(), stop.clone());
    let baseline = settled_rss(pid);
    let held: Vec<TcpStream> = (0..FLOOD).map(|i| open(addr, i)).collect();
    let with = settled_rss(pid);
    drop(held);
    // The edge's collector hands freed memory back within a second or two.
    std::thread::sleep(Duration::from_secs(2));
    let after = settled_rss(pid);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let latencies = steady.join().unwrap();
    let per = with.saturating_sub(baseline) as f64 / FLOOD as f64;
    let after = (after as f64 - baseline as f64) * 100.0 / baseline as f64;
    (per, after, latencies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_per_connection_stays_small_under_floods() {
    raise_fd_limit();
    let up = support::upstream::Upstream::start("a").await;
    let config = format!(
        "[edge]\nheader_read_timeout_ms = 60000\nkeepalive_timeout_ms = 60000\n[[services]]\nname = \"a\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"a\"\n",
        up.addr
    );
    let silent = |addr: &str, _: usize| TcpStream::connect(addr).unwrap();
    let idle = |addr: &str, _: usize| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        s
    };
    let slowloris = |addr: &str, i: usize| {
        let mut s = TcpStream::connect(addr).unwrap();
        let half = format!(
            "GET /slow/{i} HTTP/1.1\r\nHost: h\r\nX-Pad: {}",
            "a".repeat(200)
        );
        s.write_all(half.as_bytes()).unwrap();
        s
    };
    let mut report = Vec::new();
    let mut failures = Vec::new();
    type Open<'a> = &'a dyn Fn(&str, usize) -> TcpStream;
    let floods: [(&str, Open, f64); 3] = [
        ("silent", &silent, 4.0),
        ("idle keep-alive", &idle, 8.0),
        ("slowloris", &slowloris, f64::INFINITY),
    ];
    for (what, open, budget) in floods {
        // A fresh gateway for each flood, so one does not live on another's freed memory.
        let gw = Gateway::start(&config);
        let (pid, addr) = (gw.pid(), gw.addr());
        let (per, after, latencies) = tokio::task::block_in_place(|| flood(&addr, pid, open));
        let line = format!(
            "{FLOOD} {what} connections: {per:.2} KiB each, RSS after they closed {after:+.1} % of the baseline; a steady client's {} requests during it: p99 {:?}",
            latencies.len(),
            p99(latencies.clone())
        );
        eprintln!("{line}");
        report.push(line);
        if per > budget {
            failures.push(format!(
                "{what}: {per:.2} KiB per connection (budget {budget} KiB)"
            ));
        }
        if after > 20.0 {
            failures.push(format!("{what}: RSS {after:+.1} % after the flood"));
        }
        if latencies.len() < 20 {
            failures.push(format!("{what}: the steady client hardly ran"));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n{}",
        failures.join("\n"),
        report.join("\n")
    );
}
