#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The client address end to end: PROXY protocol v1/v2 on the listeners that expect it,
//! X-Forwarded-For believed only from trusted proxies (and changeable at runtime).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::upstream::Upstream;
use support::{Gateway, TOKEN};

fn raw(addr: &str, prefix: &[u8], headers: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(prefix).unwrap();
    s.write_all(
        format!("GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn upstream_xff(response: &str) -> String {
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no body: {response:?}"));
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["headers"]["x-forwarded-for"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn logged_client(gw: &Gateway, request_id: &str) -> String {
    for _ in 0..100 {
        if let Some(line) = gw.access_log().lines().find(|l| l.contains(request_id)) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            return v["client_ip"].as_str().unwrap().to_string();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no access log line for {request_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_and_trusted_forwarded_for() {
    let up = Upstream::start("a").await;
    let routes = format!(
        "[[services]]\nname = \"s\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"r\"\npath = \"/\"\nservice = \"s\"\n",
        up.addr
    );
    let pp_port = support::free_port();
    let server_lines = |port: u16, trusted: &str| {
        format!(
            "listen = [\"127.0.0.1:{port}\", \"127.0.0.1:{pp_port}\"]\nproxy_protocol = [\"127.0.0.1:{pp_port}\"]\ntrusted_proxies = [{trusted}]\n"
        )
    };
    let text = |port: u16, admin: u16, dir: &support::TempDir, trusted: &str| {
        Gateway::config_text(port, admin, dir, &routes).replace(
            &format!("listen = [\"127.0.0.1:{port}\"]\n"),
            &server_lines(port, trusted),
        )
    };
    let gw = Gateway::start_with_text(|(port, admin, dir)| text(port, admin, dir, ""));
    let plain = gw.addr();
    let with_pp = format!("127.0.0.1:{pp_port}");

    // Untrusted peer: the client's X-Forwarded-For is dropped, not extended.
    let r = tokio::task::block_in_place(|| {
        raw(
            &plain,
            b"",
            "X-Forwarded-For: 1.2.3.4\r\nX-Request-Id: spoof-1\r\n",
        )
    });
    assert_eq!(upstream_xff(&r), "127.0.0.1");
    assert_eq!(logged_client(&gw, "spoof-1"), "127.0.0.1");

    // PROXY v1.
    let r = tokio::task::block_in_place(|| {
        raw(
            &with_pp,
            b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n",
            "X-Request-Id: pp-v1\r\n",
        )
    });
    assert_eq!(upstream_xff(&r), "203.0.113.7");
    assert_eq!(logged_client(&gw, "pp-v1"), "203.0.113.7");

    // PROXY v2, IPv6.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v2.extend([0x21, 0x21, 0, 36]);
    v2.extend(
        "2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v2.extend(
        "2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    v2.extend([0x15, 0xb3, 0, 80]);
    let r = tokio::task::block_in_place(|| raw(&with_pp, &v2, "X-Request-Id: pp-v2\r\n"));
    assert_eq!(upstream_xff(&r), "2001:db8::7");
    assert_eq!(logged_client(&gw, "pp-v2"), "2001:db8::7");

    // A PROXY listener refuses a connection without the header.
    let r = tokio::task::block_in_place(|| raw(&with_pp, b"", ""));
    assert_eq!(r, "", "answered without a PROXY header");

    // Trust loopback at runtime: the chain is believed up to the first untrusted hop.
    let new = text(gw.port, gw.admin_port, &gw.dir, "\"127.0.0.0/8\"");
    let resp = support::client()
        .put(gw.admin_url("/api/config"))
        .bearer_auth(TOKEN)
        .body(new)
        .send()
        .await
        .unwrap();
    let answer = resp.text().await.unwrap();
    assert!(answer.contains("\"restart_needed\":[]"), "{answer}");
    let r = tokio::task::block_in_place(|| {
        raw(
            &plain,
            b"",
            "X-Forwarded-For: 9.9.9.9, 198.51.100.7, 127.0.0.9\r\nX-Request-Id: trusted-1\r\n",
        )
    });
    assert_eq!(
        upstream_xff(&r),
        "9.9.9.9, 198.51.100.7, 127.0.0.9, 127.0.0.1"
    );
    assert_eq!(logged_client(&gw, "trusted-1"), "198.51.100.7");
}
