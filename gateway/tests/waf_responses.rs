#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The WAF's outbound rules (CRS RESPONSE-95x on libmodsecurity) through a real gateway, with
//! raw HTTP/1.1 and curl (HTTP/1.1 and HTTP/2 over TLS) as the clients. The CRS regression
//! suite (3.3.4) has no response tests, so these are ours: a page that leaks a MySQL error
//! is cut after its header with none of its body sent, whether it comes with a length or
//! chunked (a chunked body is inspected on its first piece, so streams are never held); a header that an operator's phase-3 rule refuses is answered 403 instead of the
//! upstream's response; a benign page larger than the inspected prefix arrives byte for
//! byte; a type that is not inspected streams through; every outbound block is in the
//! access log and the metric.

mod support;

use std::io::{Read, Write};
use std::time::Duration;
use support::pages::{Page, Pages};
use support::tls::Certs;
use support::{free_port, Gateway};

/// What MySQL prints on a broken query (CRS 951230 at paranoia level 1).
const LEAK: &[u8] = b"<p>You have an error in your SQL syntax; check the manual that \
corresponds to your MySQL server version for the right syntax to use near '1'' at line 1</p>";

/// The leak at the start of a page.
const LEAK_PAGE: &[u8] = b"<html><body><p>You have an error in your SQL syntax; check the manual \
that corresponds to your MySQL server version for the right syntax to use near '1'' at line 1</p>";

/// A phase-3 rule of the operator's: a debug header must not leave the network.
const OWN_RULE: &str = "SecRule RESPONSE_HEADERS:X-Debug-Sql \"@rx .\" \
    \"id:1000010,phase:3,deny,status:403,log,msg:'debug header leaked'\"\n";

/// 200 KiB of benign HTML in 8 pieces: larger than the inspected prefix (64 KiB).
fn big_page() -> Vec<Vec<u8>> {
    (0..8)
        .map(|i| {
            let mut piece = format!("<div id=\"part{i}\">").into_bytes();
            while piece.len() < 25 * 1024 {
                piece.extend_from_slice(
                    b"<p>Thanks for your message, an agent will reply soon.</p>\n",
                );
            }
            piece.extend_from_slice(b"</div>\n");
            piece
        })
        .collect()
}

async fn pages() -> Pages {
    let big = big_page();
    let big: Vec<&[u8]> = big.iter().map(Vec::as_slice).collect();
    Pages::start(vec![
        (
            "/leak.html",
            Page::new(
                "text/html",
                &[b"<html><body>", LEAK, b"</body></html>"],
                false,
            ),
        ),
        // Chunked: inspected on its first piece (streams are never held), where the leak is.
        (
            "/leak-chunked.html",
            Page::new(
                "text/html; charset=utf-8",
                &[LEAK_PAGE, b"</body></html>"],
                true,
            ),
        ),
        // A stream of text: arrives whole, piece by piece.
        (
            "/stream.txt",
            Page::new(
                "text/plain",
                &[b"data: one\n\n", b"data: two\n\n", b"data: three\n\n"],
                true,
            ),
        ),
        (
            "/error.json",
            Page::new("application/json", &[b"{\"error\":\"", LEAK, b"\"}"], false),
        ),
        (
            "/leak.bin",
            Page::new("application/octet-stream", &[LEAK], false),
        ),
        ("/big.html", Page::new("text/html", &big, true)),
        (
            "/debug.html",
            Page::new("text/html", &[b"<html>debug</html>"], false)
                .header("X-Debug-Sql", "select * from users"),
        ),
    ])
    .await
}

fn start(pages: &Pages, certs: &Certs, tls_port: u16) -> Gateway {
    let dir = support::TempDir::new("waf-rules");
    let rules = dir.path("own.conf");
    std::fs::write(&rules, OWN_RULE).unwrap();
    let body = format!(
        "[tls]\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n\
         [plugins.waf]\ntype = \"waf\"\nrules_file = \"{}\"\n\
         [[services]]\nname = \"site\"\nendpoints = [{{ addr = \"{}\" }}]\n\
         [[routes]]\nname = \"site\"\npath = \"/\"\nservice = \"site\"\nplugins = [\"waf\"]\n",
        certs.path("localhost.pem"),
        certs.path("localhost.key"),
        rules.display(),
        pages.addr
    );
    let gw = Gateway::start_with_text(move |(port, admin, gdir)| {
        Gateway::config_text(port, admin, gdir, &body).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n"),
        )
    });
    // The rules file must outlive the start; the gateway read it.
    drop(dir);
    gw
}

/// One GET over raw HTTP/1.1, read until the gateway closes or 5 s pass: the head and the
/// bytes after it, and whether the connection was closed.
fn raw_get(addr: &str, path: &str) -> (String, Vec<u8>, bool) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nUser-Agent: raw-test/1.0\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(all.len(), |p| p + 4);
    let head = String::from_utf8_lossy(&all[..at]).into_owned();
    (head, all[at..].to_vec(), closed)
}

/// `curl` (a client nobody here wrote): its exit code, the HTTP status and the body.
fn curl(args: &[&str], url: &str) -> (i32, String, Vec<u8>) {
    let dir = support::TempDir::new("curl");
    let body = dir.path("body");
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_rules_cut_leaks_and_pass_everything_else_intact() {
    let pages = pages().await;
    let certs = Certs::make(&["localhost"]);
    let tls_port = free_port();
    let gw = start(&pages, &certs, tls_port);
    let addr = gw.addr();

    // A leak with a Content-Length, and one chunked: no byte of the body is sent, and the
    // connection closes. Pingora has written the header by then, but the edge still holds
    // it (an HTTP/1 head waits for its body, to leave in one send), so it does not go out
    // either: the client sees a connection closed without an answer. Either way no 200
    // with a body reaches it.
    for path in ["/leak.html", "/leak-chunked.html", "/error.json"] {
        let (head, body, closed) = tokio::task::block_in_place(|| raw_get(&addr, path));
        assert!(closed, "{path}: the connection is closed after the cut");
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 200"),
            "{path}: {head}\n{}",
            gw.stderr()
        );
        assert!(
            body.is_empty(),
            "{path}: nothing of the body is sent: {:?}",
            String::from_utf8_lossy(&body)
        );
    }
    // curl sees a failed transfer (52: empty reply; 18: partial file), not a complete 200.
    let (code, _, body) = tokio::task::block_in_place(|| curl(&[], &gw.url("/leak.html")));
    assert!(matches!(code, 52 | 18), "curl exit {code}");
    assert!(body.is_empty());
    // Over HTTP/2 the stream is reset: curl fails too, and gets none of the body.
    let url = format!("https://localhost:{tls_port}/leak.html");
    let resolve = format!("localhost:{tls_port}:127.0.0.1");
    let ca = certs.ca();
    let h2 = [
        "--http2",
        "--cacert",
        ca.as_str(),
        "--resolve",
        resolve.as_str(),
    ];
    let (code, _, body) = tokio::task::block_in_place(|| curl(&h2, &url));
    assert_ne!(code, 0, "curl over h2 must fail on a cut response");
    assert!(!contains(&body, b"SQL syntax"));

    // An operator's phase-3 rule: 403 from the gateway instead of the upstream's answer.
    let (code, status, body) = tokio::task::block_in_place(|| curl(&[], &gw.url("/debug.html")));
    assert_eq!((code, status.as_str()), (0, "403"));
    let answer = support::json(&String::from_utf8_lossy(&body));
    assert_eq!(
        answer["message"],
        "response blocked by the web application firewall"
    );
    assert!(
        answer["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{answer}"
    );

    // Benign and bigger than the inspected prefix: byte for byte, over h1 and h2, twice on
    // one keep-alive connection.
    let big = big_page().concat();
    let big_url = gw.url("/big.html");
    let (code, status, body) = tokio::task::block_in_place(|| curl(&[], &big_url));
    assert_eq!((code, status.as_str()), (0, "200"));
    assert!(body == big, "{} bytes instead of {}", body.len(), big.len());
    let (code, _, body) = tokio::task::block_in_place(|| {
        curl(&h2, &format!("https://localhost:{tls_port}/big.html"))
    });
    assert_eq!(code, 0);
    assert!(
        body == big,
        "h2: {} bytes instead of {}",
        body.len(),
        big.len()
    );
    let http = support::client();
    for _ in 0..2 {
        let resp = http.get(&big_url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.bytes().await.unwrap() == big);
    }

    // A stream of an inspected type arrives whole (its first piece inspected, none held).
    let (code, status, body) = tokio::task::block_in_place(|| curl(&[], &gw.url("/stream.txt")));
    assert_eq!(
        (code, status.as_str(), body.as_slice()),
        (0, "200", &b"data: one\n\ndata: two\n\ndata: three\n\n"[..])
    );

    // A type that is not inspected streams through as it is.
    let (code, status, body) = tokio::task::block_in_place(|| curl(&[], &gw.url("/leak.bin")));
    assert_eq!((code, status.as_str(), body.as_slice()), (0, "200", LEAK));

    // The access log says what was blocked and why; the metric counts it.
    let (cut, log) = gw
        .access_log_lines(6, |l| l["waf_response"]["action"] == "block")
        .await;
    let leak = cut
        .iter()
        .find(|l| l["path"] == "/leak-chunked.html")
        .unwrap_or_else(|| panic!("{log}"));
    let rules = leak["waf_response"]["rules"].as_array().unwrap();
    assert!(rules.contains(&serde_json::json!(951230)), "{leak}");
    assert!(rules.contains(&serde_json::json!(959100)), "{leak}");
    assert!(
        leak["waf_response"]["score"].as_u64().unwrap() >= 4,
        "{leak}"
    );
    let debug = cut
        .iter()
        .find(|l| l["path"] == "/debug.html")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(debug["status"], 403);
    assert_eq!(debug["waf_response"]["rules"], serde_json::json!([1000010]));
    let metrics = gw.metrics().await;
    assert!(
        metrics
            .contains(r#"tidegate_waf_matches_total{action="block",route="site",rule="951230"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tidegate_waf_matches_total{action="block",route="site",rule="1000010"} 1"#
        ),
        "{metrics}"
    );
    assert!(pages.hits() >= 10);
}
