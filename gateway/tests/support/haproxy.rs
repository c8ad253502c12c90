//! A real haproxy (from apt) in front of gateways, standing in for the cloud SLB: pooled
//! keep-alive connections to the gateways (`http-reuse always`), an HTTP health check on
//! each gateway's admin `/readyz` every 500 ms (fall 2, rise 2), connect failures retried on
//! another server. Its stats socket tells whether it ever marked a gateway down.

use super::{free_port, TempDir};
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Haproxy {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

/// A server behind haproxy: its proxy port and its admin port (for the health check).
pub struct Backend {
    pub name: &'static str,
    pub port: u16,
    pub admin_port: u16,
}

impl Haproxy {
    pub fn start(backends: &[Backend]) -> Haproxy {
        let dir = TempDir::new("haproxy");
        let port = free_port();
        let servers: String = backends
            .iter()
            .map(|b| {
                format!(
                    "  server {} 127.0.0.1:{} check port {}\n",
                    b.name, b.port, b.admin_port
                )
            })
            .collect();
        let config = format!(
            r"global
  stats socket {dir}/stats.sock mode 600 level admin
  maxconn 4096
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout tunnel 1h
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
frontend fe
  bind 127.0.0.1:{port}
  default_backend gateways
backend gateways
  balance roundrobin
  http-reuse always
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500 fall 2 rise 2
{servers}",
            dir = dir.0.display()
        );
        let path = dir.path("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let bin = which("haproxy");
        let check = Command::new(&bin)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy refused its config: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        let log = std::fs::File::create(dir.path("haproxy.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        let mut h = Haproxy { child, port, dir };
        h.wait_all_up(backends.len());
        h
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `show stat` on the stats socket: one map per line of the CSV.
    fn stat(&self) -> Vec<std::collections::HashMap<String, String>> {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(self.dir.path("stats.sock")) else {
            return Vec::new();
        };
        let _ = s.write_all(b"show stat\n");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return Vec::new();
        };
        let names: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                names
                    .iter()
                    .zip(l.split(','))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    fn server(&self, name: &str) -> Option<std::collections::HashMap<String, String>> {
        self.stat()
            .into_iter()
            .find(|row| row["pxname"] == "gateways" && row["svname"] == name)
    }

    /// `UP`, `DOWN`, `UP 1/2` (going down), …
    pub fn status(&self, name: &str) -> String {
        self.server(name)
            .map(|r| r["status"].clone())
            .unwrap_or_default()
    }

    /// How many times haproxy has marked the server down since it started.
    pub fn times_marked_down(&self, name: &str) -> u64 {
        self.server(name)
            .and_then(|r| r["chkdown"].parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `name`'s status is `want`, returning how long that took.
    pub fn wait_status(&self, name: &str, want: &str, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.status(name) == want {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    fn wait_all_up(&mut self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("haproxy exited ({status}): {}", self.log());
            }
            let up = self
                .stat()
                .iter()
                .filter(|r| r["pxname"] == "gateways" && r["svname"] != "BACKEND")
                .filter(|r| r["status"] == "UP")
                .count();
            if up == count {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "haproxy never saw every gateway up: {:?}\n{}",
            self.stat(),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} is not installed; scripts/test.sh installs it (apt-get install {name})"
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}
