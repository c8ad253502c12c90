#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! gRPC through the gateway with a real gRPC server and client (Python `grpcio`, from
//! `gateway/tests/grpc/`; `scripts/test.sh` makes its venv and names its python in
//! `TIDEGATE_GRPC_PYTHON`): every streaming kind, deadlines, trailers, statuses the gateway
//! answers itself, gRPC health checks, gRPC-Web from a plain HTTP/1.1 client, and grpcs
//! (TLS to the upstream, verified against the test CA).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::tls::Certs;
use support::{free_port, Gateway};

fn python() -> String {
    std::env::var("TIDEGATE_GRPC_PYTHON").unwrap_or_else(|_| {
        panic!("TIDEGATE_GRPC_PYTHON is not set: scripts/test.sh makes the gRPC venv (gateway/tests/grpc/setup.sh)")
    })
}

fn kit(file: &str) -> String {
    format!("{}/tests/grpc/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// A `server.py` upstream; killed on drop.
struct Upstream {
    child: Child,
    port: u16,
}

impl Upstream {
    fn start(name: &str, extra: &[&str]) -> Upstream {
        let port = free_port();
        let child = Command::new(python())
            .arg(kit("server.py"))
            .args(["--port", &port.to_string(), "--name", name])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = Upstream { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return up;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the gRPC upstream never listened");
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one client case; the JSON line it prints.
fn call(target: &str, case: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(kit("client.py"))
        .args(["--target", target, "--case", case])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "{case}: not JSON ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn code(v: &serde_json::Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

fn grpc_gateway(upstreams: &[u16], extra: &str) -> Gateway {
    let endpoints: Vec<String> = upstreams
        .iter()
        .map(|p| format!("{{ addr = \"127.0.0.1:{p}\" }}"))
        .collect();
    Gateway::start(&format!(
        r#"
[plugins.limit]
type = "key-rate-limit"
key = "header:x-tenant"
limits = [{{ per = "minute", count = 2 }}]
[[services]]
name = "echo"
protocol = "grpc"
endpoints = [{}]
health_check = {{ type = "grpc", interval_ms = 200, timeout_ms = 500, healthy_threshold = 1, unhealthy_threshold = 2 }}
passive = {{ failures = 0 }}
[[routes]]
name = "limited"
path = "/tidegate.test.Echo/Unary"
headers = {{ "x-tenant" = "t1" }}
service = "echo"
plugins = ["limit"]
[[routes]]
name = "echo"
path = "/tidegate.test.Echo/"
service = "echo"
[[routes]]
name = "health"
path = "/grpc.health.v1.Health/"
service = "echo"
{extra}
"#,
        endpoints.join(", ")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_call_passes_through_with_its_trailers_and_deadline() {
    let up = Upstream::start("b1", &[]);
    let gw = grpc_gateway(&[up.port], "");
    let target = gw.addr();
    tokio::task::block_in_place(|| {
        let unary = call(&target, "unary", &["--metadata", "x-request-id=rpc-1"]);
        assert_eq!(code(&unary), "OK", "{unary}");
        assert_eq!(unary["initial_metadata"]["x-served-by"], "b1");
        // The upstream saw the gateway's forwarding headers (echoed back in trailers).
        assert_eq!(
            unary["trailing_metadata"]["echo-x-request-id"], "rpc-1",
            "{unary}"
        );
        assert_eq!(
            unary["trailing_metadata"]["echo-x-forwarded-for"], "127.0.0.1",
            "{unary}"
        );
        let stream = call(&target, "server_stream", &[]);
        assert_eq!(code(&stream), "OK");
        assert_eq!(stream["messages"].as_array().unwrap().len(), 3, "{stream}");
        let client = call(&target, "client_stream", &[]);
        assert_eq!(code(&client), "OK");
        assert!(
            client["messages"][0].as_str().unwrap_or("").contains("abc"),
            "{client}"
        );
        let bidi = call(&target, "bidi", &[]);
        assert_eq!(code(&bidi), "OK");
        assert_eq!(bidi["messages"].as_array().unwrap().len(), 3, "{bidi}");
        // A status and trailers from the upstream reach the client unchanged.
        let fail = call(&target, "fail", &[]);
        assert_eq!(code(&fail), "PERMISSION_DENIED", "{fail}");
        assert_eq!(fail["details"], "denied by echo");
        assert!(fail["trailing_metadata"]["fail-code"].is_string(), "{fail}");
        // The deadline is honoured: the call ends at 200 ms, not at the upstream's 2 s.
        let deadline = call(&target, "deadline", &[]);
        assert_eq!(code(&deadline), "DEADLINE_EXCEEDED", "{deadline}");
        assert!(
            deadline["elapsed_ms"].as_u64().unwrap() < 1500,
            "{deadline}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_answers_grpc_statuses_itself() {
    let up = Upstream::start("b1", &[]);
    let gw = grpc_gateway(&[up.port], "");
    let target = gw.addr();
    tokio::task::block_in_place(|| {
        let none = call(
            &target,
            "no_route",
            &["--path", "/tidegate.test.Nowhere/Nothing"],
        );
        assert_eq!(code(&none), "UNIMPLEMENTED", "{none}");
        assert_eq!(none["details"], "no route matches this request");
        for _ in 0..2 {
            assert_eq!(
                code(&call(&target, "unary", &["--metadata", "x-tenant=t1"])),
                "OK"
            );
        }
        let limited = call(&target, "unary", &["--metadata", "x-tenant=t1"]);
        assert_eq!(code(&limited), "RESOURCE_EXHAUSTED", "{limited}");
    });
    drop(up);
    std::thread::sleep(Duration::from_millis(300));
    let down = tokio::task::block_in_place(|| call(&gw.addr(), "unary", &[]));
    assert_eq!(code(&down), "UNAVAILABLE", "{down}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_health_check_ejects_an_endpoint_that_is_not_serving() {
    let dir = support::TempDir::new("health");
    let health = dir.path("b2.health");
    std::fs::write(&health, "SERVING").unwrap();
    let b1 = Upstream::start("b1", &[]);
    let b2 = Upstream::start("b2", &["--health-file", health.to_str().unwrap()]);
    let gw = grpc_gateway(&[b1.port, b2.port], "");
    let target = gw.addr();
    let served = |n: usize| {
        let mut by = std::collections::HashMap::new();
        for _ in 0..n {
            let v = call(&target, "unary", &[]);
            *by.entry(
                v["initial_metadata"]["x-served-by"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
            .or_insert(0) += 1;
        }
        by
    };
    tokio::task::block_in_place(|| {
        let both = served(10);
        assert!(
            both.contains_key("b1") && both.contains_key("b2"),
            "{both:?}"
        );
        std::fs::write(&health, "NOT_SERVING").unwrap();
        std::thread::sleep(Duration::from_millis(1200));
        let only = served(10);
        assert_eq!(only.get("b1"), Some(&10), "{only:?}");
    });
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("tidegate_service_endpoints{service=\"echo\",state=\"unhealthy\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_from_a_plain_http1_client_reaches_a_grpc_upstream() {
    let up = Upstream::start("b1", &[]);
    let gw = grpc_gateway(&[up.port], "");
    let target = gw.addr();
    tokio::task::block_in_place(|| {
        let unary = call(&target, "grpc_web", &["--method", "Unary"]);
        assert_eq!(code(&unary), "OK", "{unary}");
        assert_eq!(unary["http_status"], 200);
        assert!(unary["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/grpc-web"));
        let stream = call(&target, "grpc_web", &["--method", "ServerStream"]);
        assert_eq!(code(&stream), "OK", "{stream}");
        assert_eq!(stream["messages"].as_array().unwrap().len(), 3, "{stream}");
        let fail = call(&target, "grpc_web", &["--method", "Fail"]);
        assert_eq!(code(&fail), "PERMISSION_DENIED", "{fail}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcs_upstreams_are_verified_and_clients_may_come_over_tls() {
    let certs = Certs::make(&["localhost"]);
    let up = Upstream::start(
        "tls",
        &[
            "--tls",
            &certs.path("localhost.pem"),
            &certs.path("localhost.key"),
        ],
    );
    let tls_port = free_port();
    let body = format!(
        r#"
[[certificates]]
cert = "{cert}"
key = "{key}"
default = true
[[services]]
name = "secure"
protocol = "grpcs"
endpoints = [{{ addr = "127.0.0.1:{port}" }}]
tls = {{ sni = "localhost", ca = "{ca}" }}
[[services]]
name = "wrong-name"
protocol = "grpcs"
endpoints = [{{ addr = "127.0.0.1:{port}" }}]
tls = {{ sni = "not-the-name.test", ca = "{ca}" }}
[[routes]]
name = "wrong"
path = "/tidegate.test.Echo/Bidi"
service = "wrong-name"
[[routes]]
name = "secure"
path = "/tidegate.test.Echo/"
service = "secure"
"#,
        cert = certs.path("localhost.pem"),
        key = certs.path("localhost.key"),
        port = up.port,
        ca = certs.ca()
    );
    let gw = Gateway::start_with_text(|(port, admin, dir)| {
        Gateway::config_text(port, admin, dir, &body).replace(
            "threads = 2\n",
            &format!("threads = 2\ntls_listen = [\"127.0.0.1:{tls_port}\"]\n"),
        )
    });
    let plain = gw.addr();
    let over_tls = format!("127.0.0.1:{tls_port}");
    let ca = certs.ca();
    tokio::task::block_in_place(|| {
        let v = call(&plain, "unary", &[]);
        assert_eq!(code(&v), "OK", "{v}");
        assert_eq!(v["initial_metadata"]["x-served-by"], "tls");
        let v = call(
            &over_tls,
            "bidi",
            &["--tls-ca", &ca, "--authority", "localhost"],
        );
        // The Bidi route's service expects another name on the certificate: refused.
        assert_eq!(code(&v), "UNAVAILABLE", "{v}");
        let v = call(
            &over_tls,
            "server_stream",
            &["--tls-ca", &ca, "--authority", "localhost"],
        );
        assert_eq!(code(&v), "OK", "{v}");
    });
}
