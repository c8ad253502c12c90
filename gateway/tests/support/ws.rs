//! A WebSocket echo server and client helpers (tokio-tungstenite).

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct EchoServer {
    pub addr: SocketAddr,
    /// Close codes the server received from its peer (the gateway), in order.
    pub close_codes: Arc<Mutex<Vec<u16>>>,
    task: tokio::task::JoinHandle<()>,
}

impl EchoServer {
    pub async fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let close_codes = Arc::new(Mutex::new(Vec::new()));
        let codes = close_codes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let codes = codes.clone();
                tokio::spawn(async move {
                    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                        return;
                    };
                    while let Some(Ok(msg)) = ws.next().await {
                        if let Message::Close(frame) = &msg {
                            let code = frame.as_ref().map_or(1005, |f| u16::from(f.code));
                            codes.lock().await.push(code);
                            return;
                        }
                        let data = matches!(msg, Message::Text(_) | Message::Binary(_));
                        if data && ws.send(msg).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        EchoServer {
            addr,
            close_codes,
            task,
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn connect(url: &str) -> Client {
    let (ws, resp) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect");
    assert_eq!(resp.status(), 101);
    ws
}

/// Sends a text message and waits for its echo.
pub async fn echo<S>(ws: &mut WebSocketStream<S>, text: &str) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if ws.send(Message::text(text.to_string())).await.is_err() {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.as_str() == text,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return false,
        }
    }
}

/// Waits for the server's close frame and returns its code.
pub async fn close_code<S>(ws: &mut WebSocketStream<S>, limit: Duration) -> Option<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Some(frame.map_or(1005, |f| u16::from(f.code)))
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Waits (concurrently, each up to `limit`) for every tunnel's close frame: its code and when
/// it came, from `since`.
pub async fn closes(
    tunnels: Vec<Client>,
    since: std::time::Instant,
    limit: Duration,
) -> Vec<(Option<u16>, Duration)> {
    let waits = tunnels.into_iter().map(|mut t| {
        tokio::spawn(async move {
            let code = close_code(&mut t, limit).await;
            (code, since.elapsed())
        })
    });
    let mut out = Vec::new();
    for wait in waits.collect::<Vec<_>>() {
        out.push(wait.await.expect("close wait"));
    }
    out
}

/// Every tunnel to `upstream` (`what` names it) was drained over a 2 s window since
/// `since`: each closed with 1001, the last at least 1 s in (spread, not all at once), and
/// the upstream saw only 1001s.
pub async fn assert_drained_over_2s(
    tunnels: Vec<Client>,
    since: std::time::Instant,
    upstream: &EchoServer,
    what: &str,
) {
    let mut last = Duration::ZERO;
    for (code, at) in closes(tunnels, since, Duration::from_secs(8)).await {
        assert_eq!(code, Some(1001), "a tunnel to {what} was not drained");
        last = last.max(at);
    }
    assert!(
        last >= Duration::from_millis(1000),
        "all closed within {last:?}"
    );
    let seen = upstream.close_codes.lock().await;
    assert!(seen.iter().all(|c| *c == 1001), "{what} saw {seen:?}");
}

/// Every client still echoes (`what` names the moment, for the message), and the upstream
/// saw no close frame: the tunnels survived whatever happened in between.
pub async fn assert_all_alive<S>(
    clients: &mut [WebSocketStream<S>],
    upstream: &EchoServer,
    what: &str,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    for (i, c) in clients.iter_mut().enumerate() {
        assert!(
            echo(c, &format!("{what} {i}")).await,
            "tunnel {i} lost {what}"
        );
    }
    assert!(
        upstream.close_codes.lock().await.is_empty(),
        "upstream saw closes {what}"
    );
}

pub fn going_away() -> u16 {
    u16::from(CloseCode::Away)
}
