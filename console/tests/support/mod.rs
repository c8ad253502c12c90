#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report
//! A real gateway and a real console on loopback, for the console's API tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "console-test-admin-token";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The gateway binary of this workspace (`cargo test --workspace` builds it).
pub fn gateway_binary() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/tidegate");
    assert!(
        bin.exists(),
        "{} is missing: cargo build -p tidegate (scripts/test.sh builds it)",
        bin.display()
    );
    bin
}

pub struct Proc {
    child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn_public(cmd: Command, log: PathBuf, port: u16) -> Proc {
        Self::spawn(cmd, log, port)
    }

    fn spawn(mut cmd: Command, log: PathBuf, port: u16) -> Proc {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not listen: {}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Proc { child, log }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Setup {
    pub dir: PathBuf,
    pub gateway: Proc,
    pub console: Proc,
    pub port: u16,
    pub admin_port: u16,
    pub console_port: u16,
    pub config_path: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"console-test-salt").unwrap();
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A gateway watching `dir/tidegate.toml` (its listener sections plus `body`), and a console
/// editing that file, with an operator `olga` (password `olga-pw`) and a viewer `vic`.
pub fn start(tag: &str, body: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("tidegate-console-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (port, admin_port, console_port) = (free_port(), free_port(), free_port());
    let config_path = dir.join("tidegate.toml");
    std::fs::write(
        &config_path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 1\npid_file = \"{d}/gw.pid\"\nupgrade_sock = \"{d}/gw.sock\"\n\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"{ADMIN_TOKEN}\"\n\n[access_log]\nenabled = false\n{body}",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut gw = Command::new(gateway_binary());
    gw.arg("-c").arg(&config_path).env("RUST_LOG", "info");
    let gateway = Proc::spawn(gw, dir.join("gateway.log"), port);
    let console_conf = dir.join("console.toml");
    std::fs::write(
        &console_conf,
        format!(
            "listen = \"127.0.0.1:{console_port}\"\n[store]\nkind = \"file\"\npath = \"{}\"\nhistory_dir = \"{}\"\n[fleet]\ngateways = [{{ name = \"gw-1\", admin = \"http://127.0.0.1:{admin_port}\" }}]\ntoken = \"{ADMIN_TOKEN}\"\nscrape_interval_ms = 300\n[[users]]\nname = \"olga\"\npassword_hash = \"{}\"\nrole = \"operator\"\n[[users]]\nname = \"vic\"\npassword_hash = \"{}\"\nrole = \"viewer\"\n",
            config_path.display(),
            dir.join("history").display(),
            hash("olga-pw"),
            hash("vic-pw")
        ),
    )
    .unwrap();
    let mut console = Command::new(env!("CARGO_BIN_EXE_tidegate-console"));
    console.arg("-c").arg(&console_conf);
    let console = Proc::spawn(console, dir.join("console.log"), console_port);
    Setup {
        dir,
        gateway,
        console,
        port,
        admin_port,
        console_port,
        config_path,
    }
}

/// A logged-in client: cookies kept, CSRF token at hand.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub csrf: String,
}

impl Client {
    pub fn anonymous(setup: &Setup) -> Client {
        Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .no_proxy()
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{}", setup.console_port),
            csrf: String::new(),
        }
    }

    pub async fn login(setup: &Setup, user: &str, password: &str) -> Client {
        Self::login_at(
            &format!("http://127.0.0.1:{}", setup.console_port),
            user,
            password,
        )
        .await
    }

    pub async fn login_at(base: &str, user: &str, password: &str) -> Client {
        let mut c = Client {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .no_proxy()
                .build()
                .unwrap(),
            base: base.to_string(),
            csrf: String::new(),
        };
        let resp = c
            .http
            .post(format!("{}/api/login", c.base))
            .json(&serde_json::json!({"user": user, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login {user}");
        let body: serde_json::Value = resp.json().await.unwrap();
        c.csrf = body["csrf"].as_str().unwrap().to_string();
        c
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// GET on the gateway: status and body.
pub async fn gateway_get(setup: &Setup, path: &str) -> (u16, String) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}{path}", setup.port))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

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
