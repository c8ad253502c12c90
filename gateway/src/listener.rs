//! The proxy's Pingora application, wrapped: every downstream connection passes through
//! here, which is where connections are counted and where draining is decided.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;

pub struct Listener<A> {
    inner: Arc<A>,
    /// Local addresses whose connections start with a PROXY protocol header.
    proxy_protocol: Vec<std::net::SocketAddr>,
}

/// A client that opened a connection and never sent its PROXY header is dropped after this.
const PROXY_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl<A> Listener<A> {
    pub fn new(inner: A, proxy_protocol: Vec<std::net::SocketAddr>) -> Self {
        Listener {
            inner: Arc::new(inner),
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

/// Decrements the open-connections gauge however the connection ends.
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

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Listener<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let _open = Open::new();
        let stream = if self.expects_proxy_header(&stream) {
            match tokio::time::timeout(PROXY_HEADER_TIMEOUT, crate::proxy_protocol::accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    log::debug!("connection refused: {e}");
                    return None;
                }
                Err(_) => return None,
            }
        } else {
            stream
        };
        // The inner app runs the whole keep-alive loop of this connection.
        self.inner.process_new(stream, shutdown).await
    }

    /// Deliberately not passed on: Pingora's HTTP cleanup would close every idle keep-alive
    /// connection under its client (one sending at that instant gets an error). Instead they
    /// stay open through the grace period and each next request is answered with
    /// `Connection: close` (Pingora turns keep-alive off once shutdown starts, and so does
    /// the proxy while draining).
    async fn cleanup(&self) {}
}
