#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The WAF and request-block plugins through a real gateway. The CRS engine (the default:
//! libmodsecurity + Debian's OWASP CRS): attacks in the query, cookies, form, JSON, XML and
//! multipart bodies and the User-Agent are refused before the upstream with the rule ids in
//! the access log and the metric; detect mode passes and counts; exclusions exempt one
//! parameter; per-route overrides; the operator's own rules file, swapped under load without
//! a failed request, and a broken one refused with the engine's message while the old rules
//! keep serving. The lite engine: the same attacks. Both: false-positive rates on real-looking
//! chat, JSON API and form traffic written for this project (tests/corpora/SOURCES.md).
//! Detection is measured by the standard suite: the CRS regression tests
//! (scripts/crs-tests.sh, run by scripts/test.sh for both engines).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::upstream::Upstream;
use support::{client, Gateway};

fn waf_config(up: &Upstream, engine: &str) -> String {
    // The exclusion names the parameter as each engine does: ModSecurity calls a JSON
    // member `json.NAME`; the lite engine uses the member name.
    let exclusion = if engine == "crs" {
        r#"{ tags = ["attack-xss"], path = "/notes/", params = ["json.content"] }"#
    } else {
        r#"{ path = "/notes/", params = ["content"], checks = ["xss"] }"#
    };
    format!(
        r#"
[plugins.waf]
type = "waf"
engine = "{engine}"
mode = "block"
exclusions = [{exclusion}]
[plugins.waf-detect]
type = "waf"
engine = "{engine}"
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

/// Requests each engine must refuse with 403, by what they carry.
fn attacks(http: &reqwest::Client, gw: &Gateway) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    vec![
        (
            "sqli in query",
            http.get(gw.url("/items?id=1%27%20OR%20%271%27%3D%271")),
        ),
        (
            "xss in query",
            http.get(gw.url("/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
        ),
        (
            "traversal",
            http.get(gw.url("/files?name=..%2f..%2f..%2fetc%2fpasswd")),
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
                .body(r#"{"title":"<script>alert(document.cookie)</script>"}"#),
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
    ]
}

/// Requests only the CRS engine inspects: more body types, the method policy.
fn crs_only_attacks(
    http: &reqwest::Client,
    gw: &Gateway,
) -> Vec<(&'static str, reqwest::RequestBuilder)> {
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"shell.php\"\r\nContent-Type: application/octet-stream\r\n\r\n<?php system($_GET['c']); ?>\r\n--XyZ--\r\n";
    vec![
        (
            "php upload in multipart",
            http.post(gw.url("/upload"))
                .header("content-type", "multipart/form-data; boundary=XyZ")
                .body(multipart),
        ),
        (
            "sqli in xml body",
            http.post(gw.url("/soap"))
                .header("content-type", "text/xml")
                .body("<q><id>1' UNION SELECT password FROM users--</id></q>"),
        ),
        (
            "method outside allowed_methods",
            http.request(
                reqwest::Method::from_bytes(b"PROPFIND").unwrap(),
                gw.url("/"),
            ),
        ),
        ("restricted file", http.get(gw.url("/.git/config"))),
    ]
}

async fn assert_refused(what: &str, request: reqwest::RequestBuilder) {
    let resp = request.send().await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 403, "{what}: {body}");
    assert!(body.contains("\"error\":\"Forbidden\""), "{what}: {body}");
    assert!(body.contains("\"request_id\":\""), "{what}: {body}");
}

/// Innocent requests that look a little like attacks pass; the excluded JSON member may
/// carry markup on /notes/, the others may not.
async fn assert_innocents_pass(http: &reqwest::Client, gw: &Gateway) {
    for url in [
        "/search?q=O%27Brien%27s%20order",
        "/docs/a.b.c/readme.md?ref=main",
        "/search?q=price%20%3C%2010%20and%20size%20%3E%202",
        "/api/conversations?status=open&sort=-updated_at&page=2",
    ] {
        let resp = http.get(gw.url(url)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
    }
    let resp = http
        .post(gw.url("/notes/1"))
        .header("content-type", "application/json")
        .body(r#"{"title":"hello","content":"<b onmouseover=alert(1)>hi</b>"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crs_attacks_are_refused_before_the_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&waf_config(&up, "crs"));
    let http = client();
    let hits = up.hits();
    for (what, request) in attacks(&http, &gw)
        .into_iter()
        .chain(crs_only_attacks(&http, &gw))
    {
        assert_refused(what, request).await;
    }
    assert_eq!(up.hits(), hits, "a blocked request reached the upstream");
    assert_innocents_pass(&http, &gw).await;

    // The access log names the rules and the score.
    let (blocked, log) = gw
        .access_log_lines(10, |l| l["waf"]["action"] == "block")
        .await;
    assert!(blocked.len() >= 10, "{log}");
    let sqli = blocked
        .iter()
        .find(|l| l["path"].as_str().is_some_and(|p| p.starts_with("/items")))
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(sqli["status"], 403);
    assert_eq!(sqli["waf"]["engine"], "crs");
    assert!(sqli["waf"]["score"].as_u64().unwrap() >= 5, "{sqli}");
    let rules = sqli["waf"]["rules"].as_array().unwrap();
    assert!(rules.contains(&serde_json::json!(942100)), "{sqli}");

    // Detect mode: passes, logs and counts by route, rule and action.
    let resp = http
        .get(gw.url("/tuning/items?id=1%27%20OR%20%271%27%3D%271"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"tidegate_waf_matches_total{action="detect",route="tuning",rule="942100"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"tidegate_waf_matches_total{action="block",route="enforced",rule="942100"}"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tidegate_plugin_refusals_total{plugin="waf",status="403"}"#),
        "{metrics}"
    );
    assert!(gw
        .stderr()
        .contains("waf waf-detect: detect request on route tuning"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_attacks_are_refused_before_the_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&waf_config(&up, "lite"));
    let http = client();
    let hits = up.hits();
    for (what, request) in attacks(&http, &gw) {
        assert_refused(what, request).await;
    }
    assert_eq!(up.hits(), hits, "a blocked request reached the upstream");
    assert_innocents_pass(&http, &gw).await;
    let resp = http
        .get(gw.url("/tuning/items?id=1%27%20OR%20%271%27%3D%271"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains(
            r#"tidegate_waf_matches_total{action="detect",route="tuning",rule="sqli"} 1"#
        ),
        "{metrics}"
    );
    assert!(gw
        .stderr()
        .contains("waf waf-detect: sqli in query:id on route tuning"));
}

/// The operator's own SecLang rule: refuses `?probe=forbidden`.
const OWN_RULE: &str = "SecRule ARGS:probe \"@streq forbidden\" \"id:1000001,phase:2,deny,status:403,log,msg:'probe refused'\"\n";

fn own_rules_config(up: &Upstream, rules_file: &std::path::Path) -> String {
    format!(
        "[plugins.waf]\ntype = \"waf\"\nrules_file = \"{}\"\n{}",
        rules_file.display(),
        support::service_route(up.addr, "/", &["waf"])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_swap_under_load_without_a_failed_request_and_broken_rules_are_refused() {
    let up = Upstream::start("a").await;
    let dir = support::TempDir::new("waf-rules");
    let (empty, own, broken) = (
        dir.path("empty.conf"),
        dir.path("own.conf"),
        dir.path("broken.conf"),
    );
    std::fs::write(&empty, "# no rules of our own\n").unwrap();
    std::fs::write(&own, OWN_RULE).unwrap();
    // An unterminated action list (a regex that does not compile is only logged by
    // libmodsecurity 3.0.9, not refused).
    std::fs::write(
        &broken,
        "# mine\nSecRule ARGS \"@rx x\" \"id:1000002,phase:2,deny,\n",
    )
    .unwrap();
    let gw = Gateway::start(&own_rules_config(&up, &empty));
    let http = client();
    let probe = gw.url("/x?probe=forbidden");
    assert_eq!(http.get(&probe).send().await.unwrap().status(), 200);

    // Benign traffic and attacks from 4 clients while the rules change 20 times: every
    // benign request is answered 200, every attack 403, whichever rules serve it.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        let (ok_url, attack_url) = (
            gw.url(&format!("/api/messages?conversation={c}&page=1")),
            gw.url("/items?id=1%27%20OR%20%271%27%3D%271"),
        );
        clients.push(tokio::spawn(async move {
            let http = client();
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (url, want) = if i % 5 == 4 {
                    (&attack_url, 403)
                } else {
                    (&ok_url, 200)
                };
                sent.fetch_add(1, Ordering::Relaxed);
                match http.get(url).send().await {
                    Ok(r) if r.status() == want => {}
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for i in 0..20 {
        let file = if i % 2 == 0 { &own } else { &empty };
        let (code, answer) = gw
            .put_config(gw.full_config(&own_rules_config(&up, file)))
            .await;
        assert_eq!(code, 200, "{answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("rules swapped 20 times under load: {sent} requests, {failed} failed");
    assert!(sent > 200, "too little load to mean anything: {sent}");
    assert_eq!(failed, 0);

    // The last swap loaded the operator's rule.
    let (code, answer) = gw
        .put_config(gw.full_config(&own_rules_config(&up, &own)))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(http.get(&probe).send().await.unwrap().status(), 403);

    // A rules file that does not parse: refused with the engine's message and where, and the
    // rules serving keep serving.
    let (code, answer) = gw
        .put_config(gw.full_config(&own_rules_config(&up, &broken)))
        .await;
    assert_eq!(code, 400, "{answer}");
    let text = answer.to_string();
    assert!(text.contains("rules_file: Rules error."), "{text}");
    assert!(text.contains("broken.conf. Line: 3."), "{text}");
    assert_eq!(http.get(&probe).send().await.unwrap().status(), 403);
    assert_eq!(
        http.get(gw.url("/x?probe=fine"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_overrides_apply_on_their_route_only() {
    let up = Upstream::start("a").await;
    let body = format!(
        r#"
[plugins.waf]
type = "waf"
routes = {{ reports = {{ mode = "detect" }}, admin = {{ status = 406 }} }}
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "reports"
path = "/reports/"
service = "s"
plugins = ["waf"]
[[routes]]
name = "admin"
path = "/admin/"
service = "s"
plugins = ["waf"]
[[routes]]
name = "rest"
path = "/"
service = "s"
plugins = ["waf"]
"#,
        up.addr
    );
    let gw = Gateway::start(&body);
    let http = client();
    let sqli = "?id=1%27%20OR%20%271%27%3D%271";
    for (path, want) in [("/reports/x", 200), ("/admin/x", 406), ("/other", 403)] {
        let resp = http
            .get(gw.url(&format!("{path}{sqli}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{path}");
    }
}

fn corpus(name: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpora")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// How the gateway answered each line: 403 (WAF), 200 (passed) or anything else.
#[derive(Default, Debug)]
struct Tally {
    blocked: usize,
    passed: usize,
    other: usize,
}

impl Tally {
    fn add(&mut self, status: u16) {
        match status {
            403 => self.blocked += 1,
            200 => self.passed += 1,
            _ => self.other += 1,
        }
    }
    fn total(&self) -> usize {
        self.blocked + self.passed + self.other
    }
    fn rate(&self) -> f64 {
        100.0 * self.blocked as f64 / self.total().max(1) as f64
    }
}

/// False-positive ceilings (%) a little beyond what was measured (docs/plugins/waf.md), so
/// that a regression fails the test: per file, and over all three. Attack detection is
/// measured by the CRS regression suite (scripts/crs-tests.sh) instead of a corpus.
struct Bounds {
    chat: f64,
    api_json: f64,
    forms: f64,
    overall: f64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crs_false_positive_rates_on_real_looking_traffic() {
    // Stock CRS 3.3.4 blocks non-Latin chat text (941310; the same requests through nginx +
    // ModSecurity are blocked alike): see the multilingual profile below.
    let bounds = Bounds {
        chat: 5.0,
        api_json: 3.0,
        forms: 2.0,
        overall: 3.6,
    };
    corpus_rates("crs", "", &bounds).await;
}

/// The CRS with the one exclusion docs/plugins/waf.md recommends for sites whose users write
/// in Cyrillic, CJK and other non-Latin scripts: rule 941310 reads the UTF-8 bytes 0xBC and
/// 0xBE (in "м", "о" and many CJK characters) as the US-ASCII `<` and `>` of an XSS evasion
/// (CRS issue #1942).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crs_multilingual_profile_false_positive_rates() {
    let bounds = Bounds {
        chat: 1.0,
        api_json: 1.0,
        forms: 1.0,
        overall: 1.0,
    };
    corpus_rates("crs", "exclusions = [{ ids = [941310] }]", &bounds).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lite_false_positive_rates_on_real_looking_traffic() {
    // The lite engine's libinjection reads `#A-10293` and `user_id` in backticks as SQL (a
    // comment, a quoted identifier): the cheap engine's price.
    let bounds = Bounds {
        chat: 2.0,
        api_json: 9.0,
        forms: 5.5,
        overall: 4.2,
    };
    corpus_rates("lite", "", &bounds).await;
}

/// Sends every line of the three real-looking traffic files (written for this project:
/// tests/corpora/SOURCES.md) as a site's browser or API client would, and counts refusals.
async fn corpus_rates(engine: &str, settings: &str, bounds: &Bounds) {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(
        &(format!("[plugins.waf]\ntype = \"waf\"\nengine = \"{engine}\"\n{settings}\n")
            + &support::service_route(up.addr, "/", &["waf"])),
    );
    let http = client();
    // A site's name in Host, as browsers send it (a numeric Host is itself a CRS warning,
    // 920350, and would add 3 points to every request).
    let status = |req: reqwest::RequestBuilder| async move {
        req.header("host", "chat.example.com")
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    };
    let files = [
        ("benign/chat.txt", "chat message (JSON body)", bounds.chat),
        ("benign/api_json.txt", "JSON API body", bounds.api_json),
        ("benign/forms.txt", "form body", bounds.forms),
    ];
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut all = Tally::default();
    for (file, how, ceiling) in files {
        let mut t = Tally::default();
        for line in corpus(file) {
            let request = match how {
                "chat message (JSON body)" => http
                    .post(gw.url("/api/v1/conversations/8812/messages"))
                    .header("content-type", "application/json")
                    .body(serde_json::json!({ "type": "text", "text": line }).to_string()),
                "JSON API body" => http
                    .post(gw.url("/api/v1/resources"))
                    .header("content-type", "application/json")
                    .body(line.clone()),
                _ => http
                    .post(gw.url("/forms/submit"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(line.clone()),
            };
            let s = status(request).await;
            if s == 403 {
                println!("false positive ({file}): {line}");
            }
            t.add(s);
            all.add(s);
        }
        report.push(format!(
            "| {file} | {how} | {} | {:.2} % false positives ({} blocked, {} passed, {} other) |",
            t.total(),
            t.rate(),
            t.blocked,
            t.passed,
            t.other
        ));
        if t.rate() > ceiling {
            failures.push(format!(
                "{file}: false positives {:.2} % > {ceiling} %",
                t.rate()
            ));
        }
        // Every line must have been answered 200 or 403: anything else is a broken test.
        if t.other > 0 {
            failures.push(format!("{file}: {} answers neither 200 nor 403", t.other));
        }
    }
    println!("| corpus | sent as | requests | result |\n| --- | --- | ---: | --- |");
    for line in &report {
        println!("{line}");
    }
    println!(
        "engine {engine} {settings}: {:.2} % false positives of {}",
        all.rate(),
        all.total()
    );
    assert!(
        all.rate() <= bounds.overall,
        "false positives on real-looking traffic {:.2} % > {} %",
        all.rate(),
        bounds.overall
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
