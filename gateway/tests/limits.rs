#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Per-tenant limits and flood protection against real servers: local windows, concurrency,
//! overrides, a fleet of three gateways sharing one real redis-server, Redis outages, runtime
//! quota changes, and CC bans.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::redis::Redis;
use support::upstream::Upstream;
use support::{client, Gateway, TOKEN};

fn config(up: &Upstream, plugin: &str, extra: &str) -> String {
    format!(
        r#"
{extra}
[plugins.tenant-limit]
{plugin}
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "api"
path = "/"
service = "s"
plugins = ["tenant-limit"]
"#,
        up.addr
    )
}

/// Sends `n` requests for `tenant` (concurrently, `parallel` at a time); returns (allowed, limited, other).
async fn burst(
    url: &str,
    tenant: Option<&str>,
    n: usize,
    parallel: usize,
) -> (usize, usize, usize) {
    let http = client();
    let (ok, limited, other) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..parallel {
        let (http, url, tenant) = (http.clone(), url.to_string(), tenant.map(str::to_string));
        let (ok, limited, other, next) = (ok.clone(), limited.clone(), other.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let mut req = http.get(&url);
                if let Some(t) = &tenant {
                    req = req.header("x-tenant-id", t);
                }
                match req.send().await.map(|r| r.status().as_u16()) {
                    Ok(200) => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(429) => limited.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (
        ok.load(Ordering::Relaxed),
        limited.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    )
}

/// Sleeps until just after the next wall-clock second, so bursts fall in one window.
async fn next_second() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    tokio::time::sleep(Duration::from_millis(1000 - ms + 20)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_windows_headers_and_missing_key() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "type = \"key-rate-limit\"\nkey = \"header:x-tenant-id\"\nlimits = [{ per = \"second\", count = 20 }, { per = \"minute\", count = 30 }]",
        "",
    ));
    let url = gw.url("/x");
    let (ok, limited, other) = burst(&url, Some("t1"), 25, 1).await;
    assert_eq!((ok, limited, other), (20, 5, 0), "per-second window");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, limited, _) = burst(&url, Some("t1"), 25, 1).await;
    assert_eq!(
        (ok, limited),
        (10, 15),
        "per-minute window caps the second burst"
    );
    // Another tenant has its own counters.
    assert_eq!(burst(&url, Some("t2"), 5, 1).await.0, 5);

    let http = client();
    let resp = http
        .get(&url)
        .header("x-tenant-id", "t1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let h = resp.headers().clone();
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(h["ratelimit-limit"], "30");
    assert_eq!(h["ratelimit-remaining"], "0");
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["limit"]["per"], "minute");
    assert_eq!(body["limit"]["count"], 30);
    assert_eq!(body["limit"]["plugin"], "tenant-limit");

    let resp = http
        .get(&url)
        .header("x-tenant-id", "t3")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["ratelimit-limit"], "20");
    assert_eq!(resp.headers()["ratelimit-remaining"], "19");

    // No key: refused (missing_key = "reject"), never proxied.
    let hits = up.hits();
    assert_eq!(http.get(&url).send().await.unwrap().status(), 400);
    assert_eq!(up.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_and_override() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "type = \"key-rate-limit\"\nkey = \"header:x-tenant-id\"\nlimits = [{ per = \"second\", count = 5 }]\nconcurrency = 2\noverrides = { \"acme\" = { limits = [{ per = \"second\", count = 40 }], concurrency = 6 } }",
        "",
    ));
    // 5 slow requests at once: 2 in flight allowed, 3 refused.
    let slow = gw.url("/slow?ms=800");
    let (ok, limited, other) = burst(&slow, Some("small"), 5, 5).await;
    assert_eq!((ok, limited, other), (2, 3, 0));
    // acme's override: 6 at once, and 40 per second. Local windows start with the first
    // request after the previous one ended, so wait out the slow burst's window.
    let (ok, limited, _) = burst(&slow, Some("acme"), 6, 6).await;
    assert_eq!((ok, limited), (6, 0));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (ok, limited, _) = burst(&gw.url("/x"), Some("acme"), 45, 1).await;
    assert_eq!((ok, limited), (40, 5));
}

fn cluster_plugin(count: u64) -> String {
    format!("type = \"key-rate-limit\"\nkey = \"header:x-tenant-id\"\nlimits = [{{ per = \"second\", count = {count} }}]\nscope = \"cluster\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_of_three_shares_one_limit_and_survives_redis_outages() {
    let redis_port = support::free_port();
    let mut redis = Some(Redis::start_on(redis_port));
    let up = Upstream::start("a").await;
    let extra = format!(
        "[redis]\nurl = \"redis://127.0.0.1:{redis_port}/\"\ntimeout_ms = 50\nfleet_size = 3\n"
    );
    let fleet: Vec<Gateway> = (0..3)
        .map(|_| Gateway::start(&config(&up, &cluster_plugin(100), &extra)))
        .collect();
    let urls: Vec<String> = fleet.iter().map(|g| g.url("/x")).collect();

    // Three full one-second windows, requests spread over the three gateways.
    next_second().await;
    let started = Instant::now();
    let mut totals = (0, 0, 0);
    while started.elapsed() < Duration::from_millis(2900) {
        for url in &urls {
            let (a, l, o) = burst(url, Some("fleet"), 30, 3).await;
            totals = (totals.0 + a, totals.1 + l, totals.2 + o);
        }
    }
    eprintln!("fleet-wide over 3 windows: {totals:?}");
    assert_eq!(totals.2, 0);
    assert!(totals.1 > 0, "load never reached the limit");
    assert!(
        (285..=315).contains(&totals.0),
        "allowed {} for a limit of 3 × 100",
        totals.0
    );

    // Redis dies: no 5xx; each gateway falls back to 100 / 3 per second.
    drop(redis.take());
    next_second().await;
    let (a, l, o) = burst(&urls[0], Some("fleet"), 60, 2).await;
    eprintln!("one gateway while redis is down: {:?}", (a, l, o));
    assert_eq!(o, 0, "errors while redis is down");
    assert_eq!(a, 34, "fallback limit is ceil(100 / 3)");
    let metrics = fleet[0].metrics().await;
    assert!(metrics.contains("tidegate_redis_up 0"), "{metrics}");
    assert!(metrics.contains("tidegate_limit_redis_fallback_total{plugin=\"tenant-limit\"}"));

    // Redis back: cluster scope resumes (after the one-second breaker).
    let _redis = Redis::start_on(redis_port);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    next_second().await;
    let (a, _, o) = burst(&urls[1], Some("fleet2"), 150, 3).await;
    assert_eq!(o, 0);
    assert_eq!(a, 100, "cluster limit after redis came back");
    let metrics = fleet[1].metrics().await;
    assert!(metrics.contains("tidegate_redis_up 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_api_changes_limits_without_resetting_counters() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&config(
        &up,
        "type = \"key-rate-limit\"\nkey = \"header:x-tenant-id\"\nlimits = [{ per = \"hour\", count = 1000 }]",
        "",
    ));
    let url = gw.url("/x");
    let http = client();
    assert_eq!(burst(&url, Some("acme"), 200, 4).await, (200, 0, 0));
    let usage: serde_json::Value = serde_json::from_str(
        &http
            .get(gw.admin_url("/api/quota/tenant-limit/acme"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(usage["windows"][0]["used"], 200, "{usage}");

    // Lower acme to 250 per hour: 200 are already counted, so 50 more pass.
    let put = |body: &'static str| {
        http.put(gw.admin_url("/api/quota/tenant-limit/acme"))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
    };
    let resp = put(r#"{"limits": [{"per": "hour", "count": 250}]}"#)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    assert_eq!(burst(&url, Some("acme"), 80, 4).await, (50, 30, 0));
    // Raise it to 400: 150 more.
    assert_eq!(
        put(r#"{"limits": [{"per": "hour", "count": 400}]}"#)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(burst(&url, Some("acme"), 200, 4).await, (150, 50, 0));
    // Persisted to the config file; a bad override is refused; a viewer without the token is not heard.
    let file = std::fs::read_to_string(&gw.config_path).unwrap();
    assert!(file.contains("acme") && file.contains("400"), "{file}");
    let resp = put(r#"{"limits": [{"per": "fortnight", "count": 1}]}"#)
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = http
        .put(gw.admin_url("/api/quota/tenant-limit/acme"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        http.get(gw.admin_url("/api/quota/nope/acme"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_bans_the_flooder_and_spares_others() {
    let up = Upstream::start("a").await;
    // global_plugins is a top-level key, so it goes before every table.
    let body = format!(
        r#"
[plugins.cc]
type = "cc-protection"
key = "header:x-client"
rate = {{ per = "second", count = 20 }}
ban_seconds = 5
status = 403
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "api"
path = "/"
service = "s"
"#,
        up.addr
    );
    let gw = Gateway::start_with_text(|(port, admin, dir)| {
        format!(
            "global_plugins = [\"cc\"]\n{}",
            Gateway::config_text(port, admin, dir, &body)
        )
    });
    let http = client();
    let (flood, calm) = (gw.url("/x"), gw.url("/x"));
    let flooder = tokio::spawn({
        let http = http.clone();
        async move {
            let mut codes = Vec::new();
            for _ in 0..100 {
                codes.push(
                    http.get(&flood)
                        .header("x-client", "flooder")
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
            codes
        }
    });
    let mut calm_codes = Vec::new();
    for _ in 0..15 {
        calm_codes.push(
            http.get(&calm)
                .header("x-client", "calm")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let codes = flooder.await.unwrap();
    assert!(codes[..20].iter().all(|c| *c == 200), "{codes:?}");
    assert!(
        codes[21..].iter().all(|c| *c == 403),
        "not banned: {codes:?}"
    );
    assert!(
        calm_codes.iter().all(|c| *c == 200),
        "calm client hurt: {calm_codes:?}"
    );
    // Still banned a second later, even at a gentle pace.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        http.get(gw.url("/x"))
            .header("x-client", "flooder")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}
