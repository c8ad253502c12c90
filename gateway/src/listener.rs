//! The proxy's Pingora application, wrapped: every downstream connection passes through
//! here, which is where connections are counted and where draining is decided.

use async_trait::async_trait;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;
use std::sync::Arc;

pub struct Listener<A> {
    inner: Arc<A>,
}

impl<A> Listener<A> {
    pub fn new(inner: A) -> Self {
        Listener {
            inner: Arc::new(inner),
        }
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
