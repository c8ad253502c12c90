#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Binary upgrades with Pingora's listener hand-off: no refused connection, no failed
//! request, WebSocket tunnels handed to the new process (or closed with 1001 spread over the
//! grace period when hand-over is off), /readyz following the host (200 through a hand-off,
//! 503 on a stop or an operator's drain), and a failing upgrade leaving the old process be.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::raw::get;
use support::upstream::Upstream;
use support::{client, ws, Gateway};

fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Starts a gateway whose [server] section has a short grace period (and `extra` lines).
fn start(up: &Upstream, echo: &ws::EchoServer, grace: u64, extra: &str) -> Gateway {
    Gateway::start_with_grace(&support::api_and_ws(up.addr, echo.addr), grace, extra)
}

fn upgrade(gw: &Gateway) {
    let out = Command::new(support::binary())
        .arg("upgrade")
        .arg("-c")
        .arg(&gw.config_path)
        .arg("--log")
        .arg(gw.dir.path("stderr.log"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "upgrade failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.stderr()
    );
}

/// Kills whatever process the pid file names now (the last new process).
fn kill_current(gw: &Gateway) {
    if let Ok(pid) = std::fs::read_to_string(gw.dir.path("tidegate.pid")) {
        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_upgrades_under_load_refuse_nothing_and_fail_nothing() {
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let gw = start(&up, &echo, 2, "");
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failures) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(std::sync::Mutex::new(Vec::new())),
    );
    let mut load = Vec::new();
    for (i, keep_alive) in [true, true, false, false].into_iter().enumerate() {
        let (stop, sent, failures, addr) =
            (stop.clone(), sent.clone(), failures.clone(), gw.addr());
        load.push(std::thread::spawn(move || {
            let mut conn = None;
            let deadline = Instant::now() + Duration::from_secs(90);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                sent.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = get(&addr, &mut conn, keep_alive) {
                    failures.lock().unwrap().push(format!("client {i}: {e}"));
                    conn = None;
                }
                std::thread::sleep(Duration::from_millis(4));
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        let gw_ref = &gw;
        tokio::task::block_in_place(|| upgrade(gw_ref));
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    kill_current(&gw);
    let failures = failures.lock().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "requests during 3 upgrades: {sent}, failed: {}",
        failures.len()
    );
    assert!(sent > 2000, "load too small: {sent}");
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_tunnels_are_handed_to_the_new_process() {
    raise_fd_limit();
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let gw = start(&up, &echo, 2, "");
    let url = format!("ws://{}/ws", gw.addr());
    let mut clients = Vec::new();
    for _ in 0..500 {
        clients.push(ws::connect(&url).await);
    }
    for (i, c) in clients.iter_mut().enumerate().step_by(50) {
        assert!(ws::echo(c, &format!("before {i}")).await);
    }
    let old_pid = gw.pid();
    tokio::task::block_in_place(|| upgrade(&gw));
    let new_pid = std::fs::read_to_string(gw.dir.path("tidegate.pid")).unwrap();
    assert_ne!(new_pid.trim(), old_pid.to_string());
    // The old process is gone; every tunnel still echoes, through the new one.
    ws::assert_all_alive(&mut clients, &echo, "in the upgrade").await;
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("tidegate_websocket_tunnels_open{route=\"ws\"} 500"),
        "{metrics}"
    );
    kill_current(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_handover_tunnels_close_with_1001_spread_over_the_grace_period() {
    raise_fd_limit();
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let gw = start(&up, &echo, 5, "websocket_handover = false\n");
    let url = format!("ws://{}/ws", gw.addr());
    let mut waits = Vec::new();
    let started = Instant::now();
    for _ in 0..500 {
        let mut c = ws::connect(&url).await;
        waits.push(tokio::spawn(async move {
            let code = ws::close_code(&mut c, Duration::from_secs(30)).await;
            (code, started.elapsed())
        }));
    }
    let gw_ref = &gw;
    let upgraded = tokio::task::spawn_blocking({
        let (bin, cfg, log) = (
            support::binary(),
            gw_ref.config_path.clone(),
            gw_ref.dir.path("stderr.log"),
        );
        move || {
            Command::new(bin)
                .arg("upgrade")
                .arg("-c")
                .arg(cfg)
                .arg("--log")
                .arg(log)
                .status()
                .unwrap()
        }
    });
    let mut times = Vec::new();
    for w in waits {
        let (code, at) = w.await.unwrap();
        assert_eq!(code, Some(1001));
        times.push(at.as_secs_f64());
    }
    assert!(upgraded.await.unwrap().success());
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!(
        "close times: first {:.2}s, last {:.2}s",
        times[0],
        times[times.len() - 1]
    );
    let (first, last) = (times[0], times[times.len() - 1]);
    assert!(
        last - first > 2.5,
        "closes not spread: {first:.2}..{last:.2}"
    );
    // No one-second slot holds more than three times its share (500 over ~4 s → 125 a second).
    let mut per_second = std::collections::HashMap::new();
    for t in &times {
        *per_second.entry(t.floor() as u64).or_insert(0) += 1;
    }
    assert!(per_second.values().all(|n| *n <= 375), "{per_second:?}");
    assert_eq!(
        echo.close_codes.lock().await.len(),
        500,
        "upstream should get 1001 too"
    );
    kill_current(&gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_host_not_the_process() {
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let http = client();
    let ready = |gw: &Gateway| {
        let (http, url) = (http.clone(), gw.admin_url("/readyz"));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()) }
    };

    // SIGQUIT (a hand-off; here with no new process): the listeners keep accepting for 5 s.
    // The host is not going away — a new process would serve the same ports — so /readyz
    // stays 200 and the SLB keeps the host in rotation; requests are served and told to
    // close their connection.
    let gw = start(&up, &echo, 5, "");
    assert_eq!(ready(&gw).await.unwrap(), 200);
    gw.signal("QUIT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        assert_eq!(ready(&gw).await.unwrap(), 200, "SIGQUIT: /readyz left 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = http.get(gw.url("/api/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["connection"], "close");
    drop(gw);

    // SIGTERM (stop): /readyz never says 200 again (503, then the listener closes).
    let gw = start(&up, &echo, 5, "");
    assert_eq!(ready(&gw).await.unwrap(), 200);
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..10 {
        if let Ok(status) = ready(&gw).await {
            assert_eq!(status, 503, "SIGTERM: still ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_drains_and_undrains_a_host() {
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let http = client();
    let gw = start(&up, &echo, 2, "");
    let status = |path: &'static str| {
        let (http, url) = (http.clone(), gw.admin_url(path));
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    // Without the token the API refuses.
    let refused = http.post(gw.admin_url("/api/drain")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(status("/readyz").await, 200);
    let drained = http
        .post(gw.admin_url("/api/drain"))
        .bearer_auth(support::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 200);
    assert_eq!(status("/readyz").await, 503);
    // Traffic is still served while the SLB moves it away.
    let resp = http.get(gw.url("/api/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["connection"], "close");
    // The command-line form, for scripts: puts the host back.
    let out = Command::new(support::binary())
        .args(["drain", "--undo", "-c"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status("/readyz").await, 200);
    let out = Command::new(support::binary())
        .args(["drain", "-c"])
        .arg(&gw.config_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status("/readyz").await, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_upgrade_leaves_the_old_process_serving_and_ready() {
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let http = client();
    let gw = start(&up, &echo, 2, "");
    let old_pid = gw.pid();
    let good = std::fs::read_to_string(&gw.config_path).unwrap();
    let try_upgrade = || {
        Command::new(support::binary())
            .arg("upgrade")
            .arg("-c")
            .arg(&gw.config_path)
            .arg("--log")
            .arg(gw.dir.path("stderr.log"))
            .output()
            .unwrap()
    };
    // 1. A config the new binary refuses.
    std::fs::write(
        &gw.config_path,
        good.clone() + "\n[[routes]]\nname = \"bad\"\npath = \"~[\"\nrespond = { status = 200 }\n",
    )
    .unwrap();
    let out = tokio::task::block_in_place(try_upgrade);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a refused config upgraded: {stderr}");
    assert!(stderr.contains("bad path regex"), "{stderr}");
    assert!(stderr.contains("keeps serving"), "{stderr}");
    // 2. A listen address another program holds.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap();
    std::fs::write(
        &gw.config_path,
        good.replacen(
            &format!("listen = [\"{}\"]", gw.addr()),
            &format!("listen = [\"{}\", \"{taken}\"]", gw.addr()),
            1,
        ),
    )
    .unwrap();
    let out = tokio::task::block_in_place(try_upgrade);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "a port clash upgraded: {stderr}");
    assert!(stderr.contains(&taken.to_string()), "{stderr}");
    // The old process is the one serving, and it is ready.
    assert_eq!(gw.pid(), old_pid);
    let pid_now = std::fs::read_to_string(gw.dir.path("tidegate.pid")).unwrap();
    assert_eq!(pid_now.trim(), old_pid.to_string());
    let ready = http.get(gw.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        http.get(gw.url("/api/x")).send().await.unwrap().status(),
        200
    );
}
