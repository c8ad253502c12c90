//! What one request carries through the Pingora phases.

use crate::router::Route;
use crate::snapshot::Snapshot;
use crate::upstream::{EndpointState, Members, Tried};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub struct RequestCtx {
    pub started: Instant,
    /// The snapshot this request was routed with; kept to the end so that a reload in the
    /// middle changes nothing for it.
    pub snapshot: Option<Arc<Snapshot>>,
    pub route: Option<Arc<Route>>,
    /// Path bytes matched by a prefix route (for `strip_prefix`).
    pub prefix_len: usize,
    /// Set when the client's path had dot segments or double slashes: what was routed.
    pub normalized_path: Option<String>,
    pub request_id: String,
    /// The client as logs, limits and IP rules see it (see `forwarded::client_ip`).
    pub client_ip: String,
    /// The connection's peer (after any PROXY header) and whether it is a trusted proxy.
    pub peer_ip: String,
    pub peer_trusted: bool,
    /// The request came over TLS.
    pub tls: bool,
    /// The verified client certificate's subject (mTLS).
    pub client_subject: Option<String>,
    pub tried: Tried,
    /// The endpoints this request chooses from, fixed at its first attempt so that `tried`
    /// indices keep their meaning if discovery swaps the service's endpoints meanwhile.
    pub members: Option<Arc<Members>>,
    pub upstream: Option<SocketAddr>,
    /// The Host the chosen endpoint must get instead of the client's (a TLS endpoint by
    /// DNS name).
    pub upstream_host: Option<http::HeaderValue>,
    /// The endpoint this request is counted against (least_conn), released at the end.
    pub active: Option<Arc<EndpointState>>,
    /// Status of a response the gateway wrote itself (errors, direct responses, 101).
    pub status: u16,
    pub tunnel: bool,
    /// When the request went upstream (for the upstream latency histogram).
    pub sent_upstream: Option<Instant>,
    /// An upstream's response header has arrived (from then on nothing is retried).
    pub upstream_answered: bool,
    /// What the route's plugins share for this request (None when the route has none).
    pub plugins: Option<tidegate_plugins::RequestState>,
    /// For a tunnel: the client's request, kept because the session no longer holds it.
    pub original_request: Option<Box<pingora_http::RequestHeader>>,
    /// A plugin's answer in place of the upstream's response (sent by `fail_to_proxy`).
    pub replacement: Option<tidegate_plugins::Reply>,
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx {
            started: Instant::now(),
            snapshot: None,
            route: None,
            prefix_len: 0,
            normalized_path: None,
            request_id: String::new(),
            client_ip: String::new(),
            peer_ip: String::new(),
            peer_trusted: false,
            tls: false,
            client_subject: None,
            tried: Tried::default(),
            members: None,
            upstream: None,
            upstream_host: None,
            active: None,
            status: 0,
            tunnel: false,
            sent_upstream: None,
            upstream_answered: false,
            original_request: None,
            plugins: None,
            replacement: None,
        }
    }
}

impl RequestCtx {
    /// Counts this request against `state` instead of whatever endpoint it had before.
    pub fn hold(&mut self, state: &Arc<EndpointState>) {
        self.release();
        state.active.fetch_add(1, Ordering::Relaxed);
        self.active = Some(state.clone());
    }

    pub fn release(&mut self) {
        if let Some(state) = self.active.take() {
            state.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The route's plugin chain and what its plugins keep for this request, when it has
    /// plugins (every plugin phase after the request's goes through this).
    pub fn plugin_chain(
        &mut self,
    ) -> Option<(
        &tidegate_plugins::Chain,
        &mut tidegate_plugins::RequestState,
    )> {
        match (self.route.as_deref(), self.plugins.as_mut()) {
            (Some(route), Some(state)) => Some((&route.plugins, state)),
            _ => None,
        }
    }

    pub fn route_name(&self) -> &str {
        self.route.as_deref().map_or("", |r| &r.name)
    }

    /// The route's `hsts` header, on TLS responses only (RFC 6797 §7.2: ignored over plain
    /// HTTP), whether the answer came from an upstream or from the gateway itself.
    pub fn add_hsts(&self, resp: &mut pingora_http::ResponseHeader) -> pingora_core::Result<()> {
        if let (Some(hsts), true) = (self.route.as_ref().and_then(|r| r.hsts.as_ref()), self.tls) {
            resp.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts.clone())?;
        }
        Ok(())
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        self.release();
    }
}
