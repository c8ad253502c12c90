#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The dashboards and alert rules against a real Prometheus scraping a real gateway that has
//! served a mix of traffic: every dashboard expression must return data, every alert rule
//! must evaluate, and every metric they name must exist. Renaming a metric in code breaks it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::upstream::Upstream;
use support::{client, ws, Gateway, TempDir, TOKEN};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{name} is not installed; scripts/test.sh installs it (apt-get install prometheus)"
    );
    String::from_utf8(found.stdout).unwrap().trim().to_string()
}

struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &TempDir, target: u16) -> Prometheus {
    std::fs::copy(
        repo().join("conf/prometheus/alerts.yml"),
        dir.path("alerts.yml"),
    )
    .unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\nscrape_configs:\n  - job_name: tidegate\n    static_configs:\n      - targets: [\"127.0.0.1:{target}\"]\n"
    );
    std::fs::write(dir.path("prometheus.yml"), config).unwrap();
    let port = support::free_port();
    let child = Command::new(tool("prometheus"))
        .arg(format!(
            "--config.file={}",
            dir.path("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    Prometheus { child, port }
}

async fn query(prom: &Prometheus, expr: &str) -> serde_json::Value {
    let text = client()
        .get(format!("http://127.0.0.1:{}/api/v1/query", prom.port))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("bad answer for {expr}: {text}"))
}

/// Grafana variables as a person would pick them: every route, a short rate window.
fn substitute(expr: &str) -> String {
    expr.replace("$__rate_interval", "30s")
        .replace("$route", ".*")
}

fn dashboard_exprs() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = repo().join("conf/grafana");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "dashboards missing in {dir:?}");
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let title = format!(
                    "{} / {}",
                    d["title"].as_str().unwrap(),
                    p["title"].as_str().unwrap()
                );
                out.push((title, t["expr"].as_str().unwrap().to_string()));
            }
        }
    }
    out
}

fn alert_exprs() -> Vec<String> {
    std::fs::read_to_string(repo().join("conf/prometheus/alerts.yml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr: ").map(str::to_string))
        .collect()
}

fn metric_names(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"tidegate_[a-z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_work_against_real_prometheus() {
    let dir = TempDir::new("prom");
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let dead = support::free_port();
    let certs = support::tls::Certs::make(&["localhost"]);
    let tls_port = support::free_port();
    let body = format!(
        r#"
[[certificates]]
cert = "{cert}"
key = "{key}"
default = true
[[services]]
name = "api"
endpoints = [{{ addr = "{}", labels = {{ stage = "blue" }} }}, {{ addr = "127.0.0.1:{dead}", weight = 0 }}]
[[services]]
name = "down"
retries = 0
endpoints = [{{ addr = "127.0.0.1:{dead}" }}]
[[services]]
name = "chat"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "api"
path = "/api/"
service = "api"
plugins = ["tenant-limit"]
[[routes]]
name = "fleet"
path = "/fleet/"
service = "api"
plugins = ["fleet-limit", "cc"]
[plugins.tenant-limit]
type = "key-rate-limit"
key = "header:x-tenant-id"
missing_key = "limit-as:anonymous"
limits = [{{ per = "minute", count = 50 }}]
overrides = {{ "acme" = {{ limits = [{{ per = "minute", count = 1000 }}] }} }}
[plugins.fleet-limit]
type = "key-rate-limit"
key = "client_ip"
scope = "cluster"
limits = [{{ per = "second", count = 1000 }}]
[plugins.cc]
type = "cc-protection"
key = "header:x-client"
rate = {{ per = "second", count = 3 }}
[redis]
url = "redis://127.0.0.1:{dead}/"
timeout_ms = 20
[nacos]
servers = ["http://127.0.0.1:{dead}"]
timeout_ms = 200
[[services]]
name = "registry-bound"
nacos = {{ service = "orders" }}
[[routes]]
name = "canary"
path = "/canary/"
service = "api"
split = [{{ labels = {{ stage = "blue" }}, weight = 1 }}]
[plugins.waf]
type = "waf"
[[routes]]
name = "guarded"
path = "/guarded/"
service = "api"
plugins = ["waf"]
[[routes]]
name = "down"
path = "/down/"
service = "down"
[[routes]]
name = "ws"
path = "/ws"
service = "chat"
websocket_idle_timeout_ms = 500
"#,
        up.addr,
        echo.addr,
        cert = certs.path("localhost.pem"),
        key = certs.path("localhost.key"),
    );
    let gw = Gateway::start_with_text(|(port, admin, dir)| {
        Gateway::config_text(port, admin, dir, &body).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n"),
        )
    });
    let prom = start_prometheus(&dir, gw.admin_port);

    // Traffic of every kind, spread over a few seconds so rates have points.
    let http = client();
    for round in 0..6 {
        for _ in 0..20 {
            let resp = http
                .get(gw.url("/api/x"))
                .header("x-tenant-id", "acme")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        // The default tenant runs into its limit; the cluster limit falls back (Redis is
        // down); one client gets banned.
        for _ in 0..12 {
            let _ = http.get(gw.url("/api/x")).send().await.unwrap();
        }
        for _ in 0..5 {
            let _ = http
                .get(gw.url("/fleet/x"))
                .header("x-client", "greedy")
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            http.get(gw.url("/down/x")).send().await.unwrap().status(),
            502
        );
        assert_eq!(
            http.get(gw.url("/canary/x")).send().await.unwrap().status(),
            200
        );
        assert_eq!(
            http.get(gw.url("/guarded/x?id=1%27%20OR%201%3D1--"))
                .send()
                .await
                .unwrap()
                .status(),
            403
        );
        assert_eq!(
            http.get(gw.url("/nowhere")).send().await.unwrap().status(),
            404
        );
        let mut c = ws::connect(&format!("ws://{}/ws", gw.addr())).await;
        assert!(ws::echo(&mut c, "hi").await);
        if round == 0 {
            // One applied and one refused change.
            let put = |text: String| {
                http.put(gw.admin_url("/api/config"))
                    .bearer_auth(TOKEN)
                    .body(text)
                    .send()
            };
            assert_eq!(
                put(gw.full_config(&(body.clone() + "\n")))
                    .await
                    .unwrap()
                    .status(),
                200
            );
            assert_eq!(put("not toml [".into()).await.unwrap().status(), 400);
        }
        std::mem::forget(c); // left open: it idles out (500 ms) and is counted as closed
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // Prometheus has scraped the gateway several times.
    assert!(
        support::eventually(Duration::from_secs(20), || async {
            let r = query(&prom, "count_over_time(up{job=\"tidegate\"}[1m])").await;
            r["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|v| v.parse::<u32>().ok())
                >= Some(5)
        })
        .await,
        "prometheus did not scrape the gateway"
    );
    let up_now = query(&prom, "up{job=\"tidegate\"}").await;
    assert_eq!(up_now["data"]["result"][0]["value"][1], "1");

    let mut failures = Vec::new();
    let mut names = Vec::new();
    for (title, expr) in dashboard_exprs() {
        names.extend(metric_names(&expr));
        let r = query(&prom, &substitute(&expr)).await;
        if r["status"] != "success"
            || r["data"]["result"]
                .as_array()
                .is_none_or(std::vec::Vec::is_empty)
        {
            failures.push(format!("dashboard {title}: {expr} → {r}"));
        }
    }
    for expr in alert_exprs() {
        names.extend(metric_names(&expr));
        let r = query(&prom, &expr).await;
        if r["status"] != "success" {
            failures.push(format!("alert rule {expr} → {r}"));
        }
    }
    names.sort();
    names.dedup();
    assert!(names.len() >= 10, "too few metrics referenced: {names:?}");
    for name in &names {
        let r = query(&prom, &format!("count({name})")).await;
        if r["data"]["result"]
            .as_array()
            .is_none_or(std::vec::Vec::is_empty)
        {
            failures.push(format!("metric {name} is not exported"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config() {
    let promtool = tool("promtool");
    for (args, file) in [("rules", "alerts.yml"), ("config", "prometheus.yml")] {
        let out = Command::new(&promtool)
            .arg("check")
            .arg(args)
            .arg(repo().join("conf/prometheus").join(file))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {args} {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every metric the dashboards and alerts name is on a fresh gateway's /metrics before any
/// request — with no plugin configured as a family (HELP/TYPE) and, for what the config's
/// routes and plugins can produce, as series at 0 — so `absent()` alerts mean what they say
/// and panels show 0, not "no data".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_gateway_lists_every_metric_the_dashboards_use() {
    let mut names: Vec<String> = dashboard_exprs()
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .chain(alert_exprs().iter().flat_map(|e| metric_names(e)))
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(&n)
                .to_string()
        })
        .collect();
    names.sort();
    names.dedup();
    let bare = Gateway::start("[[routes]]\nname = \"demo\"\nrespond = { status = 200 }\n");
    let metrics = bare.metrics().await;
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !metrics.contains(&format!("# TYPE {n} ")))
        .collect();
    assert!(missing.is_empty(), "not listed: {missing:?}\n{metrics}");

    let up = Upstream::start("a").await;
    let with_plugins = Gateway::start(&format!(
        r#"
[[consumers]]
name = "alice"
keys = ["alice-key-0001"]
[plugins.auth]
type = "key-auth"
[plugins.limit]
type = "key-rate-limit"
key = "consumer"
limits = [{{ count = 10, per = "second" }}]
[plugins.waf]
type = "waf"
[plugins.cc]
type = "cc-protection"
rate = {{ count = 100, per = "second" }}
[[services]]
name = "api"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "api"
path = "/"
service = "api"
plugins = ["auth", "limit", "waf", "cc"]
"#,
        up.addr
    ));
    let metrics = with_plugins.metrics().await;
    for series in [
        r#"tidegate_websocket_tunnels_open{route="api"} 0"#,
        r#"tidegate_websocket_tunnels_closed_total{reason="gateway_closed",route="api"} 0"#,
        r#"tidegate_requests_total{method="GET",route="api",service="api",status_class="2xx"} 0"#,
        r#"tidegate_plugin_refusals_total{plugin="auth",status="401"} 0"#,
        r#"tidegate_plugin_refusals_total{plugin="limit",status="429"} 0"#,
        r#"tidegate_limit_decisions_total{decision="rejected",plugin="limit",tenant="other"} 0"#,
        r#"tidegate_cc_bans_total{plugin="cc"} 0"#,
        // The WAF's refusals at zero; its matches are by CRS rule, so known only once seen.
        r#"tidegate_plugin_refusals_total{plugin="waf",status="403"} 0"#,
        "# TYPE tidegate_waf_matches_total counter",
        "# TYPE tidegate_waf_overload_total counter",
    ] {
        assert!(metrics.contains(series), "missing {series}\n{metrics}");
    }
}
