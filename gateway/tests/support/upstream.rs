//! A small HTTP/1.1 upstream that answers every request with JSON describing it:
//! `{"server": NAME, "method", "target", "headers": {...}}`. `/slow?ms=N` waits N ms first;
//! `/status/NNN` answers with that status. Keep-alive is supported.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Self::start_on("127.0.0.1:0", name).await
    }

    pub async fn start_on(addr: &str, name: &str) -> Upstream {
        Self::try_start_on(addr, name).await.unwrap()
    }

    /// As [`Upstream::start_on`], or the bind error (a port taken between a probe and this).
    pub async fn try_start_on(addr: &str, name: &str) -> std::io::Result<Upstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let (n, h) = (name.to_string(), hits.clone());
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let conns = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (n, h) = (n.clone(), h.clone());
                let conn = tokio::spawn(async move {
                    let _ = serve(stream, &n, &h).await;
                });
                conns.lock().unwrap().push(conn.abort_handle());
            }
        });
        Ok(Upstream {
            addr,
            name: name.to_string(),
            hits,
            task,
            connections,
        })
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }

    /// Dies like a crashed server: stops listening and drops every open connection.
    pub fn stop(&self) {
        self.task.abort();
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(mut stream: TcpStream, name: &str, hits: &AtomicUsize) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    loop {
        // Read one request head.
        let (head_len, method, target, headers) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut hs);
            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                let headers: BTreeMap<String, String> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                break (
                    len,
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("").to_string(),
                    headers,
                );
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let body_len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_len + body_len {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_len + body_len);
        hits.fetch_add(1, Ordering::Relaxed);

        let mut status = 200u16;
        if let Some(ms) = target
            .strip_prefix("/slow?ms=")
            .and_then(|v| v.parse::<u64>().ok())
        {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(code) = target
            .strip_prefix("/status/")
            .and_then(|v| v.parse::<u16>().ok())
        {
            status = code;
        }
        let body = serde_json::json!({
            "server": name,
            "method": method,
            "target": target,
            "headers": headers,
        })
        .to_string();
        let close = headers
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-upstream: {name}\r\n{}\r\n",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        stream.write_all((head + &body).as_bytes()).await?;
        if close {
            return Ok(());
        }
    }
}
