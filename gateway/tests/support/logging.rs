//! An upstream that records every request it receives — method, target, headers and the
//! whole body (length-framed or chunked) — so a test can tell exactly what reached it, and
//! answers each with `{"n": <its sequence number>, "target": …}`. Targets under `/bad/`
//! answer with deliberately bad framing, for the gateway's response checks.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct LoggingUpstream {
    pub addr: std::net::SocketAddr,
    pub seen: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LoggingUpstream {
    pub async fn start() -> LoggingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &log).await;
                });
            }
        });
        LoggingUpstream { addr, seen, task }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

impl Drop for LoggingUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// Reads a chunked body from `buf` (reading more as needed); returns the data and the bytes
/// the framing took.
async fn chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    start: usize,
) -> std::io::Result<Option<(Vec<u8>, usize)>> {
    let mut pos = start;
    let mut data = Vec::new();
    loop {
        let Some(eol) = buf[pos..].windows(2).position(|w| w == b"\r\n") else {
            if !fill(stream, buf).await? {
                return Ok(None);
            }
            continue;
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).unwrap_or("");
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(usize::MAX);
        if size == usize::MAX {
            return Ok(None);
        }
        let data_start = pos + eol + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                if let Some(end) = buf[data_start..].windows(4).position(|w| w == b"\r\n\r\n") {
                    return Ok(Some((data, data_start + end + 4)));
                }
                if buf[data_start..].starts_with(b"\r\n") {
                    return Ok(Some((data, data_start + 2)));
                }
                if !fill(stream, buf).await? {
                    return Ok(None);
                }
            }
        }
        while buf.len() < data_start + size + 2 {
            if !fill(stream, buf).await? {
                return Ok(None);
            }
        }
        data.extend_from_slice(&buf[data_start..data_start + size]);
        pos = data_start + size + 2;
    }
}

async fn serve(mut stream: TcpStream, log: &Mutex<Vec<Recorded>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let (len, method, target, headers) = loop {
            let mut hs = [httparse::EMPTY_HEADER; 128];
            let mut req = httparse::Request::new(&mut hs);
            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
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
            if !fill(&mut stream, &mut buf).await? {
                return Ok(());
            }
        };
        let find = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let (body, used) = if find("transfer-encoding").is_some() {
            match chunked(&mut stream, &mut buf, len).await? {
                Some(found) => found,
                None => return Ok(()),
            }
        } else {
            let n: usize = find("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < len + n {
                if !fill(&mut stream, &mut buf).await? {
                    return Ok(());
                }
            }
            (buf[len..len + n].to_vec(), len + n)
        };
        buf.drain(..used);
        let n = {
            let mut seen = log.lock().unwrap();
            seen.push(Recorded {
                method,
                target: target.clone(),
                headers,
                body,
            });
            seen.len()
        };
        let body = serde_json::json!({ "n": n, "target": target }).to_string();
        let framing = match target.as_str() {
            "/bad/te-gzip" => "transfer-encoding: gzip\r\n".to_string(),
            "/bad/te-twice" => {
                "transfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n".to_string()
            }
            "/bad/cl-differ" => format!(
                "content-length: {}\r\ncontent-length: {}\r\n",
                body.len(),
                body.len() + 1
            ),
            _ => format!("content-length: {}\r\n", body.len()),
        };
        let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        if target.starts_with("/bad/") {
            return Ok(());
        }
    }
}
