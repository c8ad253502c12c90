//! The edge: every client connection of the proxy listeners passes through here before
//! Pingora parses anything. It owns the HTTP/1.1 keep-alive loop of the connection:
//!
//! 1. caps — the global and per-address connection caps ([`caps`]);
//! 2. the PROXY header, on listeners that expect one;
//! 3. per request: wait for its first byte (no buffer is held while a connection is silent
//!    or idle), read its head within `edge.header_read_timeout_ms` and `max_header_bytes`,
//!    apply the framing policy ([`framing`]) — a refused request is answered and the
//!    connection closed before anything is routed —, then hand exactly that request to
//!    Pingora through a [`FrontStream`] that stops where the request's framing says it ends;
//! 4. pipelined requests wait in the buffer and are answered in order, one at a time.
//!
//! HTTP/2 (ALPN `h2`, or h2c prior knowledge) goes to Pingora's HTTP/2 path, whose codec
//! frames strictly by itself.

pub mod caps;
pub mod chunked;
pub mod framing;
mod memory;
mod refuse;
pub mod stream;

pub use stream::FrontStream;

use crate::gateway::Gateway;
use async_trait::async_trait;
use chunked::{ChunkScanner, Scanned};
use framing::Body;
use pingora_core::apps::{HttpServerApp, ServerApp};
use pingora_core::protocols::http::ServerSession;
use pingora_core::protocols::{GetSocketDigest, Ssl, Stream, ALPN};
use pingora_core::server::ShutdownWatch;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use stream::Window;
use tokio::io::AsyncReadExt;
use tokio::time::{timeout, timeout_at, Instant};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A client that opened a connection and never sent its PROXY header is dropped after this.
const PROXY_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Edge<A> {
    inner: Arc<A>,
    gateway: Arc<Gateway>,
    caps: Arc<caps::Caps>,
    /// Local addresses whose connections start with a PROXY protocol header.
    proxy_protocol: Vec<SocketAddr>,
}

impl<A> Edge<A> {
    pub fn new(inner: A, gateway: Arc<Gateway>, proxy_protocol: Vec<SocketAddr>) -> Self {
        Edge {
            inner: Arc::new(inner),
            gateway,
            caps: Arc::default(),
            proxy_protocol,
        }
    }

    fn expects_proxy_header(&self, stream: &Stream) -> bool {
        !self.proxy_protocol.is_empty()
            && stream
                .get_socket_digest()
                .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied())
                .is_some_and(|local| self.proxy_protocol.contains(&local))
    }
}

/// Keeps `tidegate_downstream_connections_open` right however the connection ends.
struct Open;

impl Open {
    fn new() -> Open {
        let m = crate::metrics::get();
        m.connections_open.inc();
        m.connections_total.inc();
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        crate::metrics::get().connections_open.dec();
    }
}

/// RFC 9110 token characters.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn peer_ip(stream: &dyn GetSocketDigest) -> Option<IpAddr> {
    stream.get_socket_digest().and_then(|d| {
        d.peer_addr()
            .and_then(|a| a.as_inet())
            .map(std::net::SocketAddr::ip)
    })
}

#[async_trait]
impl<A> ServerApp for Edge<A>
where
    A: HttpServerApp + ServerApp + Send + Sync + 'static,
{
    /// The connection goes on in a task of the edge's own (on this same worker thread):
    /// Pingora's per-connection task keeps a future of a few KiB for as long as its app runs,
    /// the edge's task only what the connection needs while it waits.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let (edge, shutdown) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            edge.connection(stream, &shutdown).await;
        });
        None
    }

    /// Deliberately not passed on: Pingora's HTTP cleanup would close every idle keep-alive
    /// connection under its client (one sending at that instant gets an error). Instead they
    /// stay open through the grace period and each next request is answered with
    /// `Connection: close` (Pingora turns keep-alive off once shutdown starts, and so does
    /// the proxy while draining).
    async fn cleanup(&self) {}
}

impl<A> Edge<A>
where
    A: HttpServerApp + ServerApp + Send + Sync + 'static,
{
    async fn connection(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) {
        let _open = Open::new();
        memory::ensure_collector();
        let snapshot = self.gateway.snapshot();
        let edge = snapshot.config.edge.clone();
        let expects_proxy = self.expects_proxy_header(&stream);
        let mut front = FrontStream::new(stream, edge.max_header_bytes);
        if expects_proxy {
            let origin = timeout(
                PROXY_HEADER_TIMEOUT,
                Box::pin(read_proxy_header(&mut front)),
            )
            .await;
            match origin {
                Ok(Ok(Some(addr))) => front.set_peer(addr),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    log::debug!("connection refused: {e}");
                    return;
                }
                Err(_) => return,
            }
        }
        // Per address: the client's (after a PROXY header); a trusted proxy without one
        // carries many clients and is only held to the global cap.
        let ip = peer_ip(&front)
            .filter(|ip| expects_proxy || !snapshot.trusted_proxies.iter().any(|n| n.contains(ip)));
        let _slot = match self
            .caps
            .admit(ip, edge.max_connections, edge.max_connections_per_ip)
        {
            Ok(slot) => slot,
            Err(why) => {
                crate::metrics::get()
                    .connections_refused
                    .with_label_values(&[why.as_str()])
                    .inc();
                return;
            }
        };
        drop(snapshot);
        if front.selected_alpn_proto() == Some(ALPN::H2) {
            front.window = Window::Open;
            Box::pin(ServerApp::process_new(
                &self.inner,
                Box::new(front),
                shutdown,
            ))
            .await;
            return;
        }
        self.serve_http1(front, shutdown, edge).await;
    }

    /// The keep-alive loop: one request at a time, each checked before Pingora sees it.
    /// While a connection waits for its next request only the small state of this loop
    /// exists; each request's work runs in a future of its own, dropped when it is answered.
    async fn serve_http1(
        self: &Arc<Self>,
        mut front: FrontStream,
        shutdown: &ShutdownWatch,
        edge: crate::config::EdgeConfig,
    ) {
        let mut first = true;
        let (mut header_timeout, mut idle_timeout) =
            (edge.header_read_timeout_ms, edge.keepalive_timeout_ms);
        loop {
            if front.buf.is_empty() {
                front.release_idle_buffer();
                // A new connection gets the header timeout to start talking; a kept-alive
                // one the idle timeout. Nothing but this small array is held meanwhile.
                let wait = Duration::from_millis(if first { header_timeout } else { idle_timeout });
                let mut start = [0u8; 256];
                let read = timeout(wait, front.inner_mut().read(&mut start));
                let n = tokio::select! {
                    r = read => match r {
                        Ok(Ok(n)) if n > 0 => n,
                        _ => return,
                    },
                    () = self.gateway.readiness().idle_closed(), if !first => return,
                };
                front.buf.extend_from_slice(&start[..n]);
            }
            let next = Box::pin(self.serve_request(front, shutdown, first)).await;
            first = false;
            match next {
                Turn::Next(f, (header, idle)) => {
                    front = f;
                    (header_timeout, idle_timeout) = (header, idle);
                }
                Turn::Done => return,
            }
        }
    }

    /// One request from its first bytes to its answer: the head within the header timeout,
    /// the framing check, then Pingora. `first`: the connection's first request (which may
    /// be an HTTP/2 preface instead).
    async fn serve_request(
        self: &Arc<Self>,
        mut front: FrontStream,
        shutdown: &ShutdownWatch,
        first: bool,
    ) -> Turn {
        // A long-lived connection follows config changes.
        let edge = self.gateway.snapshot().config.edge.clone();
        let deadline = Instant::now() + Duration::from_millis(edge.header_read_timeout_ms);
        if first && H2_PREFACE.starts_with(&front.buf[..front.buf.len().min(H2_PREFACE.len())]) {
            // h2c with prior knowledge: the rest of the preface, then Pingora's HTTP/2.
            while front.buf.len() < H2_PREFACE.len() {
                match timeout_at(deadline, front.fill(H2_PREFACE.len())).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Turn::Done,
                }
            }
            if front.buf.starts_with(H2_PREFACE) {
                front.window = Window::Open;
                ServerApp::process_new(&self.inner, Box::new(front), shutdown).await;
                return Turn::Done;
            }
        }
        let len = loop {
            if let Some(len) = framing::head_end(&front.buf) {
                break len;
            }
            if front.buf.len() > edge.max_header_bytes {
                refuse::answer(&self.gateway, front, &refuse::too_large()).await;
                return Turn::Done;
            }
            match timeout_at(deadline, front.fill(1024)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Turn::Done,
                Err(_) => {
                    refuse::answer(&self.gateway, front, &refuse::timeout()).await;
                    return Turn::Done;
                }
            }
        };
        if len > edge.max_header_bytes {
            refuse::answer(&self.gateway, front, &refuse::too_large()).await;
            return Turn::Done;
        }
        let head = match framing::check(&front.buf, len) {
            Ok(head) => head,
            Err(refusal) => {
                refuse::answer(&self.gateway, front, &refusal).await;
                return Turn::Done;
            }
        };
        if head.body == Body::Chunked {
            // What of the chunked body is already here is checked now: a bad chunk line
            // must not reach the upstream, and so far nothing has.
            let mut scanner = ChunkScanner::default();
            if let Scanned::Invalid(why) = scanner.scan(&front.buf[len..]) {
                let refusal = framing::Refusal {
                    status: 400,
                    reason: "bad_chunk",
                    message: why.to_string(),
                };
                refuse::answer(&self.gateway, front, &refusal).await;
                return Turn::Done;
            }
        }
        let mut head_len = len;
        if let Some(rewritten) = head.rewritten {
            let rest = front.buf.split_off(len);
            front.buf.clear();
            front.buf.extend_from_slice(&rewritten);
            front.buf.unsplit(rest);
            head_len = rewritten.len();
        }
        (front.window, front.chunked_next) = match head.body {
            Body::None => (Window::Bytes(head_len as u64), false),
            Body::Length(n) => (Window::Bytes(head_len as u64 + n), false),
            Body::Chunked => (Window::Bytes(head_len as u64), true),
        };
        let mut session = ServerSession::new_http1(Box::new(front));
        if *shutdown.borrow() {
            // Stop the client from reusing a connection of a process shutting down soon.
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(edge.keepalive_timeout_ms.div_ceil(1000)));
        }
        let Some(reused) = self.inner.process_new_http(session, shutdown).await else {
            return Turn::Done;
        };
        let (stream, _) = reused.consume();
        match stream.into_any().downcast::<FrontStream>() {
            Ok(front) => Turn::Next(
                *front,
                (edge.header_read_timeout_ms, edge.keepalive_timeout_ms),
            ),
            Err(_) => Turn::Done,
        }
    }
}

/// After one request: the connection goes on (with the timeouts now configured), or is done.
enum Turn {
    Next(FrontStream, (u64, u64)),
    Done,
}

/// Reads a PROXY v1/v2 header off the front of the connection (from the edge's buffer, so
/// bytes after it stay for HTTP). `None`: a LOCAL/UNKNOWN header (the SLB's own check).
async fn read_proxy_header(front: &mut FrontStream) -> std::io::Result<Option<SocketAddr>> {
    use crate::proxy_protocol::{parse_prefix, Origin};
    loop {
        match parse_prefix(&front.buf)? {
            Some((origin, used)) => {
                let _ = front.buf.split_to(used);
                return Ok(match origin {
                    Origin::Client(addr) => Some(addr),
                    Origin::Local => None,
                });
            }
            None => {
                if front.fill(512).await? == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
            }
        }
    }
}
