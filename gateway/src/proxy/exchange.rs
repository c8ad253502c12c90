//! Tidegate's own HTTP/1 exchange with the upstream, for requests without a body.
//!
//! Pingora's proxy loop runs every request as two halves joined by two channels (so a body
//! can stream both ways at once) and checks its connection out of a pool that spawns a task
//! per idle connection. A request without a body needs neither: its header goes out, the
//! response comes back and is streamed to the client, one after the other in this task, on a
//! connection from its endpoint's own idle stack (`upstream::pool`). That is most of a
//! gateway's traffic (GET, HEAD, DELETE, OPTIONS, bodiless POSTs), so this path takes it;
//! requests with a body, upgrades, HTTP/2 clients and gRPC keep Pingora's path
//! (`Proxy::dispatch` decides).
//!
//! Semantics are the proxy's, in the same words (`phases.rs`, which the `ProxyHttp` hooks
//! call too): the endpoint choice, its timeouts, connect failures and passive ejection, what
//! is sent again to another endpoint (`phases::upstream_failed`), the response checks and
//! plugin phases, and the error answers of `fail_to_proxy`. Framing on both sides is still
//! Pingora's (its HTTP/1 client session upstream, the downstream session), so nothing here
//! parses HTTP.

use super::{phases, RequestCtx};
use crate::router::Route;
use crate::upstream::Service;
use pingora_core::connectors::TransportConnector;
use pingora_core::protocols::http::v1::client::HttpSession as UpstreamSession;
use pingora_core::protocols::http::HttpTask;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;

/// Whether `dispatch` may hand this request to [`forward`]: an HTTP/1 request without a
/// body, `Expect` or `Upgrade`, in origin form, whose `Connection` header (if any) says no
/// more than keep-alive or close — anything else keeps Pingora's path, which handles and
/// checks it (a `Connection` header naming other headers, for one).
pub fn takes(session: &mut Session, service: &Service) -> bool {
    if session.is_http2() || service.protocol.grpc() || !session.is_body_empty() {
        return false;
    }
    let req = session.req_header();
    let headers = &req.headers;
    req.uri.authority().is_none()
        && !headers.contains_key(http::header::EXPECT)
        && !headers.contains_key(http::header::UPGRADE)
        && !headers.contains_key(http::header::TRANSFER_ENCODING)
        && headers.get_all(http::header::CONNECTION).iter().all(|v| {
            v.as_bytes().split(|b| *b == b',').all(|token| {
                let token = token.trim_ascii();
                token.eq_ignore_ascii_case(b"keep-alive") || token.eq_ignore_ascii_case(b"close")
            })
        })
}

/// How one attempt ended when it did not deliver the response.
enum Failed {
    /// Nothing of the response has gone to the client: another endpoint may be tried, or an
    /// error answered.
    BeforeResponse(Box<Error>),
    /// The response header (maybe some body) went out; the client's connection is ended.
    AfterResponse(Box<Error>),
}

/// Proxies the request to the route's service and answers the client, trying another
/// endpoint as the service allows. An error is what the request ended with, for Pingora's
/// error path (`fail_to_proxy`).
pub async fn forward(
    connector: &TransportConnector,
    session: &mut Session,
    ctx: &mut RequestCtx,
    route: &Route,
    service: &Service,
) -> Result<()> {
    loop {
        let outcome = match phases::choose_endpoint(session, ctx, route, service) {
            Ok((members, index)) => {
                let endpoint = &members.endpoints[index];
                let key = endpoint.reuse_key;
                attempt(connector, session, ctx, route, service, &endpoint.peer, key).await
            }
            Err(e) => Err(Failed::BeforeResponse(e)),
        };
        match outcome {
            Ok(()) => return Ok(()),
            Err(Failed::BeforeResponse(e)) if e.retry() => {
                log::debug!("route {}: trying another endpoint after: {e}", route.name);
            }
            // Pingora's error path from here, as for its own proxy loop: `fail_to_proxy`
            // answers (or, after a partial response, does not), the error is logged, and
            // the client's connection is closed — never finished as if the response were
            // whole (a chunked body would get its last chunk).
            Err(Failed::BeforeResponse(e) | Failed::AfterResponse(e)) => return Err(e),
        }
    }
}

/// One endpoint: a kept connection if it has one, else a new one. A kept connection that
/// breaks before any answer was most likely closed by the upstream as the request went out
/// (the end-of-file test at checkout narrows that window, it cannot close it); a request that
/// may be sent again then goes once more to the same endpoint on a new connection, before
/// another endpoint is tried — for a service with one endpoint there is no other.
async fn attempt(
    connector: &TransportConnector,
    session: &mut Session,
    ctx: &mut RequestCtx,
    route: &Route,
    service: &Service,
    peer: &HttpPeer,
    key: u64,
) -> Result<(), Failed> {
    let state = ctx
        .active
        .clone()
        .expect("choose_endpoint holds the endpoint");
    let target = Target {
        peer,
        state: &state,
        key,
    };
    let mut kept = state.idle.checkout(key);
    loop {
        let (stream, reused) = match kept.take() {
            Some(stream) => (stream, true),
            None => match connector.new_stream(peer).await {
                Ok(stream) => (stream, false),
                Err(e) => return Err(Failed::BeforeResponse(phases::connect_failed(ctx, peer, e))),
            },
        };
        match target
            .exchange(session, ctx, route, service, stream, reused)
            .await
        {
            Err(Failed::BeforeResponse(e)) if reused && e.retry() => {
                log::debug!(
                    "route {}: a kept connection broke ({e}); a new one",
                    route.name
                );
            }
            outcome => return outcome,
        }
    }
}

/// The endpoint of an attempt: its peer settings and its idle stack.
struct Target<'a> {
    peer: &'a HttpPeer,
    state: &'a crate::upstream::EndpointState,
    key: u64,
}

impl Target<'_> {
    /// The request and its response over `stream`.
    async fn exchange(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
        service: &Service,
        stream: pingora_core::protocols::Stream,
        reused: bool,
    ) -> Result<(), Failed> {
        let (peer, state, key) = (self.peer, self.state, self.key);
        let mut upstream = UpstreamSession::new_with_options(stream, peer);
        upstream.read_timeout = peer.options.read_timeout;
        upstream.write_timeout = peer.options.write_timeout;

        let req = upstream_header(session, ctx, route);
        let sent = async {
            upstream.write_request_header(req).await?;
            upstream.finish_body().await
        };
        if let Err(e) = sent.await {
            let e = phases::upstream_failed(session, ctx, peer, e.into_up(), reused);
            return Err(Failed::BeforeResponse(e));
        }

        let mut header = loop {
            let read = tokio::select! {
                biased;
                read = upstream.read_response_task() => read,
                gone = client_gone(session) => return Err(Failed::BeforeResponse(gone)),
            };
            match read {
                Ok(HttpTask::Header(header, _)) if header.status == 101 => {
                    let e = Error::explain(ErrorType::InvalidHTTPHeader, "101 to a plain request");
                    return Err(Failed::BeforeResponse(e.into_up()));
                }
                // 103 Early Hints and the like go on to the client as they came.
                Ok(HttpTask::Header(header, _)) if header.status.is_informational() => {
                    if let Err(e) = session.write_response_header(header, false).await {
                        return Err(Failed::AfterResponse(e));
                    }
                }
                Ok(HttpTask::Header(header, _)) => break header,
                Ok(_) => {
                    let e = Error::explain(ErrorType::InvalidHTTPHeader, "no response header");
                    return Err(Failed::BeforeResponse(e.into_up()));
                }
                Err(e) => {
                    let e = phases::upstream_failed(session, ctx, peer, e.into_up(), reused);
                    return Err(Failed::BeforeResponse(e));
                }
            }
        };
        // From here on nothing is sent again (`upstream_answered`).
        let mut end = upstream.is_body_done();
        phases::upstream_response(ctx, service, &mut header)
            .and_then(|()| chunk_unframed(session, &mut header, end))
            .and_then(|()| phases::downstream_response(ctx, &mut header))
            .map_err(Failed::BeforeResponse)?;
        session
            .write_response_header(header, end)
            .await
            .map_err(Failed::AfterResponse)?;

        if end {
            session.finish_body().await.map_err(Failed::AfterResponse)?;
        }
        while !end {
            let read = tokio::select! {
                biased;
                read = upstream.read_body_bytes() => read,
                gone = client_gone(session) => return Err(Failed::AfterResponse(gone)),
            };
            let mut body = read.map_err(|e| Failed::AfterResponse(e.into_up()))?;
            end = body.is_none() || upstream.is_body_done();
            phases::response_body(ctx, &mut body, end).map_err(Failed::AfterResponse)?;
            session
                .write_response_body(body, end)
                .await
                .map_err(Failed::AfterResponse)?;
        }

        upstream.respect_keepalive();
        if let Some(stream) = upstream.reuse().await {
            let idle = peer.options.idle_timeout.unwrap_or_default();
            state.idle.release(stream, key, idle);
        }
        Ok(())
    }
}

/// Resolves when the client closes its connection while the upstream is still answering
/// (never for a client that only sends its next request early): the exchange is then given
/// up and the upstream connection closed, as Pingora's proxy and nginx do — a long poll
/// whose client left must not hold an upstream connection until it answers.
async fn client_gone(session: &mut Session) -> Box<Error> {
    match session.as_downstream_mut().read_body_or_idle(true).await {
        Err(e) => e.into_down(),
        // Bytes of a next request (the edge holds them back, so this is not expected):
        // nothing to give up for.
        Ok(_) => std::future::pending().await,
    }
}

/// The client's request header for the upstream: HTTP/1.1, without the hop-by-hop fields
/// (`takes` let through only a `Connection` of keep-alive or close), then what
/// `phases::upstream_request` changes.
fn upstream_header(session: &Session, ctx: &mut RequestCtx, route: &Route) -> Box<RequestHeader> {
    let mut req = Box::new(session.req_header().clone());
    req.set_version(http::Version::HTTP_11);
    for name in HOP_BY_HOP {
        req.remove_header(name);
    }
    phases::upstream_request(session, &mut req, ctx, route);
    req
}

/// RFC 9110 §7.6.1's connection-specific fields and their common relatives, as Pingora's
/// proxy strips them.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
];

/// A response with neither length nor chunking (an HTTP/1.0 upstream's, ended by closing)
/// goes to the client chunked, so the client's connection can stay open — as Pingora's
/// proxy does.
fn chunk_unframed(session: &Session, header: &mut ResponseHeader, end: bool) -> Result<()> {
    let no_body = session.req_header().method == http::Method::HEAD
        || matches!(header.status.as_u16(), 204 | 304);
    if !no_body
        && !end
        && !header.headers.contains_key(http::header::TRANSFER_ENCODING)
        && !header.headers.contains_key(http::header::CONTENT_LENGTH)
    {
        header.set_version(http::Version::HTTP_11);
        header.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    Ok(())
}
