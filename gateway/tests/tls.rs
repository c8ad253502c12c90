#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! TLS at the edge with real clients (curl, `openssl s_client`, h2load, an openssl-based
//! client in the test) and certificates made by the test with openssl: SNI, renewals under
//! load, refused pairs, mTLS, HTTP/2 and h2c, PROXY before TLS, HTTPS redirects, and
//! `wss://` tunnels across reloads and binary upgrades.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::tls::{get, Certs};
use support::upstream::Upstream;
use support::{free_port, ws, Gateway};

/// A gateway with a TLS listener; `certs` is the `[[certificates]]` part, `body` the rest.
fn tls_gateway(tls_port: u16, certs: &str, body: &str, server_extra: &str) -> Gateway {
    let body = body.to_string();
    let certs = certs.to_string();
    let extra = server_extra.to_string();
    Gateway::start_with_text(move |(port, admin, dir)| {
        Gateway::config_text(port, admin, dir, &format!("{certs}\n{body}")).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n{extra}"),
        )
    })
}

fn two_certs(c: &Certs) -> String {
    format!(
        "[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
        c.path("localhost.pem"),
        c.path("localhost.key"),
        c.path("wildcard.example.com.pem"),
        c.path("wildcard.example.com.key"),
    )
}

fn api(up: &Upstream) -> String {
    format!(
        "[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"api\"\n",
        up.addr
    )
}

fn tool(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// The subject `openssl s_client` sees for `sni` (no `-servername` when None).
fn served_subject(addr: &str, sni: Option<&str>) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", addr]);
    if let Some(name) = sni {
        cmd.args(["-servername", name]);
    } else {
        cmd.arg("-noservername");
    }
    let out = cmd.stdin(std::process::Stdio::null()).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_chosen_by_sni_exact_wildcard_and_default() {
    let certs = Certs::make(&["localhost", "*.example.com"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let gw = tls_gateway(tls_port, &two_certs(&certs), &api(&up), "");
    let addr = format!("127.0.0.1:{tls_port}");
    tokio::task::block_in_place(|| {
        assert!(served_subject(&addr, Some("localhost")).contains("CN = localhost"));
        assert!(served_subject(&addr, Some("chat.example.com")).contains("CN = *.example.com"));
        // No SNI, or a name no certificate covers: the default.
        assert!(served_subject(&addr, None).contains("CN = localhost"));
        assert!(served_subject(&addr, Some("other.test")).contains("CN = localhost"));
        for (name, want) in [("localhost", 200), ("api.example.com", 200)] {
            let (ok, out) = tool(
                Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code} %{ssl_verify_result}",
                    ])
                    .args(["--cacert", &certs.ca()])
                    .args(["--resolve", &format!("{name}:{tls_port}:127.0.0.1")])
                    .arg(format!("https://{name}:{tls_port}/x")),
            );
            assert!(ok, "curl {name}: {out}");
            assert_eq!(out.trim(), format!("{want} 0"), "{name}");
        }
    });
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("tidegate_tls_certificate_expiry_seconds{name=\"localhost\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart_and_nothing_fails() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let config = certs.default_certificate("localhost");
    let _gw = tls_gateway(tls_port, &config, &api(&up), "");
    let addr = format!("127.0.0.1:{tls_port}");
    let ca = certs.ca();
    let before = get(&addr, "localhost", &ca, None, "/").unwrap().2;
    // New connections, one request each, while the certificate is renewed on disk.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, sent, failed, addr, ca) = (
                stop.clone(),
                sent.clone(),
                failed.clone(),
                addr.clone(),
                ca.clone(),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match get(&addr, "localhost", &ca, None, "/") {
                        Ok((200, _, _)) => {}
                        other => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("failed: {other:?}");
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // A renewal tool writes a new pair (same CA) and moves it into place.
    let renewed = support::TempDir::new("renewed");
    std::fs::copy(certs.path("ca.pem"), renewed.path("ca.pem")).unwrap();
    std::fs::copy(certs.path("ca.key"), renewed.path("ca.key")).unwrap();
    Certs::make_in(&renewed, &["localhost"]);
    std::fs::copy(
        renewed.path("localhost.key"),
        certs.path("localhost.key.new"),
    )
    .unwrap();
    std::fs::copy(
        renewed.path("localhost.pem"),
        certs.path("localhost.pem.new"),
    )
    .unwrap();
    std::fs::rename(certs.path("localhost.key.new"), certs.path("localhost.key")).unwrap();
    std::fs::rename(certs.path("localhost.pem.new"), certs.path("localhost.pem")).unwrap();
    let mut after = before.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while after == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        after = get(&addr, "localhost", &ca, None, "/").unwrap().2;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("renewal under load: {sent} handshakes and requests, {failed} failed");
    assert_ne!(after, before, "the renewed certificate was never served");
    assert!(sent > 50, "load too small: {sent}");
    assert_eq!(failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_is_refused_with_its_position() {
    let certs = Certs::make(&["localhost", "--mismatched", "localhost"]);
    let dir = support::TempDir::new("badpair");
    let text = format!(
        "[server]\nlisten = [\"127.0.0.1:1\"]\ntls_listen = [\"127.0.0.1:2\"]\n\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.path("localhost.mismatched.pem"),
        certs.path("localhost.mismatched.key")
    );
    let path = dir.path("bad.toml");
    std::fs::write(&path, text).unwrap();
    let (ok, out) = tool(Command::new(support::binary()).arg("check").arg(&path));
    assert!(!ok);
    assert!(out.contains(":6:8:"), "{out}");
    assert!(out.contains("do not match"), "{out}");

    // At runtime: a reload with a bad pair is refused and the old pair keeps serving.
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let good = certs.default_certificate("localhost");
    let gw = tls_gateway(tls_port, &good, &api(&up), "");
    let served = get(
        &format!("127.0.0.1:{tls_port}"),
        "localhost",
        &certs.ca(),
        None,
        "/",
    )
    .unwrap();
    std::fs::copy(
        certs.path("localhost.mismatched.key"),
        certs.path("localhost.key"),
    )
    .unwrap();
    let refused = support::eventually(Duration::from_secs(5), || async {
        gw.config_status()
            .await
            .to_string()
            .contains("do not match")
    })
    .await;
    assert!(refused, "the mismatched key was not refused");
    let still = get(
        &format!("127.0.0.1:{tls_port}"),
        "localhost",
        &certs.ca(),
        None,
        "/",
    )
    .unwrap();
    assert_eq!(still.0, 200);
    assert_eq!(
        still.2, served.2,
        "the old certificate should still be served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_required_and_optional() {
    let certs = Certs::make(&["required.test", "optional.test", "--client", "svc-a"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let config = format!(
        "[[certificates]]\ncert = \"{r}.pem\"\nkey = \"{r}.key\"\ndefault = true\nclient_auth = \"required\"\nclient_ca = \"{ca}\"\n[[certificates]]\ncert = \"{o}.pem\"\nkey = \"{o}.key\"\nclient_auth = \"optional\"\nclient_ca = \"{ca}\"\n",
        r = certs.path("required.test"),
        o = certs.path("optional.test"),
        ca = certs.ca()
    );
    let gw = tls_gateway(tls_port, &config, &api(&up), "");
    let addr = format!("127.0.0.1:{tls_port}");
    let ca = certs.ca();
    let client = (
        certs.path("svc-a.client.pem"),
        certs.path("svc-a.client.key"),
    );
    let client = Some((client.0.as_str(), client.1.as_str()));
    tokio::task::block_in_place(|| {
        assert!(
            get(&addr, "required.test", &ca, None, "/").is_err(),
            "required: served without a certificate"
        );
        assert_eq!(
            get(&addr, "required.test", &ca, client, "/").unwrap().0,
            200
        );
        assert_eq!(get(&addr, "optional.test", &ca, None, "/").unwrap().0, 200);
        assert_eq!(
            get(&addr, "optional.test", &ca, client, "/").unwrap().0,
            200
        );
    });
    support::eventually(Duration::from_secs(5), || async {
        gw.access_log().contains("\"tls_client\":\"CN=svc-a")
    })
    .await;
    let log = gw.access_log();
    assert!(log.contains("\"tls_client\":\"CN=svc-a"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_and_h2c_with_curl_and_h2load() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let config = certs.default_certificate("localhost");
    let gw = tls_gateway(tls_port, &config, &api(&up), "");
    tokio::task::block_in_place(|| {
        let (ok, out) = tool(
            Command::new("curl")
                .args([
                    "-s",
                    "--http2",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                ])
                .args(["--cacert", &certs.ca()])
                .args(["--resolve", &format!("localhost:{tls_port}:127.0.0.1")])
                .arg(format!("https://localhost:{tls_port}/h2")),
        );
        assert!(ok && out.trim() == "2 200", "curl --http2: {out}");
        let (ok, out) = tool(
            Command::new("curl")
                .args([
                    "-s",
                    "--http2-prior-knowledge",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                ])
                .arg(gw.url("/h2c")),
        );
        assert!(ok && out.trim() == "2 200", "curl h2c: {out}");
        for url in [
            format!("https://127.0.0.1:{tls_port}/load"),
            gw.url("/load"),
        ] {
            let (ok, out) = tool(
                Command::new("h2load")
                    .args(["-n", "2000", "-c", "10", "-m", "10"])
                    .arg(&url),
            );
            assert!(ok, "h2load {url}: {out}");
            assert!(out.contains("2000 succeeded"), "h2load {url}: {out}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_v2_header_before_tls_gives_the_client_address() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let config = certs.default_certificate("localhost");
    let _gw = tls_gateway(
        tls_port,
        &config,
        &api(&up),
        &format!("proxy_protocol = [\"127.0.0.1:{tls_port}\"]\n"),
    );
    let ca = certs.ca();
    let seen = tokio::task::block_in_place(|| {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
        header.extend([
            0x21, 0x11, 0, 12, 198, 51, 100, 7, 127, 0, 0, 1, 0xc3, 0x50, 0x01, 0xbb,
        ]);
        tcp.write_all(&header).unwrap();
        let mut tls = support::tls::connector(&ca, None)
            .connect("localhost", tcp)
            .unwrap();
        tls.write_all(b"GET /who HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut raw = String::new();
        let _ = tls.read_to_string(&mut raw);
        raw
    });
    let body = seen.split_once("\r\n\r\n").unwrap().1;
    let echo = support::json(body);
    assert_eq!(echo["headers"]["x-forwarded-for"], "198.51.100.7", "{echo}");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_requests_are_redirected_to_https_and_tls_answers_carry_hsts() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let config = certs.default_certificate("localhost");
    let body = format!(
        "[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"secure\"\npath = \"/\"\nservice = \"api\"\nhttps_redirect = true\nhsts = \"max-age=31536000\"\n[[routes]]\nname = \"own\"\npath = \"=/own\"\nhsts = \"max-age=60\"\nrespond = {{ status = 200 }}\n",
        up.addr
    );
    let gw = tls_gateway(tls_port, &config, &body, "");
    let resp = support::client()
        .get(gw.url("/a?b=c"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://localhost:{tls_port}/a?b=c").as_str()
    );
    let (ok, out) = tool(
        Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null"])
            .args(["--cacert", &certs.ca()])
            .args(["--resolve", &format!("localhost:{tls_port}:127.0.0.1")])
            .arg(format!("https://localhost:{tls_port}/a")),
    );
    assert!(ok, "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{out}"
    );
    // The gateway's own answers carry it too.
    let (ok, out) = tool(
        Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null"])
            .args(["--cacert", &certs.ca()])
            .args(["--resolve", &format!("localhost:{tls_port}:127.0.0.1")])
            .arg(format!("https://localhost:{tls_port}/own")),
    );
    assert!(ok, "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=60"),
        "{out}"
    );
}

fn wss_config(certs: &Certs, echo: &ws::EchoServer, up: &Upstream) -> String {
    format!(
        "[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n{}",
        certs.path("localhost.pem"),
        certs.path("localhost.key"),
        support::api_and_ws(up.addr, echo.addr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_tunnels_survive_a_hundred_unrelated_reloads() {
    raise_fd_limit();
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let tls_port = free_port();
    let base = wss_config(&certs, &echo, &up);
    let gw = tls_gateway(tls_port, &base, "", "");
    let addr = format!("127.0.0.1:{tls_port}");
    let mut tunnels = Vec::new();
    for _ in 0..500 {
        tunnels.push(support::tls::wss(&addr, "localhost", &certs.ca(), "/ws").await);
    }
    let http = support::client();
    let mut body = base.clone();
    for i in 0..100 {
        body.push_str(&format!(
            "[[routes]]\nname = \"extra{i}\"\npath = \"/extra{i}/\"\nrespond = {{ status = 200 }}\n"
        ));
        let text = gw.full_config(&body).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n"),
        );
        let resp = http
            .put(gw.admin_url("/api/config"))
            .bearer_auth(support::TOKEN)
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
    ws::assert_all_alive(&mut tunnels, &echo, "after 100 unrelated reloads").await;
    let metrics = gw.metrics().await;
    assert_eq!(
        support::metric_sum(&metrics, "tidegate_websocket_tunnels_closed_total"),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_tunnels_outlive_a_binary_upgrade_on_the_old_process() {
    raise_fd_limit();
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let tls_port = free_port();
    // The linger starts when the old process stops accepting, 5 s after the hand-off.
    let linger = 10;
    let linger_ends = Duration::from_secs(5 + linger);
    let mut gw = tls_gateway(
        tls_port,
        &wss_config(&certs, &echo, &up),
        "",
        &format!("tls_tunnel_linger_seconds = {linger}\n"),
    );
    let addr = format!("127.0.0.1:{tls_port}");
    let mut tunnels = Vec::new();
    for _ in 0..500 {
        tunnels.push(support::tls::wss(&addr, "localhost", &certs.ca(), "/ws").await);
    }
    let old_pid = gw.pid();
    let started = Instant::now();
    let out = tokio::task::block_in_place(|| {
        Command::new(support::binary())
            .arg("upgrade")
            .arg("-c")
            .arg(&gw.config_path)
            .arg("--log")
            .arg(gw.dir.path("stderr.log"))
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_pid = std::fs::read_to_string(gw.dir.path("tidegate.pid")).unwrap();
    assert_ne!(new_pid.trim(), old_pid.to_string());
    // New tunnels go to the new process; the old ones stay on the old process, all alive.
    let mut fresh = support::tls::wss(&addr, "localhost", &certs.ca(), "/ws").await;
    assert!(ws::echo(&mut fresh, "new process").await);
    ws::assert_all_alive(
        &mut tunnels,
        &echo,
        "after the upgrade, before the linger ends",
    )
    .await;
    assert!(
        started.elapsed() < linger_ends,
        "the check ran after the linger"
    );
    // After the linger the old process closes what is left with 1001, spread out, and exits.
    let mut codes = Vec::new();
    for t in tunnels.iter_mut().step_by(50) {
        codes.push(ws::close_code(t, Duration::from_secs(linger + 15)).await);
    }
    assert!(codes.iter().all(|c| *c == Some(1001)), "{codes:?}");
    assert!(
        started.elapsed() >= linger_ends - Duration::from_secs(1),
        "closed before the linger ended"
    );
    let exited = gw.wait_exit(Duration::from_secs(10));
    assert!(
        exited.is_some(),
        "the old process did not exit after the linger"
    );
    if let Ok(pid) = std::fs::read_to_string(gw.dir.path("tidegate.pid")) {
        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
    }
}

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}
