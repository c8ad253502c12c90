#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Endpoints by DNS name against a real DNS server: dnsmasq on 127.0.0.1 (apt:
//! dnsmasq-base) answering from a hosts file it re-reads on SIGHUP, with a 1 s TTL.
//! Every address of a name is an endpoint with the entry's weight; a change of the records
//! is followed within about the TTL; a DNS outage keeps the last addresses serving with no
//! failed request; a name that does not resolve at start leaves its service without
//! endpoints until it does; a TLS upstream by name gets the name as SNI and Host; a bad
//! name is refused with its position.

mod support;

use openssl::ssl::{NameType, SslAcceptor, SslFiletype, SslMethod};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::tls::Certs;
use support::upstream::Upstream;
use support::{client, metric_sum, Gateway, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// dnsmasq answering from `hosts` only, on a free loopback port.
struct Dnsmasq {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Dnsmasq {
    fn start(hosts: &str) -> Dnsmasq {
        let dir = TempDir::new("dnsmasq");
        std::fs::write(dir.path("hosts"), hosts).unwrap();
        let port = free_udp_and_tcp_port();
        Self::start_on(dir, port)
    }

    fn start_on(dir: TempDir, port: u16) -> Dnsmasq {
        let log = std::fs::File::create(dir.path("dnsmasq.log")).unwrap();
        let child = Command::new(dnsmasq_binary())
            .args([
                "--no-daemon",
                &format!("--port={port}"),
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--no-resolv",
                "--no-hosts",
                // Authoritative for .test: a name not in the file is NXDOMAIN, not REFUSED.
                "--local=/test/",
                &format!("--addn-hosts={}", dir.path("hosts").display()),
                "--local-ttl=1",
                &format!("--pid-file={}", dir.path("dnsmasq.pid").display()),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dnsmasq");
        let mut d = Dnsmasq { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = d.child.try_wait().unwrap() {
                panic!("dnsmasq exited ({status}):\n{}", d.log());
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not start:\n{}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("dnsmasq.log")).unwrap_or_default()
    }

    /// New records: the hosts file rewritten, then SIGHUP (dnsmasq re-reads it).
    fn set_hosts(&self, hosts: &str) {
        std::fs::write(self.dir.path("hosts"), hosts).unwrap();
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP dnsmasq");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

/// dnsmasq on the PATH, or where Debian puts it (/usr/sbin may not be on a user's PATH).
fn dnsmasq_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("dnsmasq"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin/dnsmasq")])
        .find(|p| p.is_file())
        .expect("dnsmasq is needed for the DNS tests (apt-get install dnsmasq-base; scripts/test.sh installs it)")
}

fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP");
}

/// Upstreams named `ip` on each of `ips`, all on one port (a name's addresses share the
/// entry's port).
async fn upstreams_on(ips: &[&str]) -> (u16, Vec<Upstream>) {
    for _ in 0..20 {
        let first = Upstream::start_on(&format!("{}:0", ips[0]), ips[0]).await;
        let port = first.addr.port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            // Taken on this address (by another test's socket): try another port.
            match Upstream::try_start_on(&format!("{ip}:{port}"), ip).await {
                Ok(up) => all.push(up),
                Err(_) => break,
            }
        }
        if all.len() == ips.len() {
            return (port, all);
        }
    }
    panic!("no port free on every one of {ips:?}");
}

fn dns_section(dns: &Dnsmasq) -> String {
    format!(
        "[dns]\nservers = [\"127.0.0.1:{}\"]\nmin_ttl_seconds = 1\nmax_ttl_seconds = 1\ntimeout_ms = 300\n",
        dns.port
    )
}

/// Which upstream answered `n` GETs of `/`, by name; panics on a non-200.
async fn spread(gw: &Gateway, n: usize) -> HashMap<String, usize> {
    let http = client();
    let mut seen = HashMap::new();
    for _ in 0..n {
        let resp = http.get(gw.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", gw.stderr());
        let server = resp.headers()["x-upstream"].to_str().unwrap().to_string();
        *seen.entry(server).or_default() += 1;
    }
    seen
}

async fn metric(gw: &Gateway, name: &str, labels: &str) -> f64 {
    let text = gw.metrics().await;
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(labels)).collect();
    metric_sum(&lines.join("\n"), name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_of_a_name_gets_traffic_by_weight_and_changes_are_followed() {
    let (port, _ups) = upstreams_on(&["127.0.0.1", "127.0.0.2", "127.0.0.3"]).await;
    let dns = Dnsmasq::start("127.0.0.1 api.test\n127.0.0.2 api.test\n127.0.0.3 extra.test\n");
    let gw = Gateway::start(&format!(
        "{}[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"api.test:{port}\", weight = 3 }}, {{ addr = \"extra.test:{port}\", weight = 1 }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"api\"\n",
        dns_section(&dns)
    ));
    // Resolved before the first request: 3 endpoints, 3:3:1.
    let seen = spread(&gw, 140).await;
    println!("spread over 140 requests: {seen:?}");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let n = seen.get(ip).copied().unwrap_or(0);
        assert!((45..=75).contains(&n), "{ip}: {n} of 140 ({seen:?})");
    }
    let n = seen.get("127.0.0.3").copied().unwrap_or(0);
    assert!((10..=30).contains(&n), "127.0.0.3: {n} of 140 ({seen:?})");
    assert_eq!(
        metric(&gw, "tidegate_service_endpoints", "state=\"usable\"").await,
        3.0
    );
    assert_eq!(
        metric(&gw, "tidegate_dns_addresses", "name=\"api.test\"").await,
        2.0
    );

    // The records change: 127.0.0.1 leaves api.test. Within about the TTL (1 s) no request
    // goes there any more.
    dns.set_hosts("127.0.0.2 api.test\n127.0.0.3 extra.test\n");
    let changed = Instant::now();
    let http = client();
    let mut clean_run = 0;
    while clean_run < 30 {
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "traffic did not follow the DNS change in 10 s"
        );
        let resp = http.get(gw.url("/")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        if resp.headers()["x-upstream"] == "127.0.0.1" {
            clean_run = 0;
            tokio::time::sleep(Duration::from_millis(20)).await;
        } else {
            clean_run += 1;
        }
    }
    println!("the change was followed within {:?}", changed.elapsed());
    assert!(
        changed.elapsed() < Duration::from_secs(5),
        "{:?}",
        changed.elapsed()
    );
    assert_eq!(
        metric(&gw, "tidegate_dns_addresses", "name=\"api.test\"").await,
        1.0
    );
    let status = gw.config_status().await;
    assert_eq!(
        status["dns"]["api.test"]["addresses"],
        serde_json::json!(["127.0.0.2"])
    );

    // An address comes back: traffic goes there again.
    dns.set_hosts("127.0.0.1 api.test\n127.0.0.2 api.test\n127.0.0.3 extra.test\n");
    let back = support::eventually(Duration::from_secs(10), || async {
        spread(&gw, 14).await.contains_key("127.0.0.1")
    })
    .await;
    assert!(
        back,
        "127.0.0.1 came back in the records but got no traffic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dns_outage_keeps_the_last_addresses_serving_with_no_failed_request() {
    let (port, _ups) = upstreams_on(&["127.0.0.1", "127.0.0.2"]).await;
    let mut dns = Dnsmasq::start("127.0.0.1 api.test\n127.0.0.2 api.test\n");
    let gw = Gateway::start(&format!(
        "{}[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"api.test:{port}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"api\"\n",
        dns_section(&dns)
    ));
    assert_eq!(spread(&gw, 20).await.len(), 2);
    let labels = "name=\"api.test\",result=\"error\"";
    assert_eq!(
        metric(&gw, "tidegate_dns_resolutions_total", labels).await,
        0.0
    );
    assert!(metric(&gw, "tidegate_dns_resolutions_total", "result=\"ok\"").await >= 1.0);

    dns.stop();
    // 5 s of traffic — several TTLs and retries — while the DNS server is gone.
    let (mut sent, start) = (0, Instant::now());
    let mut seen = HashMap::new();
    while start.elapsed() < Duration::from_secs(5) {
        for (k, v) in spread(&gw, 10).await {
            *seen.entry(k).or_insert(0) += v;
        }
        sent += 10;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{sent} requests during the outage, 0 failed: {seen:?}");
    assert_eq!(seen.len(), 2, "both last addresses kept serving: {seen:?}");
    let failures = metric(&gw, "tidegate_dns_resolutions_total", labels).await;
    println!("failed resolutions counted: {failures}");
    assert!(failures >= 1.0, "the failures are counted");
    assert!(
        gw.stderr().contains("api.test did not resolve"),
        "{}",
        gw.stderr()
    );
    let status = gw.config_status().await;
    assert!(status["dns"]["api.test"]["stale"].is_string(), "{status}");
    assert_eq!(
        status["dns"]["api.test"]["addresses"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_at_start_is_accepted_and_serves_once_it_does() {
    let (port, _ups) = upstreams_on(&["127.0.0.1"]).await;
    let dns = Dnsmasq::start("127.0.0.9 other.test\n");
    let gw = Gateway::start(&format!(
        "{}[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"late.test:{port}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"api\"\n",
        dns_section(&dns)
    ));
    let resp = client().get(gw.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert!(
        gw.stderr().contains("late.test did not resolve"),
        "a clear log line:\n{}",
        gw.stderr()
    );
    assert!(metric(&gw, "tidegate_dns_resolutions_total", "result=\"empty\"").await >= 1.0);
    dns.set_hosts("127.0.0.9 other.test\n127.0.0.1 late.test\n");
    // Retried after 1 s, then 1 s (max_ttl_seconds bounds the backoff).
    let served = support::eventually(Duration::from_secs(10), || async {
        client().get(gw.url("/")).send().await.unwrap().status() == 200
    })
    .await;
    assert!(served, "the name resolved but its endpoint got no traffic");
}

/// A TLS upstream that answers with the SNI it was sent and the Host it was asked for.
async fn tls_echo(certs: &Certs, name: &str) -> (u16, tokio::task::JoinHandle<()>) {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    acceptor
        .set_certificate_chain_file(certs.path(&format!("{name}.pem")))
        .unwrap();
    acceptor
        .set_private_key_file(certs.path(&format!("{name}.key")), SslFiletype::PEM)
        .unwrap();
    let acceptor = acceptor.build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let ssl = openssl::ssl::Ssl::new(acceptor.context()).unwrap();
            tokio::spawn(async move {
                let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                if std::pin::Pin::new(&mut tls).accept().await.is_err() {
                    return;
                }
                let sni = tls
                    .ssl()
                    .servername(NameType::HOST_NAME)
                    .unwrap_or("")
                    .to_string();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let header = |name: &str| {
                    text.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                let body = serde_json::json!({
                    "sni": sni,
                    "host": header("host"),
                    "x-forwarded-host": header("x-forwarded-host"),
                })
                .to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_by_name_gets_the_name_as_sni_and_host() {
    let certs = Certs::make(&["api.partner.test"]);
    let (port, server) = tls_echo(&certs, "api.partner.test").await;
    let dns = Dnsmasq::start("127.0.0.1 api.partner.test\n");
    let gw = Gateway::start(&format!(
        "{dns}[[services]]\nname = \"partner\"\nprotocol = \"https\"\ntls = {{ ca = \"{ca}\" }}\nendpoints = [{{ addr = \"api.partner.test:{port}\" }}]\n\
         [[services]]\nname = \"passthrough\"\nprotocol = \"https\"\ntls = {{ ca = \"{ca}\", host = \"client\" }}\nendpoints = [{{ addr = \"api.partner.test:{port}\" }}]\n\
         [[routes]]\nname = \"partner\"\npath = \"/\"\nservice = \"partner\"\n\
         [[routes]]\nname = \"passthrough\"\npath = \"/pass/\"\nservice = \"passthrough\"\n",
        dns = dns_section(&dns),
        ca = certs.ca(),
    ));
    let http = client();
    // Verified against the test CA by the name (no tls.sni given): the name is the SNI and,
    // with its port, the Host; the client's Host is kept in X-Forwarded-Host.
    let resp = http
        .get(gw.url("/x"))
        .header("host", "gw.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.stderr());
    let seen = support::body_json(resp).await;
    assert_eq!(seen["sni"], "api.partner.test");
    assert_eq!(seen["host"], format!("api.partner.test:{port}"));
    assert_eq!(seen["x-forwarded-host"], "gw.example");
    // tls.host = "client": the same name as SNI, the client's Host.
    let resp = http
        .get(gw.url("/pass/x"))
        .header("host", "gw.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.stderr());
    let seen = support::body_json(resp).await;
    assert_eq!(seen["sni"], "api.partner.test");
    assert_eq!(seen["host"], "gw.example");
    server.abort();
}

#[test]
fn a_bad_name_is_refused_with_its_position() {
    let dir = TempDir::new("dns-check");
    let path: PathBuf = dir.path("bad.toml");
    let text = "[dns]\nservers = [\"127.0.0.1:5353\", \"dns.example\"]\n[[services]]\nname = \"s\"\nendpoints = [{ addr = \"api..partner.example:443\" }, { addr = \"ok.example:80\" }, { addr = \"bad_name.example:80\" }]\n";
    std::fs::write(&path, text).unwrap();
    let out = Command::new(support::binary())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "FILE");
    for want in [
        "FILE:2:30: bad dns server \"dns.example\"",
        "FILE:5:23: bad endpoint address \"api..partner.example:443\": empty label",
        "FILE:5:90: bad endpoint address \"bad_name.example:80\": '_'",
    ] {
        assert!(stderr.contains(want), "{want}\nin:\n{stderr}");
    }
    assert!(!stderr.contains("ok.example"), "{stderr}");
}
