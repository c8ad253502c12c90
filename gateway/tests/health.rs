#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Health checks with real upstreams: an endpoint that dies under load costs clients nothing
//! (retries, then passive ejection and active checks keep traffic away), and it gets traffic
//! again once it is back.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::upstream::Upstream;
use support::{client, Gateway};

async fn endpoint_states(gw: &Gateway) -> String {
    let metrics = gw.metrics().await;
    metrics
        .lines()
        .filter(|l| l.starts_with("tidegate_service_endpoints{service=\"svc\""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_endpoint_under_load_costs_nothing_and_comes_back() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let b_addr = b.addr;
    let gw = Gateway::start(&format!(
        r#"
[[services]]
name = "svc"
retries = 2
connect_timeout_ms = 300
endpoints = [{{ addr = "{}" }}, {{ addr = "{}" }}]
health_check = {{ type = "http", path = "/status/200", interval_ms = 200, timeout_ms = 300, healthy_threshold = 2, unhealthy_threshold = 2 }}
passive = {{ failures = 2, eject_ms = 1000 }}
[[routes]]
name = "r"
path = "/"
service = "svc"
"#,
        a.addr, b.addr
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, sent, failed, url) = (stop.clone(), sent.clone(), failed.clone(), gw.url("/x"));
        load.push(tokio::spawn(async move {
            let http = client();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !stop.load(Ordering::Relaxed) && tokio::time::Instant::now() < deadline {
                sent.fetch_add(1, Ordering::Relaxed);
                let ok = matches!(http.get(&url).send().await, Ok(r) if r.status() == 200);
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(b.hits() > 0, "b took no traffic before the failure");

    // b dies: listener gone, open connections dropped.
    b.stop();
    let marked = support::eventually(Duration::from_secs(5), || async {
        endpoint_states(&gw)
            .await
            .contains("state=\"unhealthy\"} 1")
    })
    .await;
    assert!(
        marked,
        "b never marked unhealthy:\n{}",
        endpoint_states(&gw).await
    );
    let a_before = a.hits();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(a.hits() > a_before, "a stopped serving");

    // b comes back on the same address: the checks see it and traffic returns.
    let b2 = Upstream::start_on(&b_addr.to_string(), "b").await;
    let back = support::eventually(Duration::from_secs(5), || async { b2.hits() > 5 }).await;
    assert!(
        back,
        "b got no traffic after recovering:\n{}",
        endpoint_states(&gw).await
    );
    assert!(endpoint_states(&gw).await.contains("state=\"usable\"} 2") || b2.hits() > 5);

    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("requests: {sent}, failed: {failed}");
    assert!(sent > 300);
    assert_eq!(failed, 0, "clients saw the endpoint die");
}
