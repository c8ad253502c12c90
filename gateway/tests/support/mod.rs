#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! Real processes and servers on 127.0.0.1 for the integration tests: the `tidegate` binary
//! with a generated config, HTTP upstreams that echo what they received, and a WebSocket
//! echo server. Everything binds ephemeral loopback ports and is torn down on drop.
#![allow(dead_code)]

pub mod haproxy;
pub mod kube_api;
pub mod logging;
pub mod nacos;
pub mod pages;
pub mod raw;
pub mod redis;
pub mod tls;
pub mod upstream;
pub mod ws;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";

/// A free loopback port (bound and released; the window for a clash is tiny).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tidegate-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tidegate")
}

/// A running gateway process.
pub struct Gateway {
    child: Option<Child>,
    pub port: u16,
    pub admin_port: u16,
    pub dir: TempDir,
    pub config_path: PathBuf,
}

impl Gateway {
    /// The `[server]`, `[admin]` and `[access_log]` sections for a test gateway; `body` adds
    /// services and routes.
    pub fn config_text(port: u16, admin_port: u16, dir: &TempDir, body: &str) -> String {
        format!(
            r#"[server]
listen = ["127.0.0.1:{port}"]
threads = 2
pid_file = "{dir}/tidegate.pid"
upgrade_sock = "{dir}/upgrade.sock"
grace_period_seconds = 1
graceful_shutdown_timeout_seconds = 1

[admin]
listen = "127.0.0.1:{admin_port}"
token = "{TOKEN}"

[access_log]
path = "{dir}/access.log"

{body}
"#,
            dir = dir.0.display()
        )
    }

    pub fn start(body: &str) -> Gateway {
        Self::start_with_text(|(port, admin_port, dir)| {
            Self::config_text(port, admin_port, dir, body)
        })
    }

    /// Starts with `grace_period_seconds = grace` (tests default to 1) and `server_extra`
    /// lines added to `[server]`.
    pub fn start_with_grace(body: &str, grace: u64, server_extra: &str) -> Gateway {
        Self::start_with_text(|(port, admin, dir)| {
            Self::config_text(port, admin, dir, body).replace(
                "grace_period_seconds = 1\n",
                &format!("grace_period_seconds = {grace}\n{server_extra}"),
            )
        })
    }

    /// Starts with the whole config text made by `text((port, admin port, dir))`.
    pub fn start_with_text(text: impl FnOnce((u16, u16, &TempDir)) -> String) -> Gateway {
        Self::start_with_env(text, &[])
    }

    /// [`Gateway::start_with_text`] with extra environment variables (test hooks).
    pub fn start_with_env(
        text: impl FnOnce((u16, u16, &TempDir)) -> String,
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = TempDir::new("gw");
        let (port, admin_port) = (free_port(), free_port());
        let config_path = dir.path("tidegate.toml");
        std::fs::write(&config_path, text((port, admin_port, &dir))).unwrap();
        let log = std::fs::File::create(dir.path("stderr.log")).unwrap();
        let child = Command::new(binary())
            .arg("-c")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tidegate");
        let mut gw = Gateway {
            child: Some(child),
            port,
            admin_port,
            dir,
            config_path,
        };
        gw.wait_ready();
        gw
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("tidegate exited early ({status}):\n{}", self.stderr());
            }
            let proxy_up = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            let admin_up = std::net::TcpStream::connect(("127.0.0.1", self.admin_port)).is_ok();
            if proxy_up && admin_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tidegate did not start listening:\n{}", self.stderr());
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path("stderr.log")).unwrap_or_default()
    }

    /// The admin listener's /metrics text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// `GET /api/config/status` on the admin API (with the token), as JSON.
    pub async fn config_status(&self) -> serde_json::Value {
        let text = client()
            .get(self.admin_url("/api/config/status"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        json(&text)
    }

    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path("access.log")).unwrap_or_default()
    }

    /// The access-log lines (as JSON) that `keep` accepts, once there are at least `n` of
    /// them or 5 s have passed (lines are written within 50 ms), and the whole log for
    /// failure messages.
    pub async fn access_log_lines(
        &self,
        n: usize,
        keep: impl Fn(&serde_json::Value) -> bool,
    ) -> (Vec<serde_json::Value>, String) {
        let matching =
            |log: &str| -> Vec<serde_json::Value> { log.lines().map(json).filter(&keep).collect() };
        eventually(Duration::from_secs(5), || async {
            matching(&self.access_log()).len() >= n
        })
        .await;
        let log = self.access_log();
        (matching(&log), log)
    }

    /// Rewrites the config file with a new body (same listeners).
    pub fn write_config(&self, body: &str) {
        let text = Self::config_text(self.port, self.admin_port, &self.dir, body);
        // Write then rename, as an operator's tooling would: the watcher never sees half a file.
        let tmp = self.dir.path("tidegate.toml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    /// `PUT /api/config` with a whole config text: the status and the JSON answer.
    pub async fn put_config(&self, text: String) -> (u16, serde_json::Value) {
        let resp = client()
            .put(self.admin_url("/api/config"))
            .bearer_auth(TOKEN)
            .body(text)
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        (code, json(&resp.text().await.unwrap()))
    }

    pub fn full_config(&self, body: &str) -> String {
        Self::config_text(self.port, self.admin_port, &self.dir, body)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The sum of every sample of metric `name` in a /metrics text (0 when it has none: series
/// are exported at zero before their first event).
pub fn metric_sum(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `[[services]]` "s" with one endpoint and `[[routes]]` "r" on `path` through `plugins`: the
/// fixture most plugin tests put behind their plugin settings.
pub fn service_route(addr: impl std::fmt::Display, path: &str, plugins: &[&str]) -> String {
    let plugins: Vec<String> = plugins.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[[services]]\nname = \"s\"\nendpoints = [{{ addr = \"{addr}\" }}]\n[[routes]]\nname = \"r\"\npath = \"{path}\"\nservice = \"s\"\nplugins = [{}]\n",
        plugins.join(", ")
    )
}

/// Service "api" behind route `/api/` and service "chat" behind the WebSocket route `/ws`:
/// the two kinds of traffic the upgrade tests carry.
pub fn api_and_ws(api: impl std::fmt::Display, chat: impl std::fmt::Display) -> String {
    format!(
        "[[services]]\nname = \"api\"\nendpoints = [{{ addr = \"{api}\" }}]\n[[services]]\nname = \"chat\"\nendpoints = [{{ addr = \"{chat}\" }}]\n[[routes]]\nname = \"api\"\npath = \"/api/\"\nservice = \"api\"\n[[routes]]\nname = \"ws\"\npath = \"/ws\"\nservice = \"chat\"\n"
    )
}

/// A response's body as JSON (the test upstream echoes what it saw as JSON).
pub async fn body_json(resp: reqwest::Response) -> serde_json::Value {
    json(&resp.text().await.unwrap())
}

/// GET `url`: the status and the body as JSON.
pub async fn get_json(http: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let resp = http.get(url).send().await.unwrap();
    (resp.status().as_u16(), body_json(resp).await)
}

/// Parses a response body as JSON, showing the text when it is not.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// An HTTP client that never uses a proxy from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Polls `check` until it is true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A complete, valid config using every action, for checks that need a good file.
pub fn upstream_free_config() -> &'static str {
    r#"
[server]
listen = ["127.0.0.1:18080"]
[[services]]
name = "s"
lb = "hash"
hash_key = "cookie:sid"
endpoints = [{ addr = "127.0.0.1:3001", weight = 2, labels = { stage = "blue" } }]
[[routes]]
name = "api"
hosts = ["chat.example.com", "*.example.org"]
path = "/api/"
methods = ["GET", "POST"]
headers = { "x-env" = "prod" }
service = "s"
strip_prefix = true
[[routes]]
name = "old"
path = "=/old"
redirect = { to = "https://example.com/", status = 301 }
[[routes]]
name = "v"
path = "~^/v[0-9]+/"
respond = { status = 200, body = "ok", headers = { "content-type" = "text/plain" } }
"#
}
