#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Tidegate's own HTTP/1 exchange (bodiless requests; `gateway/src/proxy/exchange.rs`)
//! against upstreams scripted at the byte level: its idle-connection pool, client aborts,
//! informational and unframed answers, hop-by-hop fields, a Host for HTTP/1.0 requests
//! without one, and that what it does not take still goes through Pingora's path.
//! Retries, timeouts and errors are in `data_plane.rs`, which runs both paths (bodiless
//! requests here, requests with bodies through Pingora).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a scripted upstream does with each connection.
#[derive(Clone, Copy)]
enum Script {
    /// Answer every request with this, keep the connection.
    Answer(&'static [u8]),
    /// Answer, then close the connection after this many ms without a next request (and
    /// without saying so: an upstream whose keep-alive timeout is shorter than the pool's).
    AnswerThenCloseIdle(&'static [u8], u64),
    /// Answer, then close at once (an HTTP/1.0 server ending its body by closing).
    AnswerAndClose(&'static [u8]),
    /// Answer a connection's first request; close it on reading the second, unanswered (an
    /// upstream closing a kept connection just as the gateway sends on it).
    AnswerOnceThenDrop(&'static [u8]),
    /// Read the request and never answer.
    Hang,
}

/// A raw upstream: counts connections, keeps each request head, counts connections that
/// the gateway closed.
struct Scripted {
    addr: std::net::SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed_by_gateway: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(script: Script) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Scripted {
            addr: listener.local_addr().unwrap(),
            accepted: Arc::default(),
            closed_by_gateway: Arc::default(),
            heads: Arc::default(),
        };
        let (accepted, closed, heads) = (
            up.accepted.clone(),
            up.closed_by_gateway.clone(),
            up.heads.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, SeqCst);
                let (closed, heads) = (closed.clone(), heads.clone());
                tokio::spawn(serve(stream, script, closed, heads));
            }
        });
        up
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    script: Script,
    closed: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    for answered in 0.. {
        // The next request head; a close by the gateway while waiting is counted.
        let idle = match script {
            Script::AnswerThenCloseIdle(_, ms) if answered > 0 => Some(Duration::from_millis(ms)),
            _ => None,
        };
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let read = match idle {
                Some(idle) => match tokio::time::timeout(idle, stream.read(&mut chunk)).await {
                    Ok(read) => read,
                    Err(_) => return, // idle too long: this upstream closes, unannounced
                },
                None => stream.read(&mut chunk).await,
            };
            match read {
                Ok(0) | Err(_) => {
                    closed.fetch_add(1, SeqCst);
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head: Vec<u8> = buf.drain(..end).collect();
        heads
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&head).into_owned());
        match script {
            Script::Answer(answer) | Script::AnswerThenCloseIdle(answer, _) => {
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            Script::AnswerOnceThenDrop(answer) if answered == 0 => {
                if stream.write_all(answer).await.is_err() {
                    return;
                }
            }
            Script::AnswerOnceThenDrop(_) => return,
            Script::AnswerAndClose(answer) => {
                let _ = stream.write_all(answer).await;
                return;
            }
            Script::Hang => {
                let mut rest = [0u8; 64];
                if let Ok(0) | Err(_) = stream.read(&mut rest).await {
                    closed.fetch_add(1, SeqCst);
                }
                return;
            }
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn route_to(addr: std::net::SocketAddr, service_extra: &str) -> String {
    format!(
        "[[services]]\nname = \"s\"\n{service_extra}\nendpoints = [{{ addr = \"{addr}\" }}]\n\
         [[routes]]\nname = \"r\"\npath = \"/\"\nservice = \"s\"\n"
    )
}

/// Sends `request` on `conn` and reads its response (informational heads, then the final
/// one to its Content-Length or chunked end).
async fn exchange(conn: &mut TcpStream, request: &str) -> String {
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !complete(&String::from_utf8_lossy(&got)) {
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut chunk))
            .await
            .expect("the response came")
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn complete(text: &str) -> bool {
    let mut rest = text;
    loop {
        let Some(end) = rest.find("\r\n\r\n") else {
            return false;
        };
        let head = rest[..end].to_ascii_lowercase();
        let body = &rest[end + 4..];
        if head.starts_with("http/1.1 1") {
            rest = body;
            continue;
        }
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        return match length {
            Some(len) => body.len() >= len,
            None => head.contains("transfer-encoding: chunked") && body.ends_with("0\r\n\r\n"),
        };
    }
}

const GET: &str = "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_upstream_connection_serves_request_after_request() {
    let up = Scripted::start(Script::Answer(OK)).await;
    let gw = Gateway::start(&route_to(up.addr, ""));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    for i in 0..50 {
        let resp = exchange(&mut conn, GET).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "request {i}: {resp}");
    }
    // Ten clients at once need at most ten, and keep them.
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let addr = gw.addr();
            tokio::spawn(async move {
                let mut conn = TcpStream::connect(addr).await.unwrap();
                for _ in 0..20 {
                    assert!(exchange(&mut conn, GET).await.starts_with("HTTP/1.1 200"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = up.accepted.load(SeqCst);
    assert!(
        (1..=11).contains(&accepted),
        "{accepted} upstream connections for 250 requests"
    );
    assert_eq!(up.heads().len(), 250);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_upstream_closed_while_idle_is_not_used() {
    // The upstream drops idle connections after 100 ms without a word; the gateway's pool
    // would keep them for a minute. Every request after a pause must still get its answer.
    let up = Scripted::start(Script::AnswerThenCloseIdle(OK, 100)).await;
    let gw = Gateway::start(&route_to(up.addr, "retries = 0"));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    for i in 0..8 {
        let resp = exchange(&mut conn, GET).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "request {i}: {resp}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        up.accepted.load(SeqCst),
        8,
        "a new connection after each pause"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_connection_closed_as_the_request_goes_out_costs_a_get_nothing() {
    // One endpoint, no retries configured: a GET whose kept connection the upstream closes
    // on it is sent once more on a new connection to the same endpoint. A POST is not sent
    // twice: its client gets the 502.
    let up = Scripted::start(Script::AnswerOnceThenDrop(OK)).await;
    let gw = Gateway::start(&route_to(up.addr, "retries = 0"));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    for i in 0..4 {
        let resp = exchange(&mut conn, GET).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "request {i}: {resp}");
    }
    // Each GET after the first: its kept connection dropped, then a new one answered.
    assert_eq!(up.accepted.load(SeqCst), 4);
    assert_eq!(up.heads().len(), 7);
    let post = "POST /x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n";
    let resp = exchange(&mut conn, post).await;
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert_eq!(up.heads().len(), 8, "the POST went out once");
    assert_eq!(up.accepted.load(SeqCst), 4);
}

/// The gateway's open descriptors.
fn open_fds(gw: &Gateway) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", gw.pid()))
        .map(Iterator::count)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_upstream_closed_while_idle_are_let_go_within_seconds() {
    // Kept connections that the upstream drops after 100 ms idle, with a pool idle timeout
    // of a minute: the gateway's ends must close within the sweep's second, not wait half
    // closed for the minute.
    let up = Scripted::start(Script::AnswerThenCloseIdle(OK, 100)).await;
    let gw = Gateway::start(&route_to(up.addr, "pool_idle_timeout_ms = 60000"));
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(TcpStream::connect(gw.addr()).await.unwrap());
    }
    let sent = clients.iter_mut().map(|c| exchange(c, GET));
    for resp in futures_util::future::join_all(sent).await {
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // (Some requests may have shared a connection another had just released.)
    let idle = up.accepted.load(SeqCst);
    assert!(idle >= 2, "{idle} upstream connections");
    let with_them = open_fds(&gw);
    let let_go = support::eventually(Duration::from_secs(3), || async {
        open_fds(&gw) + idle <= with_them
    })
    .await;
    assert!(
        let_go,
        "{} descriptors open, {with_them} with the {idle} idle connections",
        open_fds(&gw)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_pool_idle_timeout() {
    let up = Scripted::start(Script::Answer(OK)).await;
    let gw = Gateway::start(&route_to(up.addr, "pool_idle_timeout_ms = 300"));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    assert!(exchange(&mut conn, GET).await.starts_with("HTTP/1.1 200"));
    assert_eq!(up.closed_by_gateway.load(SeqCst), 0);
    // The sweep runs every second: closed well within three.
    let closed = support::eventually(Duration::from_secs(3), || async {
        up.closed_by_gateway.load(SeqCst) == 1
    })
    .await;
    assert!(closed, "the idle upstream connection was not closed");
    // And the next request opens a new one.
    assert!(exchange(&mut conn, GET).await.starts_with("HTTP/1.1 200"));
    assert_eq!(up.accepted.load(SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_frees_its_upstream_connection() {
    // A long poll: the upstream holds the request; the client gives up after 300 ms. The
    // upstream connection must be closed then, not when the read timeout (60 s) ends.
    let up = Scripted::start(Script::Hang).await;
    let gw = Gateway::start(&route_to(up.addr, "read_timeout_ms = 60000"));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    conn.write_all(GET.as_bytes()).await.unwrap();
    assert!(
        support::eventually(Duration::from_secs(3), || async { up.heads().len() == 1 }).await,
        "the request reached the upstream"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(conn);
    let freed = support::eventually(Duration::from_secs(3), || async {
        up.closed_by_gateway.load(SeqCst) == 1
    })
    .await;
    assert!(freed, "the upstream connection outlived its client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_hints_go_through_and_an_unframed_answer_is_chunked() {
    let hints = Scripted::start(Script::Answer(
        b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ))
    .await;
    let gw = Gateway::start(&route_to(hints.addr, ""));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    let resp = exchange(&mut conn, GET).await;
    assert!(resp.starts_with("HTTP/1.1 103"), "{resp}");
    assert!(resp.contains("</app.css>; rel=preload"), "{resp}");
    assert!(resp.contains("HTTP/1.1 200"), "{resp}");
    // The connection goes on.
    let again = exchange(&mut conn, GET).await;
    assert!(again.starts_with("HTTP/1.1 103"), "{again}");

    // HTTP/1.0, no length: the body ends when the upstream closes. The client gets it
    // chunked and keeps its connection.
    let unframed = Scripted::start(Script::AnswerAndClose(b"HTTP/1.0 200 OK\r\n\r\nhello")).await;
    let gw = Gateway::start(&route_to(unframed.addr, ""));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    for _ in 0..2 {
        let resp = exchange(&mut conn, GET).await;
        let lower = resp.to_ascii_lowercase();
        assert!(lower.contains("transfer-encoding: chunked"), "{resp}");
        assert!(resp.ends_with("5\r\nhello\r\n0\r\n\r\n"), "{resp}");
    }
    assert_eq!(
        unframed.accepted.load(SeqCst),
        2,
        "a closed answer is not reused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_fields_stay_on_the_client_side() {
    let up = Scripted::start(Script::Answer(OK)).await;
    let gw = Gateway::start(&route_to(up.addr, ""));
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    // Taken by the exchange: Connection says only keep-alive.
    let resp = exchange(
        &mut conn,
        "GET /own HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive\r\n\
         Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n\
         Trailer: x-sum\r\nX-Kept: yes\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // Pingora's path: Connection names another field, which must not go upstream either.
    let resp = exchange(
        &mut conn,
        "GET /pingora HTTP/1.1\r\nHost: example.com\r\nConnection: keep-alive, x-hop\r\n\
         X-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let heads = up.heads();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with("get /"), "{head}");
        assert!(lower.contains("\r\nx-kept: yes\r\n"), "{head}");
        assert!(
            lower.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
            "{head}"
        );
        for hop in [
            "\r\nconnection:",
            "\r\nkeep-alive:",
            "\r\nte:",
            "\r\nproxy-authorization:",
            "\r\ntrailer:",
            "\r\nx-hop:",
        ] {
            assert!(!lower.contains(hop), "{hop} went upstream: {head}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_1_0_request_without_host_goes_upstream_with_one() {
    let up = Scripted::start(Script::Answer(OK)).await;
    let gw = Gateway::start(&route_to(up.addr, ""));
    // Bodiless (the exchange), then with a body (Pingora's loop): both go upstream as
    // HTTP/1.1, which needs a Host; the client gave none, so the endpoint's address it is.
    for request in [
        "GET /own HTTP/1.0\r\n\r\n",
        "POST /pingora HTTP/1.0\r\nContent-Length: 2\r\n\r\nab",
    ] {
        let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
        let resp = exchange(&mut conn, request).await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    let heads = up.heads();
    assert_eq!(heads.len(), 2);
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains(" http/1.1\r\n"), "{head}");
        assert!(
            lower.contains(&format!("\r\nhost: {}\r\n", up.addr)),
            "{head}"
        );
        assert!(!lower.contains("x-forwarded-host"), "{head}");
    }
    // A client's own Host is kept (HTTP/1.0 with one, on the exchange).
    let mut conn = TcpStream::connect(gw.addr()).await.unwrap();
    let resp = exchange(&mut conn, "GET /kept HTTP/1.0\r\nHost: example.com\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let head = up.heads().pop().unwrap().to_ascii_lowercase();
    assert!(head.contains("\r\nhost: example.com\r\n"), "{head}");
}
