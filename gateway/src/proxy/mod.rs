//! The request path: Pingora's `ProxyHttp` phases, top to bottom.
//!
//! `request_filter` is four named steps — identify the client, route, run the route's
//! plugins, dispatch — each of which may answer the request itself (an error, a plugin's
//! refusal, a direct response, a redirect, a WebSocket tunnel, or Tidegate's own exchange
//! with the upstream for a bodiless HTTP/1 request); otherwise Pingora proxies:
//! `upstream_peer` picks the endpoint, the filters rewrite headers, `logging` records the
//! outcome. What a proxied request goes through is in `phases.rs`, shared by both ways.

mod body;
mod ctx;
mod exchange;
pub mod forwarded;
mod grpc;
mod observe;
mod phases;
mod request_id;
pub mod respond;
mod websocket;

pub use ctx::RequestCtx;
pub use request_id::generate as new_request_id;

use crate::gateway::Gateway;
use crate::router::{normalize_host, normalize_path, PathPolicy, Route, RouteAction};
use crate::snapshot::Snapshot;
use async_trait::async_trait;
use pingora_core::connectors::TransportConnector;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use std::sync::Arc;

pub struct Proxy {
    gateway: Arc<Gateway>,
    /// Makes the upstream connections of Tidegate's own exchange (`exchange.rs`); Pingora's
    /// proxy loop has its own.
    connector: TransportConnector,
}

impl Proxy {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Proxy {
            gateway,
            connector: TransportConnector::new(None),
        }
    }
}

/// What a step decided: go on to the next, or the request has been answered.
enum Step<T = ()> {
    Next(T),
    Answered,
}

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    /// Only the gRPC-Web bridge (idle until a gRPC-Web request turns it on); Pingora's
    /// default compression module is off anyway.
    fn init_downstream_modules(&self, modules: &mut pingora_core::modules::http::HttpModules) {
        modules.add_module(Box::new(pingora_core::modules::http::grpc_web::GrpcWeb));
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        let grpc_web = session
            .req_header()
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc-web"));
        if grpc_web {
            // A browser's gRPC-Web call goes to a gRPC upstream as gRPC, and its answer
            // (trailers included) comes back as gRPC-Web.
            if let Some(bridge) = session
                .downstream_modules_ctx
                .get_mut::<pingora_core::modules::http::grpc_web::GrpcWebBridge>()
            {
                bridge.init();
            }
        }
        Ok(())
    }

    /// `Ok(true)`: answered here; `Ok(false)`: proxy to the route's service.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let snapshot = self.gateway.snapshot();
        self.identify_client(session, ctx, &snapshot);
        let Step::Next(route) = find_route(session, ctx, snapshot).await? else {
            return Ok(true);
        };
        if let Step::Answered = run_plugins(session, ctx, &route).await? {
            return Ok(true);
        }
        self.dispatch(session, ctx, &route).await
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx.route.clone().expect("proxied requests have a route");
        let service = route
            .service()
            .cloned()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no service for route"))?;
        let (members, index) = phases::choose_endpoint(session, ctx, &route, &service)?;
        let mut peer = Box::new(members.endpoints[index].peer.clone());
        if service.protocol.grpc() {
            // The call's deadline bounds the wait for the upstream (DEADLINE_EXCEEDED after).
            if let Some(deadline) = grpc::timeout(session.req_header()) {
                let read = peer
                    .options
                    .read_timeout
                    .map_or(deadline, |r| r.min(deadline));
                peer.options.read_timeout = Some(read);
            }
        }
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        phases::connect_failed(ctx, peer, e)
    }

    /// See `phases::upstream_failed`.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        phases::upstream_failed(session, ctx, peer, e, client_reused)
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(route) = ctx.route.clone() {
            phases::upstream_request(session, upstream_request, ctx, &route);
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let Some(route) = ctx.route.clone() else {
            return Ok(());
        };
        match route.service() {
            Some(service) => phases::upstream_response(ctx, service, upstream_response),
            None => Ok(()),
        }
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        phases::response_body(ctx, body, end_of_stream)?;
        Ok(None)
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        phases::downstream_response(ctx, upstream_response)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        FailToProxy {
            error_code: phases::failed(session, ctx, e).await,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        ctx.release();
        let status = if ctx.tunnel || ctx.status != 0 {
            ctx.status
        } else {
            session
                .response_written()
                .map_or_else(|| e.map_or(0, |e| classify(e).0), |r| r.status.as_u16())
        };
        if let Some((chain, state)) = ctx.plugin_chain() {
            chain.log(status, state);
        }
        observe::request_done(&self.gateway, session, ctx, status);
    }
}

impl Proxy {
    /// Step 1: who is calling (after trusted proxies), and the request id.
    fn identify_client(&self, session: &mut Session, ctx: &mut RequestCtx, snapshot: &Snapshot) {
        ctx.request_id = request_id::from_client_or_new(
            session
                .req_header()
                .headers
                .get("x-request-id")
                .map(http::HeaderValue::as_bytes),
        );
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(std::net::SocketAddr::ip);
        let (client, trusted) = forwarded::client_ip(
            peer,
            &session.req_header().headers,
            &snapshot.trusted_proxies,
        );
        ctx.peer_ip = peer.map_or_else(String::new, |p| p.to_string());
        ctx.peer_trusted = trusted;
        ctx.client_ip = match client {
            Some(c) if Some(c) != peer => c.to_string(),
            _ => ctx.peer_ip.clone(),
        };
        if let Some(ssl) = session.digest().and_then(|d| d.ssl_digest.as_ref()) {
            ctx.tls = true;
            if let Some(info) = ssl.extension.get::<crate::tls::TlsInfo>() {
                ctx.client_subject.clone_from(&info.client_subject);
            }
        }
        if self.gateway.readiness().is_closing_connections() {
            // Finish this request, then let the connection go (see the upgrade notes).
            session.set_keepalive(None);
        }
    }

    /// Step 4: the route's action — answer directly, redirect, open a tunnel, or proxy.
    async fn dispatch(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Arc<Route>,
    ) -> Result<bool> {
        if route.https_redirect && !ctx.tls {
            let location = https_location(session, ctx);
            respond::redirect(session, ctx, &location, 308).await?;
            return Ok(true);
        }
        match &route.action {
            RouteAction::Respond(response) => {
                respond::direct(session, ctx, response).await?;
                Ok(true)
            }
            RouteAction::Redirect { location, status } => {
                respond::redirect(session, ctx, location, *status).await?;
                Ok(true)
            }
            RouteAction::Proxy(service) => {
                if websocket::is_upgrade_request(session) {
                    ctx.tunnel = true;
                    websocket::open(self.gateway.tunnels(), session, ctx, route, service).await?;
                    return Ok(true);
                }
                if exchange::takes(session, service) {
                    exchange::forward(&self.connector, session, ctx, route, service).await?;
                    return Ok(true);
                }
                Ok(false)
            }
        }
    }
}

/// Where a plain-HTTP request goes with `https_redirect`: the same host (on the TLS
/// listener's port when there is one and it is not 443) and target.
fn https_location(session: &Session, ctx: &RequestCtx) -> http::HeaderValue {
    let req = session.req_header();
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("");
    let host = normalize_host(host);
    let port = ctx
        .snapshot
        .as_ref()
        .and_then(|s| s.config.server.tls_listen.first())
        .and_then(|a| a.get_ref().parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
        .filter(|p| *p != 443)
        .map_or(String::new(), |p| format!(":{p}"));
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    http::HeaderValue::from_str(&format!("https://{host}{port}{target}"))
        .unwrap_or_else(|_| http::HeaderValue::from_static("https://"))
}

/// Step 2: normalise the path and find the route; the snapshot is kept for the request.
async fn find_route(
    session: &mut Session,
    ctx: &mut RequestCtx,
    snapshot: Arc<Snapshot>,
) -> Result<Step<Arc<Route>>> {
    let req = session.req_header();
    // (The edge turned an absolute-form target into origin form with its authority as Host.)
    let raw_host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("");
    let host = normalize_host(raw_host);
    let edge = &snapshot.config.edge;
    let policy = PathPolicy {
        merge_slashes: edge.merge_slashes,
        escaped_slashes: edge.escaped_slashes,
    };
    // `OPTIONS *` is about the server as a whole: routed as `/`, forwarded as `*`.
    let raw_path = match req.uri.path() {
        "*" => "/",
        p => p,
    };
    let path = match normalize_path(raw_path, policy) {
        Ok(path) => path,
        Err(e) => {
            // The path is not what the framing of the connection is in doubt about; the
            // connection stays usable.
            respond::error(session, ctx, 400, e.message()).await?;
            return Ok(Step::Answered);
        }
    };
    let found = snapshot
        .router
        .lookup(&host, &path, req)
        .map(|m| (m.route.clone(), m.prefix_len));
    let Some((route, prefix_len)) = found else {
        respond::error(session, ctx, 404, "no route matches this request").await?;
        return Ok(Step::Answered);
    };
    if let std::borrow::Cow::Owned(p) = path {
        ctx.normalized_path = Some(p);
    }
    ctx.prefix_len = prefix_len;
    ctx.route = Some(route.clone());
    ctx.snapshot = Some(snapshot);
    Ok(Step::Next(route))
}

/// Step 3: the route's plugin chain — headers first, then (for plugins that must see it)
/// the body, all before anything is sent upstream. A refusal answers the request.
async fn run_plugins(session: &mut Session, ctx: &mut RequestCtx, route: &Route) -> Result<Step> {
    let chain = &route.plugins;
    if chain.is_empty() {
        return Ok(Step::Next(()));
    }
    let mut state = chain.start(route.name.clone(), ctx.client_ip.clone());
    state.caller.client_subject.clone_from(&ctx.client_subject);
    let mut verdict = chain.request(session.req_header(), &mut state).await;
    if verdict.is_ok() && chain.body_limit() > 0 {
        let body = body::read(session, chain.body_limit()).await?;
        verdict = chain
            .request_body(session.req_header(), body.as_deref(), &mut state)
            .await;
        if verdict.is_err() {
            // The client may still be sending; do not reuse the connection.
            session.set_keepalive(None);
        }
    }
    ctx.plugins = Some(state);
    match verdict {
        Ok(()) => Ok(Step::Next(())),
        Err(reply) => {
            respond::reply(session, ctx, reply).await?;
            Ok(Step::Answered)
        }
    }
}

/// The status and message for a failed request. Connect failures (after retries) are 502,
/// upstream timeouts 504, broken client connections get nothing.
fn classify(e: &Error) -> (u16, &'static str) {
    use ErrorType::*;
    match e.etype() {
        HTTPStatus(code) => (*code, "request failed"),
        ConnectTimedout | ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
        | TLSHandshakeFailure | TLSHandshakeTimedout | SocketError | BindError => {
            (502, "no upstream endpoint could be reached")
        }
        ReadTimedout | WriteTimedout if *e.esource() == ErrorSource::Upstream => {
            (504, "upstream did not answer in time")
        }
        _ => match e.esource() {
            ErrorSource::Upstream => (502, "upstream failed"),
            ErrorSource::Downstream => match e.etype() {
                WriteError | ReadError | ConnectionClosed | ReadTimedout | WriteTimedout => (0, ""),
                _ => (400, "malformed request"),
            },
            ErrorSource::Internal | ErrorSource::Unset => (500, "internal error"),
        },
    }
}
