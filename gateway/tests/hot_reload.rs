#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Hot configuration: every change goes through one pipeline (file watch, SIGHUP, admin API),
//! never drops a request, never closes a tunnel it does not concern, and refuses bad input
//! with a position while the old snapshot keeps serving.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::upstream::Upstream;
use support::{client, ws, Gateway, TOKEN};

fn base(up: &Upstream) -> String {
    format!(
        r#"
[[services]]
name = "svc"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "main"
path = "/main/"
service = "svc"
"#,
        up.addr
    )
}

fn extra_route(i: usize) -> String {
    format!(
        "\n[[routes]]\nname = \"new-{i}\"\npath = \"=/new/{i}\"\nrespond = {{ body = \"v{i}\" }}\n"
    )
}

async fn wait_version(gw: &Gateway, version: u64) -> bool {
    support::eventually(Duration::from_secs(5), || async {
        gw.config_status().await["version"].as_u64() >= Some(version)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_reloads_under_load_fail_no_request() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&base(&up));
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Four keep-alive clients, each paced to ~100 requests/s, for as long as the changes run
    // (at most 60 s).
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, sent, failed, url) = (
            stop.clone(),
            sent.clone(),
            failed.clone(),
            gw.url("/main/x"),
        );
        load.push(tokio::spawn(async move {
            let http = client();
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                tick.tick().await;
                sent.fetch_add(1, Ordering::Relaxed);
                let ok = match http.get(&url).send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let http = client();
    let mut body = base(&up);
    let mut version = 1;
    for i in 0..100 {
        body.push_str(&extra_route(i));
        match i % 3 {
            0 => {
                let (code, answer) = gw.put_config(gw.full_config(&body)).await;
                assert_eq!(code, 200, "{answer}");
                version += 1;
                assert_eq!(answer["version"], version);
            }
            1 => {
                gw.write_config(&body);
                version += 1;
                assert!(
                    wait_version(&gw, version).await,
                    "file change {i} not applied"
                );
            }
            _ => {
                gw.write_config(&body);
                gw.signal("HUP");
                version += 1;
                assert!(
                    wait_version(&gw, version).await,
                    "SIGHUP change {i} not applied"
                );
            }
        }
        // The new route answers on the very next request.
        let resp = http.get(gw.url(&format!("/new/{i}"))).send().await.unwrap();
        assert_eq!(
            resp.text().await.unwrap(),
            format!("v{i}"),
            "route of change {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (sent, failed) = (sent.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!("requests during 100 reloads: {sent}, failed: {failed}");
    assert!(sent > 500, "load did not run: {sent}");
    assert_eq!(failed, 0);
    assert_eq!(gw.config_status().await["version"], 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_the_file() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&base(&up));
    let before = std::fs::metadata(&gw.config_path).unwrap();
    // Same length, same mtime, same inode: invisible to the watcher, so only SIGHUP applies it.
    let text = std::fs::read_to_string(&gw.config_path)
        .unwrap()
        .replace("\"main\"", "\"mainx\"");
    let text = text.replacen("threads = 2", "threads =2", 1);
    assert_eq!(text.len(), before.len() as usize);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&gw.config_path)
        .unwrap();
    std::io::Write::write_all(&mut &f, text.as_bytes()).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    drop(f);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        gw.config_status().await["version"],
        1,
        "watcher should not have seen it"
    );
    gw.signal("HUP");
    assert!(wait_version(&gw, 2).await);
    let s = gw.config_status().await;
    assert_eq!(s["source"], "signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_tunnels_survive_a_hundred_unrelated_reloads() {
    let echo = ws::EchoServer::start().await;
    let up = Upstream::start("a").await;
    let ws_part = format!(
        "\n[[services]]\nname = \"chat\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"ws\"\npath = \"/ws\"\nservice = \"chat\"\n",
        echo.addr
    );
    let mut body = base(&up) + &ws_part;
    let gw = Gateway::start(&body);
    let url = format!("ws://{}/ws", gw.addr());
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(ws::connect(&url).await);
    }
    for i in 0..100 {
        body.push_str(&extra_route(i));
        let (code, answer) = gw.put_config(gw.full_config(&body)).await;
        assert_eq!(code, 200, "{answer}");
        if i == 20 || i == 60 {
            // Change the tunnels' own service in a way that keeps their endpoint.
            let key = if i == 20 {
                "read_timeout_ms"
            } else {
                "write_timeout_ms"
            };
            body = body.replace(
                "name = \"chat\"\n",
                &format!("name = \"chat\"\n{key} = 31000\n"),
            );
        }
    }
    ws::assert_all_alive(&mut clients, &echo, "after 100 unrelated reloads").await;
    let metrics = gw.metrics().await;
    assert!(metrics.contains("tidegate_websocket_tunnels_open{route=\"ws\"} 200"));
    assert_eq!(
        support::metric_sum(&metrics, "tidegate_websocket_tunnels_closed_total"),
        0.0,
        "{metrics}"
    );
}

fn policy_config(
    echo_a: &ws::EchoServer,
    echo_b: &ws::EchoServer,
    routes: &[(&str, &str)],
) -> String {
    let mut out = format!(
        "\n[[services]]\nname = \"chat\"\nendpoints = [{{ addr = \"{}\" }}, {{ addr = \"{}\" }}]\n",
        echo_a.addr, echo_b.addr
    );
    for (name, policy) in routes {
        out.push_str(&format!(
            "[[routes]]\nname = \"{name}\"\npath = \"/{name}\"\nservice = \"chat\"\non_route_change = \"{policy}\"\ndrain_window_seconds = 4\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_routes_close_per_policy() {
    let (a, b) = (ws::EchoServer::start().await, ws::EchoServer::start().await);
    let all = [
        ("drainme", "drain"),
        ("keepme", "keep"),
        ("closeme", "close"),
    ];
    let gw = Gateway::start(&policy_config(&a, &b, &all));
    let open = |route: &'static str, n: usize| {
        let url = format!("ws://{}/{route}", gw.addr());
        async move {
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(ws::connect(&url).await);
            }
            v
        }
    };
    let drained = open("drainme", 20).await;
    let mut kept = open("keepme", 4).await;
    let closed = open("closeme", 4).await;

    let started = Instant::now();
    let (code, answer) = gw
        .put_config(gw.full_config(&policy_config(&a, &b, &[("other", "drain")])))
        .await;
    assert_eq!(code, 200, "{answer}");

    // close: all at once, with 1001.
    let mut close_tasks = Vec::new();
    for mut c in closed {
        close_tasks.push(tokio::spawn(async move {
            ws::close_code(&mut c, Duration::from_secs(3)).await
        }));
    }
    for t in close_tasks {
        assert_eq!(t.await.unwrap(), Some(1001));
    }
    // drain: every one gets 1001, spread over the 4 s window.
    let mut times = Vec::new();
    for (code, at) in ws::closes(drained, started, Duration::from_secs(10)).await {
        assert_eq!(code, Some(1001));
        times.push(at.as_secs_f64());
    }
    times.sort_by(|x, y| x.partial_cmp(y).unwrap());
    eprintln!("drain close times: {times:?}");
    assert!(times[19] - times[0] > 2.5, "closes not spread: {times:?}");
    assert!(times[19] < 5.5, "drain overran its window: {times:?}");
    for second in 0..5 {
        let in_second = times.iter().filter(|t| **t as usize == second).count();
        assert!(
            in_second <= 10,
            "{in_second} closes in second {second}: {times:?}"
        );
    }
    // keep: still open and working.
    for (i, c) in kept.iter_mut().enumerate() {
        assert!(ws::echo(c, "kept").await, "kept tunnel {i} closed");
    }
    // The upstreams got a close frame too, with the same code.
    let codes: Vec<u16> = a
        .close_codes
        .lock()
        .await
        .iter()
        .chain(b.close_codes.lock().await.iter())
        .copied()
        .collect();
    assert_eq!(codes.len(), 24, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_leaving_its_service_closes_only_its_tunnels() {
    let (a, b) = (ws::EchoServer::start().await, ws::EchoServer::start().await);
    let gw = Gateway::start(&policy_config(&a, &b, &[("ws", "close")]));
    let url = format!("ws://{}/ws", gw.addr());
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(ws::connect(&url).await);
    }
    // Round robin put 5 on each endpoint. Remove endpoint b.
    let only_a = policy_config(&a, &b, &[("ws", "close")])
        .replace(&format!(", {{ addr = \"{}\" }}", b.addr), "");
    let (code, answer) = gw.put_config(gw.full_config(&only_a)).await;
    assert_eq!(code, 200, "{answer}");
    let mut alive = 0;
    let mut closed = 0;
    for c in &mut clients {
        if ws::echo(c, "ping").await {
            alive += 1;
        } else {
            closed += 1;
        }
    }
    assert_eq!((alive, closed), (5, 5));
    assert_eq!(b.close_codes.lock().await.len(), 5);
    assert!(a.close_codes.lock().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_are_refused_and_the_old_one_serves() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&base(&up));
    let http = client();
    let cases = [
        ("bad toml", "[[routes]\nname = 1", "unclosed array table"),
        (
            "bad reference",
            "[[routes]]\nname = \"x\"\nservice = \"ghost\"\n",
            "refers to unknown service \"ghost\"",
        ),
        (
            "bad regex",
            "[[routes]]\nname = \"x\"\npath = \"~(\"\nrespond = { body = \"\" }\n",
            "bad path regex",
        ),
    ];
    for (what, bad, needle) in cases {
        let text = gw.full_config(&(base(&up) + bad));
        // Validate only: 400 with positioned errors, nothing applied.
        let resp = http
            .post(gw.admin_url("/api/config/validate"))
            .bearer_auth(TOKEN)
            .body(text.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{what}");
        let answer: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        let first = answer["errors"][0].as_str().unwrap().to_string();
        assert!(first.contains(needle), "{what}: {first}");
        let (line, rest) = first.split_once(':').unwrap();
        assert!(
            line.parse::<u32>().is_ok() && rest.split_once(':').unwrap().0.parse::<u32>().is_ok(),
            "{what}: no line:column in {first}"
        );

        // Apply via API: refused.
        let (code, answer) = gw.put_config(text.clone()).await;
        assert_eq!(code, 400, "{what}: {answer}");
        // Via the file: refused and logged, status shows it.
        gw.write_config(&(base(&up) + bad));
        assert!(
            support::eventually(Duration::from_secs(5), || async {
                gw.config_status().await["last_refused"]["source"] == "file"
            })
            .await,
            "{what}: file refusal not reported"
        );
        let s = gw.config_status().await;
        assert_eq!(s["version"], 1, "{what}");
        assert!(
            s["last_refused"]["errors"][0]
                .as_str()
                .unwrap()
                .contains(needle),
            "{what}: {s}"
        );
        // The old snapshot still serves.
        let resp = http.get(gw.url("/main/x")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{what}");
    }
    assert!(gw.stderr().contains("refused"), "refusal not logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_needs_the_token() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&base(&up));
    let http = client();
    let changed = gw.full_config(&(base(&up) + &extra_route(1)));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic dGVzdDp0ZXN0"),
        Some("Bearer test-token-but-longer"),
    ] {
        for (method, path) in [
            ("PUT", "/api/config"),
            ("POST", "/api/config/validate"),
            ("GET", "/api/config"),
            ("GET", "/api/config/status"),
        ] {
            let mut req = http
                .request(method.parse().unwrap(), gw.admin_url(path))
                .body(changed.clone());
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 401, "{method} {path} with {auth:?}");
        }
    }
    assert_eq!(
        http.get(gw.url("/new/1")).send().await.unwrap().status(),
        404,
        "applied without a token"
    );
    assert_eq!(gw.config_status().await["version"], 1);
    // Health and metrics stay open.
    assert_eq!(
        http.get(gw.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(gw.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // With the token, GET /api/config returns the serving TOML.
    let text = http
        .get(gw.admin_url("/api/config"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("name = \"main\""));
}
