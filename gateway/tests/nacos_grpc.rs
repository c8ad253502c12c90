#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The Nacos gRPC client (`[nacos] protocol = "grpc"`, the default) against a real rnacos
//! (scripts/rnacos.sh; gRPC on its HTTP port + 1000): changes pushed within tens of ms, next to
//! the HTTP poller on the same scenario; the shared config pushed, a refused publication, a
//! namespace; a registry restart under load; lost pushes repaired by the resync; reconnects
//! that keep exactly one self-registration; failover; access tokens and a wrong password;
//! cluster bindings; and interop with a Nacos client nobody here wrote (nacos-group's Rust
//! SDK through its Python binding, `TIDEGATE_NACOS_SDK_PYTHON`, set up by
//! gateway/tests/nacos_sdk/setup.sh, which scripts/test.sh runs).

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::nacos::Nacos;
use support::upstream::Upstream;
use support::{client, eventually, metric_sum, Gateway, TempDir};

/// `[nacos]` with `servers`, a service `chat` bound to the registry's `chat` and a route `/`
/// to it; `extra_nacos` goes into `[nacos]`, `more` after the route.
fn config(servers: &[String], extra_nacos: &str, more: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        r#"
[nacos]
servers = [{servers}]
poll_interval_ms = 300
timeout_ms = 1000
{extra_nacos}

[[services]]
name = "chat"
nacos = {{ service = "chat" }}
retries = 2

[[routes]]
name = "chat"
path = "/"
service = "chat"
{more}
"#,
        servers = servers.join(", ")
    )
}

/// Which upstream answered, or the status when the gateway answered itself.
async fn who(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(resp) if resp.status() == 200 => resp
            .headers()
            .get("x-upstream")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_else(|| "200 without x-upstream".into()),
        Ok(resp) => resp.status().as_str().to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// Waits until 20 requests in a row to `path` are answered by endpoints in `want`, each of
/// them seen; returns when that began, from `since`: the first answer after the last
/// unwanted one, or the first answer of the last endpoint to appear.
async fn settles_on(gw: &Gateway, path: &str, want: &[&str], since: Instant) -> Duration {
    let http = client();
    let mut streak = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_seen: std::collections::BTreeMap<String, Duration> = Default::default();
    let mut last = String::new();
    while Instant::now() < deadline {
        let got = who(&http, &gw.url(path)).await;
        if want.contains(&got.as_str()) {
            streak += 1;
            first_seen.entry(got).or_insert_with(|| since.elapsed());
            if streak >= 20 && first_seen.len() == want.len() {
                return *first_seen.values().max().unwrap();
            }
        } else {
            streak = 0;
            first_seen.clear();
            last = got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "traffic on {path} never settled on {want:?} (last other answer {last:?}):\n{}",
        gw.stderr()
    );
}

async fn settles(gw: &Gateway, want: &[&str], since: Instant) -> Duration {
    settles_on(gw, "/x", want, since).await
}

async fn readyz(gw: &Gateway) -> serde_json::Value {
    let text = client()
        .get(gw.admin_url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    support::json(&text)
}

/// GET `path`: "STATUS BODY".
async fn body(gw: &Gateway, path: &str) -> String {
    match client().get(gw.url(path)).send().await {
        Ok(resp) => format!("{} {}", resp.status().as_u16(), resp.text().await.unwrap()),
        Err(e) => format!("error: {e}"),
    }
}

/// The hosts of `service` in the registry.
async fn hosts(nacos: &Nacos, service: &str) -> Vec<serde_json::Value> {
    nacos.instances(service).await["hosts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// How often the gateway's log says `needle`.
fn log_count(gw: &Gateway, needle: &str) -> usize {
    gw.stderr().matches(needle).count()
}

/// `tidegate_nacos_requests_total{result}`.
fn nacos_requests(metrics: &str, result: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with(&format!(
                "tidegate_nacos_requests_total{{result=\"{result}\"}}"
            ))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Requests to `url` from `workers` tasks until `stop` (bounded: 60 s at most); counts
/// answers other than 200.
struct Load {
    stop: Arc<AtomicBool>,
    failed: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    fn start(url: String, workers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let tasks = (0..workers)
            .map(|_| {
                let (url, stop, failed, total) =
                    (url.clone(), stop.clone(), failed.clone(), total.clone());
                tokio::spawn(async move {
                    let http = client();
                    let mut errors = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(60);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        match http.get(&url).send().await {
                            Ok(r) if r.status() == 200 => {}
                            other => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                if errors.len() < 5 {
                                    errors.push(format!("{:?}", other.map(|r| r.status())));
                                }
                            }
                        }
                        total.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    errors
                })
            })
            .collect();
        Load {
            stop,
            failed,
            total,
            tasks,
        }
    }

    /// Stops; (failed, total, the first errors).
    async fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for task in self.tasks {
            errors.extend(task.await.unwrap());
        }
        (
            self.failed.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            errors,
        )
    }
}

/// One registry change after another, each timed from the change to settled traffic.
async fn change_scenario(protocol: &str) -> Vec<(&'static str, Duration)> {
    let nacos = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    nacos
        .register("chat", &a_addr, 1.0, r#"{"stage":"blue"}"#)
        .await;
    let green = "[[routes]]\nname = \"green\"\npath = \"/green/\"\nservice = \"chat\"\nsubset = { stage = \"green\" }\n";
    let gw = Gateway::start(&config(
        &[nacos.url()],
        &format!("protocol = \"{protocol}\""),
        green,
    ));
    let http = client();
    assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());
    let ready = readyz(&gw).await;
    let api = if protocol == "grpc" { "grpc" } else { "v1" };
    assert_eq!(ready["registry"]["api"], api, "{ready}");
    assert_eq!(ready["registry"]["state"], "up", "{ready}");

    let mut timings = Vec::new();
    let t = Instant::now();
    nacos
        .register("chat", &b_addr, 1.0, r#"{"stage":"blue"}"#)
        .await;
    timings.push(("register", settles(&gw, &["a", "b"], t).await));

    let t = Instant::now();
    nacos.set_weight("chat", &b_addr, 0.0).await;
    timings.push(("weight 0", settles(&gw, &["a"], t).await));

    let t = Instant::now();
    nacos.set_weight("chat", &b_addr, 2.0).await;
    timings.push(("weight 2", settles(&gw, &["a", "b"], t).await));

    let t = Instant::now();
    nacos.set_enabled("chat", &b_addr, false).await;
    timings.push(("enabled=false", settles(&gw, &["a"], t).await));

    let t = Instant::now();
    nacos.set_enabled("chat", &b_addr, true).await;
    timings.push(("enabled=true", settles(&gw, &["a", "b"], t).await));

    // A label change moves b into the route that takes stage=green only.
    let t = Instant::now();
    nacos
        .set_metadata("chat", &b_addr, r#"{"stage":"green"}"#)
        .await;
    timings.push(("label", settles_on(&gw, "/green/1", &["b"], t).await));

    let t = Instant::now();
    nacos.deregister("chat", &a_addr, false).await;
    timings.push(("deregister", settles(&gw, &["b"], t).await));

    let metrics = gw.metrics().await;
    assert!(
        nacos_requests(&metrics, "ok") > 0.0,
        "no registry call counted:\n{metrics}"
    );
    assert!(metrics.contains("tidegate_nacos_up 1"), "{metrics}");
    timings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_pushed_faster_than_polled() {
    let grpc = change_scenario("grpc").await;
    let http = change_scenario("http").await;
    println!("registry change → settled traffic (20 answers in a row):");
    println!(
        "  {:<14} {:>10} {:>18}",
        "change", "gRPC push", "HTTP poll 300 ms"
    );
    for ((what, pushed), (_, polled)) in grpc.iter().zip(&http) {
        println!("  {what:<14} {pushed:>10.1?} {polled:>18.1?}");
    }
    let mean =
        |t: &[(&str, Duration)]| t.iter().map(|(_, d)| *d).sum::<Duration>() / t.len() as u32;
    println!(
        "  {:<14} {:>10.1?} {:>18.1?}",
        "mean",
        mean(&grpc),
        mean(&http)
    );
    for (what, took) in grpc.iter().chain(&http) {
        // Generous: a loaded 2-core CI machine; the point is the order of magnitude above.
        assert!(*took < Duration::from_secs(2), "{what} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_config_is_pushed_and_a_bad_one_refused() {
    let nacos = Nacos::start();
    let cache = TempDir::new("nacos-grpc-config-cache");
    let bootstrap = format!(
        r#"
[nacos]
servers = ["{url}"]
cache_dir = "{cache}"
[config]
source = "nacos"
data_id = "gateways.toml"
[[routes]]
name = "local"
path = "/local"
respond = {{ status = 200, body = "bootstrap" }}
"#,
        url = nacos.url(),
        cache = cache.0.display()
    );
    let gw = Gateway::start(&bootstrap);
    assert_eq!(body(&gw, "/local").await, "200 bootstrap");
    assert_eq!(readyz(&gw).await["registry"]["api"], "grpc");

    let shared = |version: &str| {
        format!(
            "[[routes]]\nname = \"shared\"\npath = \"/shared\"\nrespond = {{ status = 200, body = \"{version}\" }}\n"
        )
    };
    let mut timings = Vec::new();
    for version in ["v1", "v2"] {
        let t = Instant::now();
        nacos.publish("gateways.toml", &shared(version)).await;
        let want = format!("200 {version}");
        assert!(
            eventually(Duration::from_secs(3), || async {
                body(&gw, "/shared").await == want
            })
            .await,
            "{}",
            gw.stderr()
        );
        timings.push(t.elapsed());
    }
    println!("shared config published → served over gRPC: {timings:?}");
    for took in &timings {
        assert!(*took < Duration::from_secs(2), "took {took:?}");
    }
    assert_eq!(body(&gw, "/local").await.split(' ').next(), Some("404"));

    // A broken publication is refused with its position; v2 keeps serving.
    nacos
        .publish(
            "gateways.toml",
            "[[routes]]\nname = \"x\"\npath = \"/x\"\nservice = \"missing\"\n",
        )
        .await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            gw.config_status().await["last_refused"]["source"] == "nacos"
        })
        .await,
        "{}\n{}",
        gw.config_status().await,
        gw.stderr()
    );
    let refused = gw.config_status().await["last_refused"].clone();
    assert!(
        refused["errors"][0].as_str().unwrap().starts_with("4:11:"),
        "{refused}"
    );
    assert_eq!(body(&gw, "/shared").await, "200 v2");
    let st = gw.config_status().await;
    assert_eq!(st["origin"], "nacos DEFAULT_GROUP/gateways.toml", "{st}");

    // Fixed again: applied.
    nacos.publish("gateways.toml", &shared("v3")).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            body(&gw, "/shared").await == "200 v3"
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_keeps_its_own_instances_and_config() {
    let nacos = Nacos::start();
    let (team, public) = (
        Upstream::start("team").await,
        Upstream::start("public").await,
    );
    let ns = [("namespaceId", "team-a")];
    nacos
        .register_with("chat", &team.addr.to_string(), 1.0, "{}", &ns)
        .await;
    nacos
        .register("chat", &public.addr.to_string(), 1.0, "{}")
        .await;
    let shared = |body: &str| {
        format!(
            "[[services]]\nname = \"chat\"\nnacos = {{ service = \"chat\" }}\n[[routes]]\nname = \"chat\"\npath = \"/\"\nservice = \"chat\"\n[[routes]]\nname = \"who\"\npath = \"=/which-config\"\nrespond = {{ status = 200, body = \"{body}\" }}\n"
        )
    };
    nacos
        .publish_in("team-a", "gateways.toml", &shared("team-a"))
        .await;
    nacos.publish("gateways.toml", &shared("public")).await;
    let gw = Gateway::start(&format!(
        r#"
[nacos]
servers = ["{url}"]
namespace = "team-a"
[config]
source = "nacos"
data_id = "gateways.toml"
"#,
        url = nacos.url()
    ));
    // Both came before the first request (the startup fetch), from the namespace only.
    assert_eq!(
        body(&gw, "/which-config").await,
        "200 team-a",
        "{}",
        gw.stderr()
    );
    settles(&gw, &["team"], Instant::now()).await;

    // Changes in the namespace are pushed; the public namespace's are not seen.
    let team2 = Upstream::start("team2").await;
    let t = Instant::now();
    nacos
        .register_with("chat", &team2.addr.to_string(), 1.0, "{}", &ns)
        .await;
    let took = settles(&gw, &["team", "team2"], t).await;
    println!("namespaced register → settled in {took:?}");
    assert!(took < Duration::from_secs(2));
    let public2 = Upstream::start("public2").await;
    nacos
        .register("chat", &public2.addr.to_string(), 1.0, "{}")
        .await;
    nacos
        .publish("gateways.toml", &shared("public again"))
        .await;
    let t = Instant::now();
    nacos
        .publish_in("team-a", "gateways.toml", &shared("team-a v2"))
        .await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            body(&gw, "/which-config").await == "200 team-a v2"
        })
        .await,
        "{}",
        gw.stderr()
    );
    println!("namespaced config → served in {:?}", t.elapsed());
    settles(&gw, &["team", "team2"], Instant::now()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restart_is_invisible_to_clients() {
    let mut nacos = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    nacos.register("chat", &a_addr, 1.0, "{}").await;
    nacos.register("chat", &b_addr, 1.0, "{}").await;
    let cache = TempDir::new("nacos-grpc-cache");
    let extra = format!(
        "cache_dir = \"{}\"\nregister = {{ service = \"tidegate\" }}",
        cache.0.display()
    );
    let text = config(&[nacos.url()], &extra, "");
    let gw = Gateway::start(&text);
    settles(&gw, &["a", "b"], Instant::now()).await;
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        eventually(Duration::from_secs(5), || registered_in(&nacos, &admin)).await,
        "{}",
        gw.stderr()
    );
    let before = gw.metrics().await;
    assert_eq!(metric_sum(&before, "tidegate_nacos_up"), 1.0);

    let load = Load::start(gw.url("/x"), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Killed: the connection drops, the last known instances keep serving.
    nacos.stop();
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gw).await["registry"]["state"] == "down"
        })
        .await,
        "{}",
        gw.stderr()
    );
    let down = gw.metrics().await;
    assert_eq!(metric_sum(&down, "tidegate_nacos_up"), 0.0);
    assert!(
        eventually(Duration::from_secs(5), || async {
            nacos_requests(&gw.metrics().await, "error") > nacos_requests(&before, "error")
        })
        .await,
        "failed connection attempts are not counted as errors"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Back, with its data (persistent instances kept): reconnected, subscribed again,
    // registered again.
    let t = Instant::now();
    nacos.restart(false);
    assert!(
        eventually(Duration::from_secs(10), || async {
            readyz(&gw).await["registry"]["state"] == "up"
        })
        .await,
        "{}",
        gw.stderr()
    );
    let reconnected = t.elapsed();
    assert!(
        eventually(Duration::from_secs(5), || registered_in(&nacos, &admin)).await,
        "self-registration not restored:\n{}",
        gw.stderr()
    );
    let c = Upstream::start("c").await;
    let t_change = Instant::now();
    nacos.register("chat", &c.addr.to_string(), 1.0, "{}").await;
    let took = settles(&gw, &["a", "b", "c"], t_change).await;
    let (failed, total, errors) = load.finish().await;
    println!(
        "registry restart: reconnected {reconnected:?} after the start, a change after it settled in {took:?}; {failed} failed of {total} requests"
    );
    assert_eq!(failed, 0, "{errors:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let after = gw.metrics().await;
    assert_eq!(metric_sum(&after, "tidegate_nacos_up"), 1.0);
    assert!(nacos_requests(&after, "ok") > nacos_requests(&down, "ok"));

    // Restarted during an outage: the gateway routes from its cache directory.
    nacos.stop();
    drop(gw);
    let gw = Gateway::start(&text);
    settles(&gw, &["a", "b", "c"], Instant::now()).await;
    let ready = readyz(&gw).await;
    assert_eq!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat"]["origin"], "cache",
        "{ready}"
    );
    assert_eq!(ready["registry"]["state"], "down", "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_pushes_are_repaired_by_the_resync() {
    let nacos = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let text = format!(
        r#"
[nacos]
servers = ["{url}"]
resync_interval_ms = 1000
[config]
source = "nacos"
data_id = "gateways.toml"
[[services]]
name = "chat"
nacos = {{ service = "chat" }}
[[routes]]
name = "chat"
path = "/"
service = "chat"
"#,
        url = nacos.url()
    );
    let gw = Gateway::start_with_env(
        |(port, admin, dir)| Gateway::config_text(port, admin, dir, &text),
        &[("TIDEGATE_TEST_NACOS_IGNORE_PUSHES", "all")],
    );
    settles(&gw, &["a"], Instant::now()).await;

    let t = Instant::now();
    nacos.register("chat", &b.addr.to_string(), 1.0, "{}").await;
    let naming = settles(&gw, &["a", "b"], t).await;
    // It came through the resync; the push (rnacos sends it 0.5–1 s after the change,
    // so it may come after the resync) is dropped.
    assert!(
        eventually(Duration::from_secs(3), || async {
            log_count(&gw, "naming push ignored (test hook)") >= 1
        })
        .await,
        "{}",
        gw.stderr()
    );
    assert!(
        gw.stderr()
            .contains("the resync repaired DEFAULT_GROUP@@chat"),
        "{}",
        gw.stderr()
    );

    let shared = "[[services]]\nname = \"chat\"\nnacos = { service = \"chat\" }\n[[routes]]\nname = \"chat\"\npath = \"/\"\nservice = \"chat\"\n[[routes]]\nname = \"v\"\npath = \"=/v\"\nrespond = { status = 200, body = \"v1\" }\n";
    let t = Instant::now();
    nacos.publish("gateways.toml", shared).await;
    assert!(
        eventually(Duration::from_secs(4), || async {
            body(&gw, "/v").await == "200 v1"
        })
        .await,
        "{}",
        gw.stderr()
    );
    let config = t.elapsed();
    assert!(
        gw.stderr()
            .contains("the resync repaired config DEFAULT_GROUP/gateways.toml"),
        "{}",
        gw.stderr()
    );
    let metrics = gw.metrics().await;
    let repairs = |kind: &str| {
        metric_sum(
            &metrics
                .lines()
                .filter(|l| l.contains(&format!("kind=\"{kind}\"")))
                .collect::<Vec<_>>()
                .join("\n"),
            "tidegate_nacos_resync_repairs_total",
        )
    };
    assert!(repairs("naming") >= 1.0, "{metrics}");
    assert!(repairs("config") >= 1.0, "{metrics}");
    println!(
        "pushes dropped, resync every 1 s: a registration arrived after {naming:?}, a config after {config:?}"
    );
    assert!(naming < Duration::from_millis(2500), "{naming:?}");
    assert!(config < Duration::from_millis(2500), "{config:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_keep_exactly_one_registration_and_the_pushes() {
    let nacos = Nacos::start();
    let a = Upstream::start("a").await;
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let text = config(&[nacos.url()], "register = { service = \"tidegate\" }", "");
    // Each connection lives 2.5 s: longer than rnacos takes to push (0.5–1 s).
    let gw = Gateway::start_with_env(
        |(port, admin, dir)| Gateway::config_text(port, admin, dir, &text),
        &[("TIDEGATE_TEST_NACOS_RECONNECT_EVERY_MS", "2500")],
    );
    settles(&gw, &["a"], Instant::now()).await;
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    let connections = || log_count(&gw, "nacos: gRPC connection ");

    // After each reconnect: registered again (once), and a change made then is pushed on
    // the new connection.
    let extra: Vec<Upstream> =
        futures_util::future::join_all(["b", "c", "d"].map(Upstream::start)).await;
    let mut names = vec!["a"];
    let mut timings = Vec::new();
    for upstream in &extra {
        let seen = connections();
        assert!(
            eventually(Duration::from_secs(8), || async { connections() > seen }).await,
            "no reconnect:\n{}",
            gw.stderr()
        );
        assert!(
            eventually(Duration::from_secs(2), || registered_in(&nacos, &admin)).await,
            "not registered again after a reconnect:\n{}",
            gw.stderr()
        );
        let registered = hosts(&nacos, "tidegate").await;
        assert_eq!(registered.len(), 1, "{registered:?}");
        let t = Instant::now();
        nacos
            .register("chat", &upstream.addr.to_string(), 1.0, "{}")
            .await;
        names.push(&upstream.name);
        timings.push(settles(&gw, &names, t).await);
    }
    let reconnects = connections();
    assert!(reconnects >= 4, "{reconnects} connections");
    assert!(
        eventually(Duration::from_secs(8), || async {
            let list = hosts(&nacos, "tidegate").await;
            list.len() == 1 && list[0]["metadata"]["admin"] == admin.as_str()
        })
        .await,
        "{:?}\n{}",
        hosts(&nacos, "tidegate").await,
        gw.stderr()
    );
    println!(
        "{reconnects} connections, one registration; a change after each reconnect settled in {timings:?}"
    );
    for took in &timings {
        assert!(*took < Duration::from_millis(2500), "took {took:?}");
    }
}

/// Whether the gateway with admin address `admin` is registered in `nacos`.
async fn registered_in(nacos: &Nacos, admin: &str) -> bool {
    hosts(nacos, "tidegate")
        .await
        .iter()
        .any(|h| h["metadata"]["admin"] == admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_server() {
    // Two registries that share nothing; the same instances are registered in both.
    let mut first = Nacos::start();
    let second = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    for nacos in [&first, &second] {
        nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
        nacos.register("chat", &b.addr.to_string(), 1.0, "{}").await;
    }
    let dead = format!("http://127.0.0.1:{}", support::free_port());
    let gw = Gateway::start(&config(
        &[dead, first.url(), second.url()],
        "register = { service = \"tidegate\" }",
        "",
    ));
    // The dead first server is passed over at startup.
    settles(&gw, &["a", "b"], Instant::now()).await;
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        eventually(Duration::from_secs(5), || registered_in(&first, &admin)).await,
        "{}",
        gw.stderr()
    );
    assert!(!registered_in(&second, &admin).await);

    // The live server goes away mid-run: the next one takes over, nobody notices.
    let load = Load::start(gw.url("/x"), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    first.stop();
    assert!(
        eventually(Duration::from_secs(8), || registered_in(&second, &admin)).await,
        "{}",
        gw.stderr()
    );
    let failover = t.elapsed();
    let c = Upstream::start("c").await;
    let t = Instant::now();
    second
        .register("chat", &c.addr.to_string(), 1.0, "{}")
        .await;
    let took = settles(&gw, &["a", "b", "c"], t).await;
    let (failed, total, errors) = load.finish().await;
    println!(
        "failover: registered in the next server {failover:?} after the first died; a change there settled in {took:?}; {failed} failed of {total}"
    );
    assert_eq!(failed, 0, "{errors:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let ready = readyz(&gw).await;
    assert_eq!(ready["registry"]["state"], "up", "{ready}");
    assert_eq!(ready["registry"]["api"], "grpc", "{ready}");
}

/// A TCP proxy on 127.0.0.1:`port` to 127.0.0.1:`to` that can turn into a black hole:
/// `freeze` drops every byte from then on, both ways, while the connections stay open (a
/// silent network partition).
struct Proxy {
    frozen: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16, to: u16) -> Option<Proxy> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .ok()?;
        let frozen = Arc::new(AtomicBool::new(false));
        let f = frozen.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", to)).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(pipe(ri, wo, f.clone()));
                tokio::spawn(pipe(ro, wi, f.clone()));
            }
        });
        Some(Proxy { frozen, task })
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::Relaxed) {
            continue; // dropped on the floor
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_partition_is_noticed_by_the_health_checks() {
    // Two registries with the same instances, their gRPC ports behind proxies at
    // HTTP port + `offset` (grpc_port_offset); the first proxy then drops everything.
    let (first, second) = (Nacos::start(), Nacos::start());
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    for nacos in [&first, &second] {
        nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
        nacos.register("chat", &b.addr.to_string(), 1.0, "{}").await;
    }
    let mut proxies = None;
    for offset in (3000u16..3200).step_by(7) {
        let (Some(p1), Some(p2)) = (
            first.port.checked_add(offset),
            second.port.checked_add(offset),
        ) else {
            continue;
        };
        if let Some(one) = Proxy::start(p1, first.grpc_port()).await {
            if let Some(two) = Proxy::start(p2, second.grpc_port()).await {
                proxies = Some((offset, one, two));
                break;
            }
        }
    }
    let (offset, to_first, _to_second) = proxies.expect("no free ports for the proxies");
    let gw = Gateway::start(&config(
        &[first.url(), second.url()],
        &format!("grpc_port_offset = {offset}\nregister = {{ service = \"tidegate\" }}"),
        "",
    ));
    settles(&gw, &["a", "b"], Instant::now()).await;
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        eventually(Duration::from_secs(5), || registered_in(&first, &admin)).await,
        "{}",
        gw.stderr()
    );

    let load = Load::start(gw.url("/x"), 2);
    let t = Instant::now();
    to_first.freeze();
    assert!(
        eventually(Duration::from_secs(25), || registered_in(&second, &admin)).await,
        "{}",
        gw.stderr()
    );
    let noticed = t.elapsed();
    assert!(
        gw.stderr().contains("health checks failed"),
        "{}",
        gw.stderr()
    );
    let c = Upstream::start("c").await;
    let t = Instant::now();
    second
        .register("chat", &c.addr.to_string(), 1.0, "{}")
        .await;
    let took = settles(&gw, &["a", "b", "c"], t).await;
    let (failed, total, errors) = load.finish().await;
    println!(
        "silent partition: noticed and failed over after {noticed:?} (idle 5 s + 3 health checks); a change on the next server settled in {took:?}; {failed} failed of {total}"
    );
    assert_eq!(failed, 0, "{errors:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_over_grpc_and_a_wrong_password() {
    let nacos = Nacos::start_with(&[
        ("RNACOS_ENABLE_OPEN_API_AUTH", "true"),
        ("RNACOS_INIT_ADMIN_USERNAME", "admin"),
        ("RNACOS_INIT_ADMIN_PASSWORD", "s3cret-pw"),
    ]);
    nacos.login("admin", "s3cret-pw").await;
    let a = Upstream::start("a").await;
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let cache = TempDir::new("nacos-grpc-auth-cache");
    let static_route =
        "[[routes]]\nname = \"ping\"\npath = \"=/ping\"\nrespond = { status = 200, body = \"pong\" }\n";
    let with_password = |password: &str| {
        config(
            &[nacos.url()],
            &format!(
                "username = \"admin\"\npassword = \"{password}\"\ncache_dir = \"{}\"\nregister = {{ service = \"tidegate\", metadata = {{ zone = \"test\" }} }}",
                cache.0.display()
            ),
            static_route,
        )
    };
    let mut gw = Gateway::start(&with_password("s3cret-pw"));
    let http = client();
    assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());
    let ready = readyz(&gw).await;
    assert_eq!(ready["registry"]["api"], "grpc", "{ready}");
    assert_eq!(ready["registry"]["state"], "up", "{ready}");
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        eventually(Duration::from_secs(5), || async {
            hosts(&nacos, "tidegate").await.iter().any(|h| {
                h["metadata"]["admin"] == admin.as_str() && h["metadata"]["zone"] == "test"
            })
        })
        .await,
        "{}",
        gw.stderr()
    );
    // Changes arrive over the authenticated connection.
    let b = Upstream::start("b").await;
    let t = Instant::now();
    nacos.register("chat", &b.addr.to_string(), 1.0, "{}").await;
    let took = settles(&gw, &["a", "b"], t).await;
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // TERM deregisters at once (Nacos would otherwise drop it only with the connection).
    let t = Instant::now();
    gw.signal("TERM");
    assert!(
        eventually(Duration::from_secs(5), || async {
            hosts(&nacos, "tidegate").await.is_empty()
        })
        .await
    );
    let deregistered = t.elapsed();
    println!("TERM → deregistered in {deregistered:?}");
    assert!(deregistered < Duration::from_secs(3), "{deregistered:?}");
    assert!(gw.wait_exit(Duration::from_secs(5)).is_some());
    drop(gw);

    // A wrong password: registry "down" with the login error; the data path serves the
    // cached instances and the static routes.
    let gw = Gateway::start(&with_password("wrong"));
    assert!(
        eventually(Duration::from_secs(5), || async {
            let ready = readyz(&gw).await;
            ready["registry"]["state"] == "down"
                && ready["registry"]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("login"))
        })
        .await,
        "{}\n{}",
        readyz(&gw).await,
        gw.stderr()
    );
    settles(&gw, &["a", "b"], Instant::now()).await;
    assert_eq!(body(&gw, "/ping").await, "200 pong");
    assert!(hosts(&nacos, "tidegate").await.is_empty());
    let metrics = gw.metrics().await;
    assert_eq!(metric_sum(&metrics, "tidegate_nacos_up"), 0.0, "{metrics}");
    // Failed logins count as failed calls (what the registry-unreachable alert looks at).
    assert!(nacos_requests(&metrics, "error") >= 1.0, "{metrics}");
    println!(
        "wrong password: {}",
        readyz(&gw).await["registry"]["last_error"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_binding_gets_its_clusters_only() {
    let nacos = Nacos::start();
    let (a1, a2, b1) = (
        Upstream::start("a1").await,
        Upstream::start("a2").await,
        Upstream::start("b1").await,
    );
    nacos
        .register_with(
            "chat",
            &a1.addr.to_string(),
            1.0,
            "{}",
            &[("clusterName", "a")],
        )
        .await;
    nacos
        .register_with(
            "chat",
            &b1.addr.to_string(),
            1.0,
            "{}",
            &[("clusterName", "b")],
        )
        .await;
    let all = "[[services]]\nname = \"chat-all\"\nnacos = { service = \"chat\" }\n[[routes]]\nname = \"all\"\npath = \"/all/\"\nservice = \"chat-all\"\n";
    let text = config(&[nacos.url()], "", all).replace(
        "nacos = { service = \"chat\" }\nretries",
        "nacos = { service = \"chat\", clusters = [\"a\"] }\nretries",
    );
    assert!(text.contains("clusters = [\"a\"]"));
    let gw = Gateway::start(&text);
    settles(&gw, &["a1"], Instant::now()).await;
    // The same registry service bound for every cluster: one subscription, both bindings.
    settles_on(&gw, "/all/1", &["a1", "b1"], Instant::now()).await;

    let t = Instant::now();
    nacos
        .register_with(
            "chat",
            &a2.addr.to_string(),
            1.0,
            "{}",
            &[("clusterName", "a")],
        )
        .await;
    let took = settles(&gw, &["a1", "a2"], t).await;
    println!("cluster a: register → settled in {took:?}");
    assert!(took < Duration::from_secs(2));
    settles_on(&gw, "/all/1", &["a1", "a2", "b1"], Instant::now()).await;
    let ready = readyz(&gw).await;
    assert_eq!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat@@a"]["endpoints"], 2,
        "{ready}"
    );
    assert_eq!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat"]["endpoints"], 3,
        "{ready}"
    );
}

/// The venv's python with the Nacos SDK (gateway/tests/nacos_sdk/setup.sh).
fn sdk_python() -> String {
    std::env::var("TIDEGATE_NACOS_SDK_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TIDEGATE_NACOS_SDK_PYTHON is not set: scripts/test.sh makes the Nacos SDK venv \
             (gateway/tests/nacos_sdk/setup.sh VENV, then TIDEGATE_NACOS_SDK_PYTHON=VENV/bin/python)"
        )
    })
}

fn sdk_script() -> String {
    format!("{}/tests/nacos_sdk/sdk.py", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `sdk.py ARGS` to its end; its stdout.
fn sdk_run(home: &TempDir, args: &[&str]) -> String {
    let out = Command::new(sdk_python())
        .arg(sdk_script())
        .args(args)
        .env("HOME", &home.0)
        .output()
        .expect("run the Nacos SDK script");
    assert!(
        out.status.success(),
        "sdk.py {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `sdk.py register …`, once it says it registered.
fn sdk_register(home: &TempDir, args: &[&str]) -> Child {
    use std::io::BufRead;
    let mut child = Command::new(sdk_python())
        .arg(sdk_script())
        .arg("register")
        .args(args)
        .env("HOME", &home.0)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the Nacos SDK script");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_default();
    if line.trim() != "registered" {
        let _ = child.kill();
        panic!("the SDK did not register: {line:?}");
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_the_nacos_rust_sdk() {
    let python = sdk_python();
    assert!(
        std::path::Path::new(&python).exists(),
        "TIDEGATE_NACOS_SDK_PYTHON={python} does not exist: run gateway/tests/nacos_sdk/setup.sh"
    );
    let home = TempDir::new("nacos-sdk-home");
    let nacos = Nacos::start();
    let server = format!("127.0.0.1:{}", nacos.port);
    let (a, sdk) = (Upstream::start("a").await, Upstream::start("sdk").await);
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let bootstrap = config(&[nacos.url()], "register = { service = \"tidegate\" }", "")
        + "[config]\nsource = \"nacos\"\ndata_id = \"gateways.toml\"\n";
    let gw = Gateway::start(&bootstrap);
    settles(&gw, &["a"], Instant::now()).await;

    // An ephemeral instance registered by the SDK (bound to its gRPC connection).
    let t = Instant::now();
    let mut child = sdk_register(
        &home,
        &[
            &server,
            "chat",
            "127.0.0.1",
            &sdk.addr.port().to_string(),
            "stage=sdk",
        ],
    );
    let registered = t.elapsed();
    let appeared = settles(&gw, &["a", "sdk"], t).await;
    let ready = readyz(&gw).await;
    assert_eq!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat"]["endpoints"],
        2
    );

    // The SDK sees the gateway's own registration (made over gRPC by our client).
    let seen = support::json(&sdk_run(&home, &["instances", &server, "tidegate"]));
    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        seen.as_array()
            .unwrap()
            .iter()
            .any(|i| i["metadata"]["admin"] == admin.as_str() && i["port"] == gw.admin_port),
        "{seen}"
    );

    // Killed: the registry drops the instance with the connection, the gateway follows.
    let t = Instant::now();
    child.kill().unwrap();
    child.wait().unwrap();
    let removed = settles(&gw, &["a"], t).await;

    // A config published by the SDK is applied.
    let shared = home.path("shared.toml");
    std::fs::write(
        &shared,
        "[[services]]\nname = \"chat\"\nnacos = { service = \"chat\" }\n[[routes]]\nname = \"chat\"\npath = \"/\"\nservice = \"chat\"\n[[routes]]\nname = \"by-sdk\"\npath = \"=/by-sdk\"\nrespond = { status = 200, body = \"published by the sdk\" }\n",
    )
    .unwrap();
    let t = Instant::now();
    let out = sdk_run(
        &home,
        &[
            "publish",
            &server,
            "gateways.toml",
            "DEFAULT_GROUP",
            shared.to_str().unwrap(),
        ],
    );
    assert_eq!(out.trim(), "published");
    assert!(
        eventually(Duration::from_secs(3), || async {
            body(&gw, "/by-sdk").await == "200 published by the sdk"
        })
        .await,
        "{}",
        gw.stderr()
    );
    let config = t.elapsed();
    println!(
        "nacos-sdk-rust: registered in {registered:?}, in the gateway's routing {appeared:?} after the start of the SDK; killed → out in {removed:?}; its config served {config:?} after the start of its publish"
    );
    assert!(removed < Duration::from_secs(2), "{removed:?}");
    // The SDK's own start (a Python process and its connection) is part of these two.
    assert!(appeared < Duration::from_secs(5), "{appeared:?}");
    assert!(config < Duration::from_secs(5), "{config:?}");
    settles(&gw, &["a"], Instant::now()).await;
}
