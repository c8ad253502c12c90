#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! TLS session resumption with rotating ticket keys, seen by `openssl s_client`
//! (`-sess_out` / `-sess_in`, "Reused" or "New" in its output): a ticket resumes under the
//! current key, still resumes after a rotation (decrypted by a kept previous key, counted as
//! such), and a ticket older than the kept keys gets a full handshake.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::tls::Certs;
use support::upstream::Upstream;
use support::{free_port, metric_sum, Gateway, TempDir};

fn tls_gateway(tls_port: u16, certs: &Certs, body: &str, tls: &str) -> Gateway {
    let text = format!(
        "[tls]\n{tls}\n[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n{body}",
        certs.path("localhost.pem"),
        certs.path("localhost.key"),
    );
    Gateway::start_with_text(move |(port, admin, dir)| {
        Gateway::config_text(port, admin, dir, &text).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n"),
        )
    })
}

fn api(up: &Upstream) -> String {
    format!(
        "[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"{}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/\"\nservice = \"api\"\n",
        up.addr
    )
}

/// One HTTPS request with `openssl s_client` at `version` (`-tls1_2` / `-tls1_3`), offering
/// the session in `sess_in` and saving the one it ends with to `sess_out`. Returns whether
/// the session was reused, and the output.
fn s_client(
    addr: &str,
    ca: &str,
    version: &str,
    sess_in: Option<&Path>,
    sess_out: &Path,
) -> (bool, String) {
    let mut cmd = Command::new("timeout");
    cmd.args(["20", "openssl", "s_client", "-connect", addr])
        .args(["-servername", "localhost", "-CAfile", ca, version])
        // Keep reading after the request: the answer, and in TLS 1.3 the tickets, that
        // come after the handshake.
        .arg("-ign_eof")
        .arg("-sess_out")
        .arg(sess_out);
    if let Some(path) = sess_in {
        cmd.arg("-sess_in").arg(path);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client (apt: openssl)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("HTTP/1.1 200"),
        "s_client {version} got no answer:\n{text}"
    );
    let reused = text.lines().any(|l| l.starts_with("Reused,"));
    let new = text.lines().any(|l| l.starts_with("New,"));
    assert!(
        reused != new,
        "s_client {version}: neither New nor Reused:\n{text}"
    );
    (reused, text)
}

async fn tickets(gw: &Gateway, result: &str) -> f64 {
    let metrics = gw.metrics().await;
    metric_sum(
        &metrics
            .lines()
            .filter(|l| l.contains(&format!("result=\"{result}\"")))
            .collect::<Vec<_>>()
            .join("\n"),
        "tidegate_tls_tickets_total",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_with_tickets_on_tls_1_2_and_1_3() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    let gw = tls_gateway(tls_port, &certs, &api(&up), "");
    let addr = format!("127.0.0.1:{tls_port}");
    let dir = TempDir::new("sessions");
    for version in ["-tls1_2", "-tls1_3"] {
        let first = dir.path(&format!("first{version}.pem"));
        let (reused, out) =
            tokio::task::block_in_place(|| s_client(&addr, &certs.ca(), version, None, &first));
        assert!(
            !reused,
            "{version}: the first handshake is a full one:\n{out}"
        );
        for round in 0..3 {
            let next = dir.path(&format!("next{version}{round}.pem"));
            let (reused, out) = tokio::task::block_in_place(|| {
                s_client(&addr, &certs.ca(), version, Some(&first), &next)
            });
            assert!(reused, "{version}: round {round} resumed:\n{out}");
        }
    }
    // 2 versions × (1 full + 3 resumed) handshakes: tickets were issued and decrypted under
    // the current key; none was unknown.
    assert!(tickets(&gw, "issued").await >= 2.0);
    assert_eq!(tickets(&gw, "decrypted").await, 6.0);
    assert_eq!(tickets(&gw, "unknown_key").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_resumes_after_a_rotation_and_not_after_the_kept_keys() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start("a").await;
    let tls_port = free_port();
    // A new key every 2 s, two previous ones kept: a ticket issued at t resumes until at
    // least t + 4 s, and never after t + 6 s.
    let gw = tls_gateway(
        tls_port,
        &certs,
        &api(&up),
        "ticket_key_rotation_seconds = 2\nticket_keys_kept = 2\n",
    );
    let addr = format!("127.0.0.1:{tls_port}");
    let dir = TempDir::new("rotation");
    let ca = certs.ca();
    let versions = ["-tls1_2", "-tls1_3"];
    let mut issued = Vec::new();
    for version in versions {
        let path = dir.path(&format!("t0{version}.pem"));
        let (reused, out) =
            tokio::task::block_in_place(|| s_client(&addr, &ca, version, None, &path));
        assert!(!reused, "{out}");
        issued.push((version, path, Instant::now()));
    }

    // After at least one rotation (> 2 s), before the ticket can have run out (< 4 s).
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let old_key_before = tickets(&gw, "decrypted_old_key").await;
    for (version, path, at) in &issued {
        let renewed = dir.path(&format!("t1{version}.pem"));
        let (reused, out) =
            tokio::task::block_in_place(|| s_client(&addr, &ca, version, Some(path), &renewed));
        let age = at.elapsed();
        assert!(
            age < Duration::from_secs(4),
            "the test was too slow: {age:?}"
        );
        assert!(reused, "{version}: a {age:?} old ticket resumed:\n{out}");
    }
    // Both were decrypted by a previous key (a rotation happened since they were issued).
    assert_eq!(
        tickets(&gw, "decrypted_old_key").await - old_key_before,
        2.0
    );

    // Past every kept key (> 6 s after issue): a full handshake.
    let wait = Duration::from_millis(7000).saturating_sub(issued[0].2.elapsed());
    tokio::time::sleep(wait).await;
    for (version, path, at) in &issued {
        let unknown_before = tickets(&gw, "unknown_key").await;
        let out_path = dir.path(&format!("t2{version}.pem"));
        let (reused, out) =
            tokio::task::block_in_place(|| s_client(&addr, &ca, version, Some(path), &out_path));
        assert!(
            !reused,
            "{version}: a {:?} old ticket must not resume:\n{out}",
            at.elapsed()
        );
        let refused = tickets(&gw, "unknown_key").await - unknown_before;
        if *version == "-tls1_2" {
            // A TLS 1.2 client offers its ticket whatever its age: the gateway saw it and
            // refused it because its key is gone.
            assert_eq!(refused, 1.0, "the TLS 1.2 ticket reached the gateway");
        } else {
            // A TLS 1.3 client drops a ticket older than its lifetime hint (6 s) itself, in
            // whole seconds: at ~7 s it may or may not still offer it. Either way it must not
            // resume, and the gateway counts at most this one.
            assert!(
                refused <= 1.0,
                "{refused} unknown tickets for one handshake"
            );
        }
    }
    // The lifetime announced to clients is the longest a ticket can be accepted: 3 × 2 s.
    let (_, out) = tokio::task::block_in_place(|| {
        s_client(&addr, &ca, "-tls1_2", None, &dir.path("hint.pem"))
    });
    assert!(
        out.contains("lifetime hint: 6 (seconds)"),
        "the ticket's lifetime hint:\n{out}"
    );
}
