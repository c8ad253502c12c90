#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Discovery and shared config against a real Nacos-compatible server (rnacos, installed by
//! scripts/rnacos.sh): instances follow the registry within a poll, blue/green splits over
//! discovered labels, outages (registry down, gateway restarted during the outage, registry
//! back empty), the shared config with a refused publication, self-registration with access
//! tokens, and a dead endpoint under load.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::nacos::Nacos;
use support::upstream::Upstream;
use support::{client, eventually, Gateway, TempDir, TOKEN};

/// `[nacos]` plus one registry-bound service `chat` and a route `/` to it.
fn discovery_config(nacos: &Nacos, extra_nacos: &str, route_extra: &str) -> String {
    format!(
        r#"
[nacos]
servers = ["http://127.0.0.1:1", "{url}"]
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
{route_extra}
"#,
        url = nacos.url()
    )
}

/// Which upstream answered, or the status when the gateway answered itself.
async fn who(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(resp) if resp.status() == 200 => {
            resp.headers()["x-upstream"].to_str().unwrap().to_string()
        }
        Ok(resp) => resp.status().as_str().to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// Waits until 20 requests in a row are answered by endpoints in `want`, each of them seen;
/// returns when that began, from `since`: the first answer after the last unwanted one, or
/// the first answer of the last endpoint to appear.
async fn settles(gw: &Gateway, want: &[&str], since: Instant) -> Duration {
    let http = client();
    let mut streak = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_seen: std::collections::BTreeMap<String, Duration> = Default::default();
    while Instant::now() < deadline {
        let got = who(&http, &gw.url("/x")).await;
        if want.contains(&got.as_str()) {
            streak += 1;
            first_seen.entry(got).or_insert_with(|| since.elapsed());
            if streak >= 20 && first_seen.len() == want.len() {
                return *first_seen.values().max().unwrap();
            }
        } else {
            streak = 0;
            first_seen.clear();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("traffic never settled on {want:?}:\n{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_follow_the_registry() {
    let nacos = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    nacos.register("chat", &a_addr, 1.0, "{}").await;
    let gw = Gateway::start(&discovery_config(&nacos, "", ""));
    let http = client();
    // The first fetch happens before the gateway serves (the first server is dead: failover).
    assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());

    let mut timings = Vec::new();
    let t = Instant::now();
    nacos.register("chat", &b_addr, 1.0, "{}").await;
    timings.push(("register", settles(&gw, &["a", "b"], t).await));

    let t = Instant::now();
    nacos.set_weight("chat", &b_addr, 0.0).await;
    timings.push(("weight 0", settles(&gw, &["a"], t).await));

    let t = Instant::now();
    nacos.set_weight("chat", &b_addr, 2.0).await;
    timings.push(("weight 2", settles(&gw, &["a", "b"], t).await));

    let t = Instant::now();
    nacos.set_enabled("chat", &b_addr, false).await;
    timings.push(("disabled", settles(&gw, &["a"], t).await));
    nacos.set_enabled("chat", &b_addr, true).await;
    settles(&gw, &["a", "b"], Instant::now()).await;

    let t = Instant::now();
    nacos.deregister("chat", &a_addr, false).await;
    timings.push(("deregister", settles(&gw, &["b"], t).await));

    // Weights share traffic in proportion (Nacos weights are decimals): a 3, b 2.
    nacos.register("chat", &a_addr, 3.0, "{}").await;
    settles(&gw, &["a", "b"], Instant::now()).await;
    let mut a_hits = 0;
    for _ in 0..400 {
        if who(&http, &gw.url("/x")).await == "a" {
            a_hits += 1;
        }
    }
    assert!(
        (210..=270).contains(&a_hits),
        "3:2 weights gave a {a_hits} of 400"
    );

    // A config that binds a new service: watched at once, no restart.
    let orders = Upstream::start("orders").await;
    nacos
        .register("orders", &orders.addr.to_string(), 1.0, "{}")
        .await;
    let body = discovery_config(&nacos, "", "")
        + r#"
[[services]]
name = "orders"
nacos = { service = "orders" }
[[routes]]
name = "orders"
path = "/orders/"
service = "orders"
"#;
    let t = Instant::now();
    gw.write_config(&body);
    assert!(
        eventually(Duration::from_secs(5), || async {
            who(&http, &gw.url("/orders/1")).await == "orders"
        })
        .await,
        "new binding not served:\n{}",
        gw.stderr()
    );
    timings.push(("new binding (incl. 250 ms file poll)", t.elapsed()));

    // The last instance really deregistered: the registry still knows the service, so the
    // empty list is believed.
    nacos
        .deregister("orders", &orders.addr.to_string(), false)
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            who(&http, &gw.url("/orders/1")).await == "502"
        })
        .await
    );

    println!("time from registry change to settled traffic (poll interval 300 ms): {timings:?}");
    for (what, took) in &timings {
        // One poll interval plus the request loop; generous for a loaded 2-core CI box.
        assert!(*took < Duration::from_secs(2), "{what} took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_instances_get_no_traffic_over_grpc() {
    unhealthy_instances_get_no_traffic("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unhealthy_instances_get_no_traffic_over_http() {
    unhealthy_instances_get_no_traffic("http").await;
}

async fn unhealthy_instances_get_no_traffic(protocol: &str) {
    let nacos = Nacos::start_with(&[("RNACOS_NAMING_HEALTH_TIMEOUT_SECOND", "2")]);
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    nacos.register_ephemeral("chat", &a_addr).await;
    nacos.register_ephemeral("chat", &b_addr).await;
    let protocol = format!("protocol = \"{protocol}\"");
    let gw = Gateway::start(&discovery_config(&nacos, &protocol, ""));
    settles(&gw, &["a", "b"], Instant::now()).await;
    // Both send heartbeats for a while, then b stops (a crashed client process).
    let mut stop_b_at = Instant::now() + Duration::from_secs(2);
    let mut unhealthy_seen = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        nacos.beat("chat", &a_addr).await;
        if Instant::now() < stop_b_at {
            nacos.beat("chat", &b_addr).await;
        }
        let list = nacos.instances("chat").await;
        let b_healthy = list["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["port"] == b.addr.port())
            .map(|h| h["healthy"].as_bool().unwrap());
        if b_healthy == Some(false) {
            unhealthy_seen = Some(Instant::now());
            break;
        }
        stop_b_at = stop_b_at.min(Instant::now() + Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = unhealthy_seen.expect("rnacos never marked b unhealthy");
    let took = settles(&gw, &["a"], t).await;
    println!("unhealthy in the registry → no traffic after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Over HTTP the list still has it, unhealthy: kept at weight 0, visible in the endpoint
    // gauge. Over gRPC rnacos leaves unhealthy instances out of its pushes (Java Nacos keeps
    // them), so there it is simply gone.
    let metrics = gw.metrics().await;
    let weight_zero = r#"tidegate_service_endpoints{service="chat",state="weight_zero"} 1"#;
    if protocol.contains("http") {
        assert!(metrics.contains(weight_zero), "{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_split_over_discovered_labels() {
    let nacos = Nacos::start();
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    nacos
        .register("chat", &blue.addr.to_string(), 1.0, r#"{"stage":"blue"}"#)
        .await;
    nacos
        .register("chat", &green.addr.to_string(), 1.0, r#"{"stage":"green"}"#)
        .await;
    let gw = Gateway::start(&discovery_config(
        &nacos,
        "",
        r#"split = [{ labels = { stage = "blue" }, weight = 90 }, { labels = { stage = "green" }, weight = 10 }]"#,
    ));
    let http = client();
    let mut green_hits = 0;
    for _ in 0..2000 {
        match who(&http, &gw.url("/x")).await.as_str() {
            "green" => green_hits += 1,
            "blue" => {}
            other => panic!("unexpected answer {other}"),
        }
    }
    println!("90/10 split: green {green_hits} of 2000");
    assert!(
        (140..=260).contains(&green_hits),
        "green {green_hits} of 2000 (want 200 ± 60)"
    );
    for _ in 0..20 {
        let resp = http
            .get(gw.url("/x"))
            .header("x-tidegate-subset", "green")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-upstream"], "green");
    }
}

/// `tidegate_nacos_stale_services` from /metrics.
async fn stale_services(gw: &Gateway) -> String {
    let metrics = gw.metrics().await;
    metrics
        .lines()
        .find(|l| l.starts_with("tidegate_nacos_stale_services "))
        .unwrap_or_default()
        .to_string()
}

async fn readyz(gw: &Gateway) -> serde_json::Value {
    client()
        .get(gw.admin_url("/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_outages_never_empty_a_service() {
    let mut nacos = Nacos::start();
    let a = Upstream::start("a").await;
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let cache = TempDir::new("nacos-cache");
    let extra = format!("cache_dir = \"{}\"", cache.0.display());
    let gw = Gateway::start(&discovery_config(&nacos, &extra, ""));
    let http = client();
    assert_eq!(who(&http, &gw.url("/x")).await, "a");
    assert_eq!(readyz(&gw).await["registry"]["state"], "up");

    // Registry down: the last known instances keep serving; readyz says so and stays 200.
    nacos.stop();
    for _ in 0..30 {
        assert_eq!(who(&http, &gw.url("/x")).await, "a");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gw).await["registry"]["state"] == "down"
        })
        .await
    );
    assert!(gw.metrics().await.contains("tidegate_nacos_up 0"));

    // A gateway (re)started during the outage routes from the cache directory.
    drop(gw);
    let gw = Gateway::start(&discovery_config(&nacos, &extra, ""));
    assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());
    let ready = readyz(&gw).await;
    assert_eq!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat"]["origin"], "cache",
        "{ready}"
    );

    // The registry comes back empty (lost its data): an empty answer for a service it does
    // not know is not a deregistration.
    nacos.restart(true);
    assert!(
        eventually(Duration::from_secs(5), || async {
            readyz(&gw).await["registry"]["state"] == "up"
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    for _ in 0..30 {
        assert_eq!(who(&http, &gw.url("/x")).await, "a");
    }
    let ready = readyz(&gw).await;
    assert!(
        ready["registry"]["services"]["DEFAULT_GROUP@@chat"]["stale"].is_string(),
        "{ready}"
    );
    assert_eq!(stale_services(&gw).await, "tidegate_nacos_stale_services 1");

    // Instances register again: fresh data replaces the kept list.
    let b = Upstream::start("b").await;
    nacos.register("chat", &b.addr.to_string(), 1.0, "{}").await;
    settles(&gw, &["b"], Instant::now()).await;
    assert_eq!(stale_services(&gw).await, "tidegate_nacos_stale_services 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_config_comes_from_nacos() {
    let mut nacos = Nacos::start();
    let cache = TempDir::new("nacos-config-cache");
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
    let http = client();
    let body = |path: &'static str| {
        let (http, url) = (http.clone(), gw.url(path));
        async move {
            let resp = http.get(url).send().await.unwrap();
            format!("{} {}", resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    // Nothing published yet: the bootstrap's own routes serve.
    assert_eq!(body("/local").await, "200 bootstrap");

    let shared = |version: &str| {
        format!(
            "[[routes]]\nname = \"shared\"\npath = \"/shared\"\nrespond = {{ status = 200, body = \"{version}\" }}\n"
        )
    };
    let t = Instant::now();
    nacos.publish("gateways.toml", &shared("v1")).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            body("/shared").await == "200 v1"
        })
        .await,
        "{}",
        gw.stderr()
    );
    println!("published → served in {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(body("/local").await.split(' ').next(), Some("404"));

    // A broken publication is refused with its position; v1 keeps serving.
    nacos
        .publish(
            "gateways.toml",
            "[[routes]]\nname = \"x\"\npath = \"/x\"\nservice = \"missing\"\n",
        )
        .await;
    let status = || gw.config_status();
    assert!(
        eventually(Duration::from_secs(3), || async {
            status().await["last_refused"]["source"] == "nacos"
        })
        .await,
        "{}\n{}",
        status().await,
        gw.stderr()
    );
    let refused = status().await["last_refused"].clone();
    assert!(
        refused["errors"][0].as_str().unwrap().starts_with("4:11:"),
        "{refused}"
    );
    assert_eq!(body("/shared").await, "200 v1");

    // A shared config may not redirect the fleet.
    nacos
        .publish(
            "gateways.toml",
            &(shared("v9") + "[nacos]\nservers = [\"http://10.0.0.1:8848\"]\n"),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(body("/shared").await, "200 v1");

    nacos.publish("gateways.toml", &shared("v2")).await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            body("/shared").await == "200 v2"
        })
        .await
    );
    let st = status().await;
    assert_eq!(st["source"], "nacos");
    assert_eq!(st["origin"], "nacos DEFAULT_GROUP/gateways.toml");

    // Changes go through Nacos, not around it.
    let resp = client()
        .put(gw.admin_url("/api/config"))
        .bearer_auth(TOKEN)
        .body(shared("v3"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 409);

    // Restarted while Nacos is down: the cached shared config serves, not the bootstrap.
    nacos.stop();
    drop(gw);
    let gw = Gateway::start(&bootstrap);
    let resp = client().get(gw.url("/shared")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "v2", "{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_register_themselves_with_access_tokens() {
    let nacos = Nacos::start_with(&[
        ("RNACOS_ENABLE_OPEN_API_AUTH", "true"),
        ("RNACOS_INIT_ADMIN_USERNAME", "admin"),
        ("RNACOS_INIT_ADMIN_PASSWORD", "s3cret-pw"),
    ]);
    nacos.login("admin", "s3cret-pw").await;
    let a = Upstream::start("a").await;
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    let gw = Gateway::start(&discovery_config(
        &nacos,
        "username = \"admin\"\npassword = \"s3cret-pw\"\nregister = { service = \"tidegate\", metadata = { zone = \"test\" } }",
        "",
    ));
    let http = client();
    assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());

    let admin = format!("127.0.0.1:{}", gw.admin_port);
    assert!(
        eventually(Duration::from_secs(5), || async {
            let list = nacos.instances("tidegate").await;
            list["hosts"].as_array().unwrap().iter().any(|h| {
                h["metadata"]["admin"] == admin.as_str() && h["metadata"]["zone"] == "test"
            })
        })
        .await,
        "{}",
        gw.stderr()
    );
    // Stopping deregisters it (well before Nacos would expire it).
    gw.signal("TERM");
    assert!(
        eventually(Duration::from_secs(8), || async {
            nacos.instances("tidegate").await["hosts"]
                .as_array()
                .unwrap()
                .is_empty()
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instance_under_load_causes_no_client_error() {
    let nacos = Nacos::start();
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let b_addr = b.addr.to_string();
    nacos.register("chat", &a.addr.to_string(), 1.0, "{}").await;
    nacos.register("chat", &b_addr, 1.0, "{}").await;
    let gw = Gateway::start(&discovery_config(&nacos, "", ""));
    settles(&gw, &["a", "b"], Instant::now()).await;

    let failures = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let stop_at = Instant::now() + Duration::from_secs(3);
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (url, failures, total) = (gw.url("/x"), failures.clone(), total.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            while Instant::now() < stop_at {
                if http.get(&url).send().await.map(|r| r.status()).ok()
                    != Some(reqwest::StatusCode::OK)
                {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                total.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    b.stop();
    for w in workers {
        w.await.unwrap();
    }
    let (failed, total) = (
        failures.load(Ordering::Relaxed),
        total.load(Ordering::Relaxed),
    );
    println!("instance killed under load: {failed} failed of {total}");
    assert_eq!(failed, 0);
    // It comes back on the same address: traffic returns once the ejection ends.
    let b2 = Upstream::start_on(&b_addr, "b").await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            who(&client(), &gw.url("/x")).await;
            b2.hits() > 0
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deregistered_instance_s_tunnels_drain_and_the_others_stay() {
    let nacos = Nacos::start();
    let (old, new) = (
        support::ws::EchoServer::start().await,
        support::ws::EchoServer::start().await,
    );
    nacos
        .register("chat", &old.addr.to_string(), 1.0, "{}")
        .await;
    let gw = Gateway::start(&discovery_config(
        &nacos,
        "",
        "on_route_change = \"drain\"\ndrain_window_seconds = 2",
    ));
    let url = format!("ws://{}/ws", gw.addr());
    let usable = |metrics: &str| {
        support::metric_sum(
            metrics,
            "tidegate_service_endpoints{service=\"chat\",state=\"usable\"}",
        )
    };
    let found = eventually(Duration::from_secs(5), || async {
        usable(&gw.metrics().await) == 1.0
    })
    .await;
    assert!(found, "{}", gw.stderr());
    let mut tunnels = Vec::new();
    for _ in 0..6 {
        tunnels.push(support::ws::connect(&url).await);
    }
    // A new instance joins (a deploy), then the old one deregisters before it stops.
    nacos
        .register("chat", &new.addr.to_string(), 1.0, "{}")
        .await;
    let joined = eventually(Duration::from_secs(5), || async {
        usable(&gw.metrics().await) == 2.0
    })
    .await;
    assert!(joined, "{}", gw.stderr());
    for t in &mut tunnels {
        assert!(
            support::ws::echo(t, "after the join").await,
            "a join cut a tunnel"
        );
    }
    let started = Instant::now();
    nacos.deregister("chat", &old.addr.to_string(), false).await;
    // Spread over the route's 2 s window (after the poll that saw the change), not at once.
    support::ws::assert_drained_over_2s(tunnels, started, &old, "the deregistered instance").await;
    // New tunnels go to the instance that stays, and stay open.
    let mut fresh = support::ws::connect(&url).await;
    assert!(support::ws::echo(&mut fresh, "after").await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(support::ws::echo(&mut fresh, "still").await);
    assert!(new.close_codes.lock().await.is_empty());
}
