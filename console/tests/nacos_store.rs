#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The console with the shared config in a real Nacos-compatible server (rnacos): a change
//! made in the console is published to the data id, a gateway long-polling it applies it,
//! and the fleet view finds that gateway through its self-registration.

mod support;

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::{eventually, free_port, hash, Client, Proc, ADMIN_TOKEN};

struct Rnacos(Child);

impl Drop for Rnacos {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rnacos(dir: &std::path::Path) -> (Rnacos, u16) {
    let bin = std::env::var("RNACOS_BIN").unwrap_or_else(|_| {
        let home = std::env::var("CARGO_HOME")
            .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
        format!("{home}/bin/rnacos")
    });
    // The HTTP port and its +1000 (gRPC) and +2000 (console) neighbours must be free.
    let port = loop {
        let p = free_port();
        let free = |q: u16| std::net::TcpListener::bind(("127.0.0.1", q)).is_ok();
        if p < 60000 && free(p + 1000) && free(p + 2000) {
            break p;
        }
    };
    let child = Command::new(bin)
        .env("RNACOS_HTTP_PORT", port.to_string())
        .env("RNACOS_SDK_HOST", "127.0.0.1")
        .env("RNACOS_CONSOLE_HOST", "127.0.0.1")
        .env(
            "RNACOS_RAFT_NODE_ADDR",
            format!("127.0.0.1:{}", port + 1000),
        )
        .env("RNACOS_DATA_DIR", dir.join("rnacos"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rnacos is not installed; scripts/rnacos.sh install (scripts/test.sh does it)");
    let guard = Rnacos(child);
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (guard, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("rnacos did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_published_to_nacos_and_the_fleet_is_found_there() {
    let dir = std::env::temp_dir().join(format!("tidegate-console-nacos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (_nacos, nacos_port) = rnacos(&dir);
    let nacos_url = format!("http://127.0.0.1:{nacos_port}");
    let (port, admin_port, console_port) = (free_port(), free_port(), free_port());

    // A gateway whose routes come from the data id, registering itself for the console.
    let bootstrap = dir.join("gateway.toml");
    std::fs::write(
        &bootstrap,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 1\npid_file = \"{d}/gw.pid\"\nupgrade_sock = \"{d}/gw.sock\"\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken = \"{ADMIN_TOKEN}\"\n[access_log]\nenabled = false\n[nacos]\nservers = [\"{nacos_url}\"]\nregister = {{ service = \"tidegate\" }}\n[config]\nsource = \"nacos\"\ndata_id = \"fleet.toml\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let mut gw = Command::new(support::gateway_binary());
    gw.arg("-c").arg(&bootstrap);
    let gateway = Proc::spawn_public(gw, dir.join("gateway.log"), port);

    let console_conf = dir.join("console.toml");
    std::fs::write(
        &console_conf,
        format!(
            "listen = \"127.0.0.1:{console_port}\"\n[store]\nkind = \"nacos\"\nnacos = {{ servers = [\"{nacos_url}\"] }}\ndata_id = \"fleet.toml\"\nhistory_dir = \"{}\"\n[fleet]\nnacos_service = \"tidegate\"\ntoken = \"{ADMIN_TOKEN}\"\nscrape_interval_ms = 300\n[[users]]\nname = \"olga\"\npassword_hash = \"{}\"\nrole = \"operator\"\n",
            dir.join("history").display(),
            hash("olga-pw")
        ),
    )
    .unwrap();
    let mut console = Command::new(env!("CARGO_BIN_EXE_tidegate-console"));
    console.arg("-c").arg(&console_conf);
    let console = Proc::spawn_public(console, dir.join("console.log"), console_port);
    let setup_base = format!("http://127.0.0.1:{console_port}");
    let olga = Client::login_at(&setup_base, "olga", "olga-pw").await;

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let get = |path: &'static str| {
        let (http, url) = (http.clone(), format!("http://127.0.0.1:{port}{path}"));
        async move {
            match http.get(url).send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(_) => (0, String::new()),
            }
        }
    };

    // A route saved in the console is published and served by the gateway.
    let (status, body) = olga
        .call(
            "PUT",
            "/api/routes/hello",
            Some(json!({"path": "/hello", "respond": {"status": 200, "body": "from nacos"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}\n{}", console.output());
    assert!(
        eventually(Duration::from_secs(5), || async {
            get("/hello").await == (200, "from nacos".into())
        })
        .await,
        "gateway did not apply the published config:\n{}",
        gateway.output()
    );
    // The shared text holds only the fleet's sections: a gateway-own section is refused
    // before anything is published.
    let (status, body) = olga
        .call(
            "PUT",
            "/api/config",
            Some(json!({"text": "[server]\nthreads = 4\n", "message": "x"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("belongs in each gateway's own file"));
    assert_eq!(get("/hello").await.0, 200);

    // The fleet view finds the gateway through its registration and sees it up to date.
    assert!(
        eventually(Duration::from_secs(10), || async {
            let (_, fleet) = olga.call("GET", "/api/fleet", None).await;
            fleet["gateways"].as_array().is_some_and(|g| {
                g.iter().any(|g| {
                    g["admin"] == format!("http://127.0.0.1:{admin_port}")
                        && g["up"] == true
                        && g["stale"] == false
                })
            })
        })
        .await,
        "{}",
        console.output()
    );
    drop((gateway, console));
    let _ = std::fs::remove_dir_all(&dir);
}
