//! The WAF and request-block plugins through a real gateway: attacks in the query, path,
//! form and JSON bodies, cookies and User-Agent are refused before the upstream; detect mode
//! passes and counts; exclusions exempt one field; and the detection and false-positive
//! rates over the corpora in tests/corpora (sources in tests/corpora/SOURCES.md).

mod support;

use support::upstream::Upstream;
use support::{client, Gateway};

fn waf_config(up: &Upstream) -> String {
    format!(
        r#"
[plugins.waf]
type = "waf"
mode = "block"
exclusions = [{{ path = "/notes/", params = ["content"], checks = ["xss"] }}]
[plugins.waf-detect]
type = "waf"
mode = "detect"
[plugins.block]
type = "request-block"
paths = ["^/internal/", "\\.(?:bak|sql)$"]
user_agents = ["(?i)badbot"]
headers = {{ "x-debug-mode" = "." }}
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "enforced"
path = "/"
service = "s"
plugins = ["block", "waf"]
[[routes]]
name = "tuning"
path = "/tuning/"
service = "s"
plugins = ["waf-detect"]
"#,
        up.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_refused_before_the_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&waf_config(&up));
    let http = client();
    let hits = up.hits();
    let blocked: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "sqli in query",
            http.get(gw.url("/items?id=1%27%20OR%20%271%27%3D%271")),
        ),
        (
            "xss in query",
            http.get(gw.url("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
        ),
        (
            "double-encoded traversal",
            http.get(gw.url("/files?name=%252e%252e%252f%252e%252e%252fetc%252fpasswd")),
        ),
        (
            "cmdi in form body",
            http.post(gw.url("/ping"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("host=127.0.0.1%3B%20cat%20%2Fetc%2Fpasswd"),
        ),
        (
            "xss in json body",
            http.post(gw.url("/notes/1"))
                .header("content-type", "application/json")
                .body(r#"{"title":"<img src=x onerror=alert(1)>"}"#),
        ),
        (
            "sqli in cookie",
            http.get(gw.url("/")).header(
                "cookie",
                "session=abc; pref=1' UNION SELECT password FROM users--",
            ),
        ),
        (
            "scanner",
            http.get(gw.url("/"))
                .header("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)"),
        ),
        (
            "protocol",
            http.request(reqwest::Method::from_bytes(b"TRACE").unwrap(), gw.url("/")),
        ),
        ("request-block path", http.get(gw.url("/internal/metrics"))),
        ("request-block suffix", http.get(gw.url("/backup/db.sql"))),
        (
            "request-block ua",
            http.get(gw.url("/")).header("user-agent", "BadBot/2.0"),
        ),
        (
            "request-block header",
            http.get(gw.url("/")).header("x-debug-mode", "1"),
        ),
    ];
    for (what, request) in blocked {
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{what}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("\"error\":\"Forbidden\""), "{what}: {body}");
    }
    assert_eq!(up.hits(), hits, "a blocked request reached the upstream");

    // Innocent requests that look a little like attacks pass.
    for url in [
        "/search?q=O%27Brien%20select%20union%20drop",
        "/docs/a.b.c/readme.md?ref=main",
        "/search?q=price%20%3C%2010%20and%20size%20%3E%202",
    ] {
        let resp = http.get(gw.url(url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
    }
    // The excluded field may carry markup; the others may not.
    let resp = http
        .post(gw.url("/notes/1"))
        .header("content-type", "application/json")
        .body(r#"{"title":"hello","content":"<b onmouseover=alert(1)>hi</b>"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Detect mode: passes, logs and counts.
    let resp = http
        .get(gw.url("/tuning/items?id=1%27%20OR%20%271%27%3D%271"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"tidegate_waf_matches_total{action="detected",check="sqli",plugin="waf-detect"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics
        .contains(r#"tidegate_waf_matches_total{action="blocked",check="sqli",plugin="waf"} 2"#));
    assert!(gw
        .stderr()
        .contains("waf waf-detect: sqli in query:id on route tuning"));
}
