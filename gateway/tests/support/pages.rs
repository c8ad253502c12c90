//! An upstream that serves fixed pages by path: a status, headers and a body written in
//! pieces (20 ms apart, each flushed, so the gateway sees them as separate reads), with a
//! Content-Length or chunked. Keep-alive; unknown paths get 404. For tests of what the
//! gateway does with response bodies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub struct Page {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub pieces: Vec<Vec<u8>>,
    pub chunked: bool,
}

impl Page {
    /// A 200 of `content_type` whose body comes in `pieces`.
    pub fn new(content_type: &str, pieces: &[&[u8]], chunked: bool) -> Page {
        Page {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            pieces: pieces.iter().map(|p| p.to_vec()).collect(),
            chunked,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Page {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(&self) -> Vec<u8> {
        self.pieces.concat()
    }
}

pub struct Pages {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Pages {
    pub async fn start(pages: Vec<(&str, Page)>) -> Pages {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pages: Arc<HashMap<String, Page>> = Arc::new(
            pages
                .into_iter()
                .map(|(path, page)| (path.to_string(), page))
                .collect(),
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (pages, h) = (pages.clone(), h.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &pages, &h).await;
                });
            }
        });
        Pages { addr, hits, task }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    pages: &HashMap<String, Page>,
    hits: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        // One request head (these tests send no request bodies).
        let end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        hits.fetch_add(1, Ordering::Relaxed);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let page = pages.get(&path).cloned().unwrap_or_else(|| Page {
            status: 404,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            pieces: vec![b"no such page".to_vec()],
            chunked: false,
        });
        let mut out = format!("HTTP/1.1 {} X\r\n", page.status);
        for (name, value) in &page.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if page.chunked {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
        } else {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", page.body().len()));
        }
        stream.write_all(out.as_bytes()).await?;
        for piece in &page.pieces {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if page.chunked {
                stream
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await?;
                stream.write_all(piece).await?;
                stream.write_all(b"\r\n").await?;
            } else {
                stream.write_all(piece).await?;
            }
            stream.flush().await?;
        }
        if page.chunked {
            stream.write_all(b"0\r\n\r\n").await?;
        }
    }
}
