#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Upgrades and stops behind a real load balancer (haproxy from apt, as the cloud SLB):
//! health checks on `/readyz` every 500 ms (fall 2, rise 2), pooled keep-alive connections to
//! the gateways, clients that never retry. A binary upgrade must keep the host in rotation;
//! a stop or an operator's drain must take it out before it stops answering.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::haproxy::{Backend, Haproxy};
use support::raw::get;
use support::upstream::Upstream;
use support::{ws, Gateway};

fn gateway(up: &Upstream, echo: &ws::EchoServer, grace: u64) -> Gateway {
    Gateway::start_with_grace(&support::api_and_ws(up.addr, echo.addr), grace, "")
}

fn backend(name: &'static str, gw: &Gateway) -> Backend {
    Backend {
        name,
        port: gw.port,
        admin_port: gw.admin_port,
    }
}

/// Clients through the load balancer until stopped: half keep their connection, half open
/// one per request; none retries. Every answer's upstream name is counted.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failures: Arc<Mutex<Vec<String>>>,
    served_by: Arc<Mutex<Vec<(Instant, String)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: String) -> Load {
        let load = Load {
            stop: Arc::default(),
            sent: Arc::default(),
            failures: Arc::default(),
            served_by: Arc::default(),
            threads: Vec::new(),
        };
        let mut threads = Vec::new();
        for (i, keep_alive) in [true, true, false, false].into_iter().enumerate() {
            let (stop, sent, failures, served_by, addr) = (
                load.stop.clone(),
                load.sent.clone(),
                load.failures.clone(),
                load.served_by.clone(),
                addr.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut conn = None;
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    sent.fetch_add(1, Ordering::Relaxed);
                    match get(&addr, &mut conn, keep_alive) {
                        Ok(body) => {
                            let server = support::json(&body)["server"]
                                .as_str()
                                .unwrap_or("")
                                .to_string();
                            served_by.lock().unwrap().push((Instant::now(), server));
                        }
                        Err(e) => {
                            failures.lock().unwrap().push(format!("client {i}: {e}"));
                            conn = None;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(4));
                }
            }));
        }
        Load { threads, ..load }
    }

    /// Stops the clients; returns (requests sent, failures).
    fn finish(self) -> (usize, Vec<String>, Vec<(Instant, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        let served = self.served_by.lock().unwrap().clone();
        (self.sent.load(Ordering::Relaxed), failures, served)
    }
}

fn assert_no_failures(sent: usize, failures: &[String], what: &str) {
    eprintln!("{what}: {sent} requests, {} failed", failures.len());
    assert!(sent > 500, "{what}: load too small ({sent})");
    assert!(
        failures.is_empty(),
        "{what}: {} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_upgrades_behind_haproxy_keep_the_host_in_rotation() {
    let up = Upstream::start("a").await;
    let echo = ws::EchoServer::start().await;
    let gw = gateway(&up, &echo, 2);
    let lb = Haproxy::start(&[backend("g1", &gw)]);
    let url = format!("ws://{}/ws", lb.addr());
    let mut tunnels = Vec::new();
    for _ in 0..20 {
        tunnels.push(ws::connect(&url).await);
    }
    let load = Load::start(lb.addr());
    std::thread::sleep(Duration::from_millis(500));
    for round in 0..3 {
        let out = tokio::task::block_in_place(|| {
            std::process::Command::new(support::binary())
                .arg("upgrade")
                .arg("-c")
                .arg(&gw.config_path)
                .arg("--log")
                .arg(gw.dir.path("stderr.log"))
                .output()
                .unwrap()
        });
        assert!(
            out.status.success(),
            "upgrade {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(lb.status("g1"), "UP", "after upgrade {round}");
    }
    std::thread::sleep(Duration::from_millis(500));
    let (sent, failures, _) = load.finish();
    assert_no_failures(sent, &failures, "3 upgrades behind haproxy");
    assert_eq!(
        lb.times_marked_down("g1"),
        0,
        "haproxy marked the gateway down during an upgrade:\n{}",
        lb.log()
    );
    ws::assert_all_alive(&mut tunnels, &echo, "through haproxy after 3 upgrades").await;
    if let Ok(pid) = std::fs::read_to_string(gw.dir.path("tidegate.pid")) {
        let _ = std::process::Command::new("kill")
            .arg("-9")
            .arg(pid.trim())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_gateway_leaves_the_rotation_before_it_stops_answering() {
    let (up_a, up_b) = (Upstream::start("a").await, Upstream::start("b").await);
    let echo = ws::EchoServer::start().await;
    let mut g1 = gateway(&up_a, &echo, 3);
    let g2 = gateway(&up_b, &echo, 3);
    let lb = Haproxy::start(&[backend("g1", &g1), backend("g2", &g2)]);
    let load = Load::start(lb.addr());
    std::thread::sleep(Duration::from_millis(800));
    let stopped_at = Instant::now();
    g1.signal("TERM");
    let down = lb.wait_status("g1", "DOWN", Duration::from_secs(5));
    let down = down.unwrap_or_else(|| panic!("haproxy never marked g1 down:\n{}", lb.log()));
    eprintln!("g1 marked down {down:?} after SIGTERM");
    // Two failed checks 500 ms apart, plus the check that was in flight.
    assert!(
        down < Duration::from_millis(2000),
        "marked down after {down:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (sent, failures, served) = load.finish();
    assert_no_failures(sent, &failures, "SIGTERM to one of two gateways");
    let late_a = served
        .iter()
        .filter(|(at, s)| *at > stopped_at + down + Duration::from_millis(200) && s == "a")
        .count();
    assert_eq!(
        late_a, 0,
        "the stopped gateway still got traffic after it left"
    );
    // Nothing is left in flight, so it exits well before its 3 s grace period is over.
    let exited = g1.wait_exit(Duration::from_secs(6));
    assert!(exited.is_some(), "the stopped gateway did not exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_gateway_leaves_the_rotation_and_still_serves() {
    let (up_a, up_b) = (Upstream::start("a").await, Upstream::start("b").await);
    let echo = ws::EchoServer::start().await;
    let g1 = gateway(&up_a, &echo, 2);
    let g2 = gateway(&up_b, &echo, 2);
    let lb = Haproxy::start(&[backend("g1", &g1), backend("g2", &g2)]);
    let load = Load::start(lb.addr());
    std::thread::sleep(Duration::from_millis(500));
    let drain = |undo: bool| {
        let mut cmd = std::process::Command::new(support::binary());
        cmd.arg("drain");
        if undo {
            cmd.arg("--undo");
        }
        let out = cmd.arg("-c").arg(&g1.config_path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let drained_at = Instant::now();
    drain(false);
    let down = lb.wait_status("g1", "DOWN", Duration::from_secs(5));
    assert!(
        down.is_some(),
        "haproxy never marked the drained gateway down"
    );
    std::thread::sleep(Duration::from_millis(1000));
    // Still answering when asked directly.
    let mut direct = None;
    assert!(get(&g1.addr(), &mut direct, false).is_ok());
    drain(true);
    let up = lb.wait_status("g1", "UP", Duration::from_secs(5));
    assert!(up.is_some(), "haproxy never put the gateway back");
    std::thread::sleep(Duration::from_millis(800));
    let (sent, failures, served) = load.finish();
    assert_no_failures(sent, &failures, "drain and undrain one of two gateways");
    let left = drained_at + down.unwrap() + Duration::from_millis(200);
    let back = drained_at + down.unwrap() + Duration::from_millis(1000);
    let during: Vec<&String> = served
        .iter()
        .filter(|(at, _)| *at > left && *at < back)
        .map(|(_, s)| s)
        .collect();
    assert!(
        !during.is_empty() && during.iter().all(|s| *s == "b"),
        "{during:?}"
    );
    let last: Vec<&String> = served.iter().rev().take(40).map(|(_, s)| s).collect();
    assert!(
        last.iter().any(|s| *s == "a"),
        "traffic did not come back: {last:?}"
    );
}
