//! A real rnacos (Nacos-compatible registry and config server) on loopback, and the Open API
//! calls the tests make to it as a service or an operator would.

use super::{client, free_port, TempDir};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nacos {
    child: Option<Child>,
    pub port: u16,
    pub data: TempDir,
    env: Vec<(String, String)>,
    /// Access token once `login` has run (registries with Open API auth on).
    token: std::sync::Mutex<Option<String>>,
}

fn binary() -> String {
    if let Ok(bin) = std::env::var("RNACOS_BIN") {
        return bin;
    }
    let home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let installed = format!("{home}/bin/rnacos");
    if std::path::Path::new(&installed).exists() {
        installed
    } else {
        "rnacos".into()
    }
}

/// A port whose +1000 (gRPC) and +2000 (console) neighbours are free too.
fn free_triple() -> u16 {
    loop {
        let port = free_port();
        if port > 60000 {
            continue;
        }
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port + 1000) && free(port + 2000) {
            return port;
        }
    }
}

impl Nacos {
    pub fn start() -> Nacos {
        Self::start_with(&[])
    }

    /// Starts with extra RNACOS_* settings (auth, health timeouts).
    pub fn start_with(env: &[(&str, &str)]) -> Nacos {
        let mut nacos = Nacos {
            child: None,
            port: free_triple(),
            data: TempDir::new("rnacos"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            token: Default::default(),
        };
        nacos.run();
        nacos
    }

    /// Starts rnacos and waits for its HTTP port. rnacos 0.8.8 often panics when it starts
    /// on an empty data directory (its raft auto-init applies the first entry before the
    /// state machine's dependencies are injected: "called `Option::unwrap()` on a `None`
    /// value" in raftapply.rs; more often on a busy machine), and then serves on with a
    /// config store and user store that accept writes and keep none: such a start is
    /// retried on a new empty directory. Starts are one at a time within a test binary
    /// (less contention, fewer panics).
    fn run(&mut self) {
        static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one_at_a_time = STARTING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = !self.data.path("data").exists();
        for attempt in 1..=20 {
            self.spawn();
            // The panic comes within milliseconds of the start, before the port listens;
            // a little more time makes sure.
            std::thread::sleep(Duration::from_millis(100));
            let log = std::fs::read_to_string(self.data.path("rnacos.log")).unwrap_or_default();
            if !log.contains("panicked") {
                return;
            }
            eprintln!("rnacos panicked while starting (attempt {attempt}); starting it again");
            self.stop();
            if fresh {
                let _ = std::fs::remove_dir_all(self.data.path("data"));
            }
        }
        panic!("rnacos panicked at every start");
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.data.path("rnacos.log")).unwrap();
        let child = Command::new(binary())
            .env("RNACOS_HTTP_PORT", self.port.to_string())
            .env("RNACOS_SDK_HOST", "127.0.0.1")
            .env("RNACOS_CONSOLE_HOST", "127.0.0.1")
            .env(
                "RNACOS_RAFT_NODE_ADDR",
                format!("127.0.0.1:{}", self.port + 1000),
            )
            .env("RNACOS_DATA_DIR", self.data.path("data"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rnacos is not installed; scripts/rnacos.sh install (scripts/test.sh does it)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("rnacos did not start");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port; `empty` wipes its data first (a registry that lost
    /// everything).
    pub fn restart(&mut self, empty: bool) {
        self.stop();
        if empty {
            let _ = std::fs::remove_dir_all(self.data.path("data"));
        }
        self.run();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn login(&self, user: &str, password: &str) {
        // Right after start the user store may not be ready yet ("Mailbox has closed").
        let url = format!("{}/nacos/v1/auth/login", self.url());
        let mut body = String::new();
        // Bounded: 20 s, which a loaded CI machine has needed.
        for _ in 0..200 {
            let resp = client()
                .post(&url)
                .form(&[("username", user), ("password", password)])
                .send()
                .await
                .unwrap();
            let ok = resp.status().is_success();
            body = resp.text().await.unwrap();
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let json: serde_json::Value = serde_json::from_str(&body).expect(&body);
        let token = json["accessToken"].as_str().expect(&body).to_string();
        *self.token.lock().unwrap() = Some(token);
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> String {
        let url = format!("{}/nacos/v1{path}", self.url());
        let token = self.token.lock().unwrap().clone();
        let mut request = client().request(method.clone(), &url);
        if let Some(token) = &token {
            request = request.query(&[("accessToken", token)]);
        }
        let request = if method == reqwest::Method::GET || method == reqwest::Method::PUT {
            request.query(form)
        } else {
            request.form(form)
        };
        let response = request.send().await.expect("rnacos answers");
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// Registers (or updates) a persistent instance: no heartbeats needed.
    pub async fn register(&self, service: &str, addr: &str, weight: f64, metadata: &str) {
        self.register_with(service, addr, weight, metadata, &[])
            .await;
    }

    /// [`Nacos::register`] with more Open API parameters (`clusterName`, `namespaceId`,
    /// `groupName`).
    pub async fn register_with(
        &self,
        service: &str,
        addr: &str,
        weight: f64,
        metadata: &str,
        extra: &[(&str, &str)],
    ) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let weight = weight.to_string();
        let mut form = vec![
            ("serviceName", service),
            ("ip", ip),
            ("port", port),
            ("weight", &weight),
            ("metadata", metadata),
            ("ephemeral", "false"),
        ];
        form.extend_from_slice(extra);
        self.call(reqwest::Method::POST, "/ns/instance", &form)
            .await;
    }

    /// Replaces an instance's metadata (its labels in the gateway).
    pub async fn set_metadata(&self, service: &str, addr: &str, metadata: &str) {
        self.update(service, addr, ("metadata", metadata)).await;
    }

    /// The gRPC port (HTTP port + 1000).
    pub fn grpc_port(&self) -> u16 {
        self.port + 1000
    }

    /// Changes an instance's weight. (rnacos reads a weight of exactly 1 as "unchanged".)
    pub async fn set_weight(&self, service: &str, addr: &str, weight: f64) {
        assert!(weight != 1.0, "rnacos does not apply weight 1 in an update");
        self.update(service, addr, ("weight", &weight.to_string()))
            .await;
    }

    pub async fn set_enabled(&self, service: &str, addr: &str, enabled: bool) {
        self.update(service, addr, ("enabled", &enabled.to_string()))
            .await;
    }

    async fn update(&self, service: &str, addr: &str, field: (&str, &str)) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        self.call(
            reqwest::Method::PUT,
            "/ns/instance",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port),
                ("ephemeral", "false"),
                field,
            ],
        )
        .await;
    }

    /// Registers an ephemeral instance: it turns unhealthy when its heartbeats stop.
    pub async fn register_ephemeral(&self, service: &str, addr: &str) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        self.call(
            reqwest::Method::POST,
            "/ns/instance",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port),
                ("ephemeral", "true"),
            ],
        )
        .await;
    }

    pub async fn beat(&self, service: &str, addr: &str) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let beat = format!(
            r#"{{"ip":"{ip}","port":{port},"serviceName":"DEFAULT_GROUP@@{service}","scheduled":true}}"#
        );
        self.call(
            reqwest::Method::PUT,
            "/ns/instance/beat",
            &[
                ("serviceName", service),
                ("ip", ip),
                ("port", port),
                ("ephemeral", "true"),
                ("beat", &beat),
            ],
        )
        .await;
    }

    pub async fn deregister(&self, service: &str, addr: &str, ephemeral: bool) {
        let (ip, port) = addr.rsplit_once(':').unwrap();
        let url = format!("{}/nacos/v1/ns/instance", self.url());
        let token = self.token.lock().unwrap().clone().unwrap_or_default();
        let status = client()
            .delete(&url)
            .query(&[("accessToken", token.as_str())])
            .query(&[
                ("serviceName", service),
                ("ip", ip),
                ("port", port),
                ("ephemeral", if ephemeral { "true" } else { "false" }),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "deregister: {status}");
    }

    /// The registry's instance list as JSON.
    pub async fn instances(&self, service: &str) -> serde_json::Value {
        let body = self
            .call(
                reqwest::Method::GET,
                "/ns/instance/list",
                &[("serviceName", service), ("healthyOnly", "false")],
            )
            .await;
        serde_json::from_str(&body).unwrap()
    }

    pub async fn publish(&self, data_id: &str, content: &str) {
        self.publish_in("", data_id, content).await;
    }

    /// Publishes into namespace `tenant` ("" for the default one).
    pub async fn publish_in(&self, tenant: &str, data_id: &str, content: &str) {
        let body = self
            .call(
                reqwest::Method::POST,
                "/cs/configs",
                &[
                    ("dataId", data_id),
                    ("group", "DEFAULT_GROUP"),
                    ("tenant", tenant),
                    ("content", content),
                ],
            )
            .await;
        assert_eq!(body.trim(), "true", "publish answered {body}");
    }
}

impl Drop for Nacos {
    fn drop(&mut self) {
        self.stop();
    }
}
