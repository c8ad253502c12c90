#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Pod discovery end to end: the gateway's real kube watchers against an API server
//! stand-in on 127.0.0.1 that speaks list + watch (`support/kube_api.rs`: resourceVersion,
//! bookmarks, 410 Gone → relist; no kube-apiserver is installable here). EndpointSlice and
//! pod changes → traffic follows; a blue/green split by pod label; a not-ready pod gets no
//! traffic and a terminating one no new request, its WebSocket tunnels drained with 1001;
//! an API server outage keeps the pods serving, a stale watch relists; a gateway restarted
//! during an outage serves the pods it cached.

mod support;

use serde_json::json;
use std::time::{Duration, Instant};
use support::kube_api::{Kind, KubeApi};
use support::upstream::Upstream;
use support::ws;
use support::{client, eventually, metric_sum, Gateway, TempDir};

/// `[kubernetes]` at `api`, and service "chat" bound to `chat/chat:http` behind `/` with
/// `route_extra` on the route.
fn config(api: &KubeApi, kubernetes_extra: &str, route_extra: &str) -> String {
    format!(
        "[kubernetes]\napi_server = \"{}\"\n{kubernetes_extra}\n[[services]]\nname = \"chat\"\nkubernetes = {{ namespace = \"chat\", service = \"chat\", port = \"http\" }}\n[[routes]]\nname = \"r\"\npath = \"/\"\nservice = \"chat\"\n{route_extra}\n",
        api.url()
    )
}

/// One slice per pod: pods share the address 127.0.0.1 here, so each upstream is a port of
/// its own, which in Kubernetes terms is a slice of its own.
fn put_pod(api: &KubeApi, pod: &str, port: u16, stage: &str, ready: bool, terminating: bool) {
    api.put_pod("chat", pod, json!({"app": "chat", "stage": stage}));
    api.put_slice(
        "chat",
        &format!("chat-{pod}"),
        "chat",
        ("http", port),
        &[("127.0.0.1", pod, ready, terminating)],
    );
}

/// How often the EndpointSlice watches listed (at start, and after 410 Gone).
fn slice_relists(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("tidegate_kubernetes_watch_events_total{")
                && l.contains("kind=\"endpointslices\"")
                && l.contains("event=\"relisted\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn who(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(resp) if resp.status() == 200 => {
            resp.headers()["x-upstream"].to_str().unwrap().to_string()
        }
        Ok(resp) => resp.status().as_str().to_string(),
        Err(e) => format!("error: {e}"),
    }
}

/// Waits until 20 answers in a row come from `want` (each of them seen).
async fn settles(gw: &Gateway, want: &[&str]) {
    let http = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut streak = 0;
    let mut seen = std::collections::BTreeSet::new();
    while Instant::now() < deadline {
        let got = who(&http, &gw.url("/x")).await;
        if want.contains(&got.as_str()) {
            streak += 1;
            seen.insert(got);
            if streak >= 20 && seen.len() == want.len() {
                return;
            }
        } else {
            streak = 0;
            seen.clear();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("traffic never settled on {want:?}:\n{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_the_endpoint_slices_and_splits_by_pod_label() {
    let api = KubeApi::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    put_pod(&api, "blue-1", blue.addr.port(), "blue", true, false);
    put_pod(&api, "green-1", green.addr.port(), "green", true, false);
    let gw = Gateway::start(&config(
        &api,
        "",
        r#"split = [{ labels = { stage = "blue" }, weight = 90 }, { labels = { stage = "green" }, weight = 10 }]"#,
    ));
    // Listed before the listeners opened: the very first requests reach the pods.
    let http = client();
    let mut green_hits = 0;
    for _ in 0..1000 {
        match who(&http, &gw.url("/x")).await.as_str() {
            "green" => green_hits += 1,
            "blue" => {}
            other => panic!("unexpected answer {other}:\n{}", gw.stderr()),
        }
    }
    println!("90/10 split by pod label: green {green_hits} of 1000");
    assert!(
        (60..=140).contains(&green_hits),
        "green {green_hits} of 1000 (want 100 ± 40)"
    );
    let resp = http
        .get(gw.url("/x"))
        .header("x-tidegate-subset", "green")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-upstream"], "green");

    // A pod relabelled green → blue: the subsets follow its labels, with no slice change.
    let green2 = Upstream::start("green2").await;
    put_pod(&api, "green-2", green2.addr.port(), "green", true, false);
    api.put_pod("chat", "green-1", json!({"app": "chat", "stage": "blue"}));
    let subset = |stage: &'static str| {
        let (http, url) = (http.clone(), gw.url("/x"));
        async move {
            let resp = http
                .get(url)
                .header("x-tidegate-subset", stage)
                .send()
                .await
                .unwrap();
            match resp.headers().get("x-upstream") {
                Some(who) => who.to_str().unwrap().to_string(),
                None => resp.status().as_str().to_string(),
            }
        }
    };
    let relabelled = eventually(Duration::from_secs(5), || async {
        let mut all = Vec::new();
        for _ in 0..20 {
            all.push(subset("green").await);
        }
        all.iter().all(|w| w == "green2")
    })
    .await;
    assert!(
        relabelled,
        "the green subset did not follow the pods' labels"
    );
    let mut blue_side = std::collections::BTreeSet::new();
    for _ in 0..40 {
        blue_side.insert(subset("blue").await);
    }
    assert_eq!(blue_side, ["blue".to_string(), "green".to_string()].into());

    // Not ready: no traffic; a slice deleted: its pods are gone; all gone: the gateway
    // answers itself.
    let only = |stage: &'static str, want: &'static str| {
        let subset = &subset;
        async move {
            let mut all = Vec::new();
            for _ in 0..20 {
                all.push(subset(stage).await);
            }
            all.iter().all(|w| w.as_str() == want)
        }
    };
    put_pod(&api, "green-1", green.addr.port(), "blue", false, false);
    assert!(eventually(Duration::from_secs(5), || only("blue", "blue")).await);
    api.delete(Kind::EndpointSlice, "chat", "chat-green-2");
    assert!(eventually(Duration::from_secs(5), || only("green", "502")).await);
    api.delete(Kind::EndpointSlice, "chat", "chat-blue-1");
    assert!(eventually(Duration::from_secs(5), || only("blue", "502")).await);

    // Only the bound Service's slices are watched, by label, from a listed version.
    assert!(api.requests_matching("labelSelector=kubernetes.io%2Fservice-name%3Dchat") >= 2);
    assert!(api.requests_matching("watch=true") >= 2);
    assert!(api.requests_matching("allowWatchBookmarks=true") >= 2);
    // Pods are watched as metadata only, in the namespace in use.
    assert!(api.requests_matching("/api/v1/namespaces/chat/pods") >= 2);
    let metrics = gw.metrics().await;
    assert_eq!(metric_sum(&metrics, "tidegate_kubernetes_up"), 1.0);
    assert!(metric_sum(&metrics, "tidegate_kubernetes_watch_events_total") >= 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminating_pod_takes_no_new_request_and_its_tunnels_drain() {
    let api = KubeApi::start().await;
    let (old, new) = (ws::EchoServer::start().await, ws::EchoServer::start().await);
    put_pod(&api, "old", old.addr.port(), "blue", true, false);
    let gw = Gateway::start(&config(
        &api,
        "",
        "on_route_change = \"drain\"\ndrain_window_seconds = 2",
    ));
    let url = format!("ws://{}/ws", gw.addr());
    let mut tunnels = Vec::new();
    for _ in 0..6 {
        tunnels.push(ws::connect(&url).await);
    }
    for t in &mut tunnels {
        assert!(ws::echo(t, "before").await);
    }

    // The new pod becomes ready and the old one starts terminating (a rolling update).
    put_pod(&api, "new", new.addr.port(), "blue", true, false);
    // A readiness flap of the old pod first: no tunnel is cut for it.
    put_pod(&api, "old", old.addr.port(), "blue", false, false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for t in &mut tunnels {
        assert!(
            ws::echo(t, "during a flap").await,
            "a not-ready pod's tunnel was cut"
        );
    }
    let started = Instant::now();
    put_pod(&api, "old", old.addr.port(), "blue", false, true);
    // Spread over the route's 2 s window, not all at once.
    ws::assert_drained_over_2s(tunnels, started, &old, "the terminating pod").await;
    // New tunnels and requests go to the new pod only, and stay.
    let mut fresh = ws::connect(&url).await;
    assert!(ws::echo(&mut fresh, "after").await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ws::echo(&mut fresh, "still").await);
    assert!(new.close_codes.lock().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_outage_keeps_the_pods_serving_and_a_stale_watch_relists() {
    let api = KubeApi::start().await;
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    put_pod(&api, "a", a.addr.port(), "blue", true, false);
    let gw = Gateway::start(&config(&api, "", ""));
    settles(&gw, &["a"]).await;

    api.down();
    let http = client();
    let down = eventually(Duration::from_secs(10), || async {
        metric_sum(&gw.metrics().await, "tidegate_kubernetes_up") == 0.0
    })
    .await;
    assert!(down, "the outage was not noticed:\n{}", gw.stderr());
    for _ in 0..200 {
        assert_eq!(
            who(&http, &gw.url("/x")).await,
            "a",
            "a request failed during the outage"
        );
    }
    // Changes while it is down, and a history compacted past the watch's version: the
    // watch's resume answers 410 Gone, and only a relist can see them.
    put_pod(&api, "b", b.addr.port(), "blue", true, false);
    api.delete(Kind::EndpointSlice, "chat", "chat-a");
    api.compact();
    let relists_before = slice_relists(&gw.metrics().await);
    api.up().await;
    settles(&gw, &["b"]).await;
    let metrics = gw.metrics().await;
    let relists = slice_relists(&metrics);
    assert!(
        api.gone_answers() >= 1,
        "the resumed watch was never answered 410 Gone"
    );
    assert!(
        relists > relists_before,
        "no relist after 410 Gone ({relists_before} → {relists})"
    );
    let up = eventually(Duration::from_secs(10), || async {
        metric_sum(&gw.metrics().await, "tidegate_kubernetes_up") == 1.0
    })
    .await;
    assert!(up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restarted_during_an_outage_serves_the_pods_it_cached() {
    let api = KubeApi::start().await;
    let a = Upstream::start("a").await;
    put_pod(&api, "a", a.addr.port(), "blue", true, false);
    let cache = TempDir::new("k8s-cache");
    let extra = format!("cache_dir = \"{}\"", cache.0.display());
    let gw = Gateway::start(&config(&api, &extra, ""));
    settles(&gw, &["a"]).await;
    drop(gw);
    api.down();
    let gw = Gateway::start(&config(&api, &extra, ""));
    let http = client();
    for _ in 0..50 {
        assert_eq!(who(&http, &gw.url("/x")).await, "a", "{}", gw.stderr());
    }
    let status = gw.config_status().await;
    assert_eq!(
        status["kubernetes"]["services"]["chat/chat:http"]["origin"], "cache",
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_bound_to_two_kubernetes_services_splits_between_them_by_weight() {
    let api = KubeApi::start().await;
    let (stable, canary) = (
        Upstream::start("stable").await,
        Upstream::start("canary").await,
    );
    for (service, upstream) in [("chat", &stable), ("chat-next", &canary)] {
        api.serve_pod("chat", service, "http", upstream.addr.port());
    }
    let gw = Gateway::start(&format!(
        "[kubernetes]\napi_server = \"{}\"\n[[services]]\nname = \"chat\"\nkubernetes = [{{ namespace = \"chat\", service = \"chat\", port = \"http\" }}, {{ namespace = \"chat\", service = \"chat-next\", port = \"http\" }}]\n[[routes]]\nname = \"r\"\npath = \"/\"\nservice = \"chat\"\nsplit = [{{ labels = {{ \"kubernetes.io/service-name\" = \"chat\" }}, weight = 80 }}, {{ labels = {{ \"kubernetes.io/service-name\" = \"chat-next\" }}, weight = 20 }}]\n",
        api.url()
    ));
    let http = client();
    let mut canary_hits = 0;
    for _ in 0..1000 {
        match who(&http, &gw.url("/x")).await.as_str() {
            "canary" => canary_hits += 1,
            "stable" => {}
            other => panic!("unexpected answer {other}:\n{}", gw.stderr()),
        }
    }
    println!("80/20 between two Services: canary {canary_hits} of 1000");
    assert!(
        (150..=250).contains(&canary_hits),
        "canary {canary_hits} of 1000 (want 200 ± 50)"
    );
    // One Service's change leaves the other's endpoints in place.
    api.delete(Kind::EndpointSlice, "chat", "chat-next-abc");
    let only_stable = eventually(Duration::from_secs(5), || async {
        let resp = http
            .get(gw.url("/x"))
            .header("x-tidegate-subset", "kubernetes.io/service-name=chat")
            .send()
            .await
            .unwrap();
        resp.status() == 200 && resp.headers()["x-upstream"] == "stable"
    })
    .await;
    assert!(only_stable, "{}", gw.stderr());
    let status = gw.config_status().await;
    assert_eq!(
        status["kubernetes"]["services"]["chat/chat-next:http"]["endpoints"], 0,
        "{status}"
    );
}
