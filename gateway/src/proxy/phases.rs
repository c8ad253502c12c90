//! What a proxied request goes through between routing and logging, written once for both
//! ways of proxying: Pingora's proxy loop (through the `ProxyHttp` hooks in `mod.rs`) and
//! Tidegate's own exchange for bodiless HTTP/1 requests (`exchange.rs`).

use super::{classify, forwarded, respond, RequestCtx};
use crate::router::Route;
use crate::upstream::{Members, Service};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::sync::Arc;

/// Picks the endpoint for this attempt (not one already tried), counts the request against
/// it and notes it in `ctx`. Returns the members it was chosen from and its index there.
pub fn choose_endpoint(
    session: &Session,
    ctx: &mut RequestCtx,
    route: &Route,
    service: &Service,
) -> Result<(Arc<Members>, usize)> {
    let subset = route
        .subsets
        .as_ref()
        .and_then(|s| s.choose(&session.req_header().headers));
    let key = service.key_for(session, &ctx.client_ip);
    if let (Some(chosen), 0) = (&subset, ctx.tried.count()) {
        crate::metrics::count_subset(&route.name, chosen.name);
    }
    let labels = subset.as_ref().map(|c| c.labels.as_slice());
    let members = ctx.members.get_or_insert_with(|| service.members()).clone();
    let Some(index) = members.select_in(&key, &ctx.tried, labels) else {
        return Error::e_explain(ErrorType::HTTPStatus(502), "no usable endpoint left");
    };
    ctx.tried.add(index);
    let endpoint = &members.endpoints[index];
    ctx.upstream = Some(endpoint.addr);
    ctx.upstream_host.clone_from(&endpoint.host);
    ctx.hold(&endpoint.state);
    Ok((members, index))
}

/// A connection to `peer` could not be made: counted for passive ejection, and marked to be
/// tried elsewhere while the service's `retries` allow — nothing was sent, so any request
/// may go to another endpoint.
pub fn connect_failed(ctx: &RequestCtx, peer: &HttpPeer, mut e: Box<Error>) -> Box<Error> {
    let service = ctx.route.as_ref().and_then(|r| r.service());
    if let (Some(service), Some(state)) = (service, &ctx.active) {
        service.connect_failed(state, peer);
    }
    let retries = service.map_or(0, |s| s.retries);
    if ctx.tried.count() <= retries as usize {
        e.set_retry(true);
    }
    e
}

/// An upstream that fails after the request went out. Sent again, to another endpoint
/// within the service's `retries`, is only what is safe to send twice and what the client
/// has seen nothing of: an idempotent request whose body is still whole, whose endpoint
/// closed or reset the connection before answering (nginx's `proxy_next_upstream error`).
/// Not a timeout: a slow upstream may still be working on it, and sending it again
/// doubles the load on a service that is already behind. A reused connection that fails
/// is retried as Pingora does (the upstream may have closed it while idle).
pub fn upstream_failed(
    session: &Session,
    ctx: &RequestCtx,
    peer: &HttpPeer,
    e: Box<Error>,
    client_reused: bool,
) -> Box<Error> {
    let mut e = e.more_context(format!("Peer: {peer}"));
    let resendable = session.req_header().method.is_idempotent()
        && !session.as_ref().retry_buffer_truncated()
        && !ctx.upstream_answered
        && !matches!(
            e.etype(),
            ErrorType::ReadTimedout | ErrorType::WriteTimedout
        );
    let retries = ctx
        .route
        .as_ref()
        .and_then(|r| r.service())
        .map_or(0, |s| s.retries as usize);
    // A fresh connection's failure goes elsewhere: only while another endpoint is left.
    let another = ctx
        .members
        .as_ref()
        .is_some_and(|m| m.endpoints.len() > ctx.tried.count());
    e.set_retry(resendable && (client_reused || (another && ctx.tried.count() <= retries)));
    e
}

/// The request header as it goes upstream: Tidegate's forwarding headers, path rewrite and
/// the plugins' changes.
pub fn upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &mut RequestCtx,
    route: &Route,
) {
    forwarded::upstream_request(session, req, ctx, route);
    ctx.sent_upstream = Some(std::time::Instant::now());
}

/// The upstream's response header arrived: checked (a response whose framing is in doubt is
/// refused with 502), counted for passive health and the latency histogram, and offered to
/// the plugins, which may refuse it (the WAF's outbound rules) — then their reply is sent
/// instead, as nothing of this response has gone out yet.
pub fn upstream_response(
    ctx: &mut RequestCtx,
    service: &Service,
    upstream_response: &mut ResponseHeader,
) -> Result<()> {
    ctx.upstream_answered = true;
    if let Err(why) = crate::edge::framing::check_response(&upstream_response.headers) {
        log::warn!("refused a response of service {}: {why}", service.name);
        return Error::e_explain(ErrorType::HTTPStatus(502), why);
    }
    if let Some(state) = &ctx.active {
        service.responded(state, upstream_response.status);
    }
    if let Some(sent) = ctx.sent_upstream {
        service
            .upstream_duration
            .get_or_init(|| {
                let family = &crate::metrics::get().upstream_duration;
                family.with_label_values(&[&service.name])
            })
            .observe(sent.elapsed().as_secs_f64());
    }
    let refusal = ctx
        .plugin_chain()
        .and_then(|(chain, state)| chain.upstream_response(upstream_response, state).err());
    if let Some(reply) = refusal {
        let status = reply.status;
        ctx.replacement = Some(reply);
        return Error::e_explain(ErrorType::HTTPStatus(status), "response refused");
    }
    Ok(())
}

/// The response header as it goes to the client: its request id, HSTS, the plugins' changes.
pub fn downstream_response(ctx: &mut RequestCtx, resp: &mut ResponseHeader) -> Result<()> {
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    ctx.add_hsts(resp)?;
    if let Some((chain, state)) = ctx.plugin_chain() {
        chain.response(resp, state);
    }
    Ok(())
}

/// A piece of the response body, for the plugins that inspect bodies. Their refusal comes
/// after the header has gone out: all that is left is not to send the rest.
pub fn response_body(
    ctx: &mut RequestCtx,
    body: &mut Option<bytes::Bytes>,
    end_of_stream: bool,
) -> Result<()> {
    if let Some((chain, state)) = ctx.plugin_chain() {
        if chain.inspects_response_bodies() {
            if let Err(why) = chain.response_body(body, end_of_stream, state) {
                log::warn!("{why}");
                return Error::e_explain(ErrorType::HTTPStatus(502), why);
            }
        }
    }
    Ok(())
}

/// The answer to a request whose proxying failed: its status by `classify`, a plugin's
/// replacement or an error body when nothing of a response has gone out. Returns the status
/// (0: the client's connection broke, nothing to say).
pub async fn failed(session: &mut Session, ctx: &mut RequestCtx, e: &Error) -> u16 {
    let (code, message) = classify(e);
    // The connection is not reused after a proxy failure: say so in the response, or a
    // keep-alive client would send its next request into a closed socket.
    session.set_keepalive(None);
    if code > 0 && session.response_written().is_none() {
        let written = match ctx.replacement.take() {
            Some(reply) => respond::reply(session, ctx, reply).await,
            None => respond::error(session, ctx, code, message).await,
        };
        if let Err(write_error) = written {
            log::debug!("could not send error response: {write_error}");
        }
    }
    code
}
