//! What happens when a request is done: its metrics and its access log line.

use super::RequestCtx;
use crate::access_log::Line;
use crate::gateway::Gateway;
use crate::metrics;
use crate::time::rfc3339_millis;
use pingora_proxy::Session;

pub fn request_done(gateway: &Gateway, session: &Session, ctx: &RequestCtx, status: u16) {
    // A tunnel's session now holds a stand-in; the real request was kept in the ctx.
    let req = ctx
        .original_request
        .as_deref()
        .unwrap_or_else(|| session.req_header());
    let route = ctx.route_name();
    let service = ctx
        .route
        .as_ref()
        .and_then(|r| r.service())
        .map_or("", |s| &s.name);
    let elapsed = ctx.started.elapsed();
    let series: &metrics::RouteSeries = match ctx.route.as_deref() {
        Some(r) => &r.series,
        None => metrics::RouteSeries::unrouted(),
    };
    series.request_done(route, service, &req.method, status, elapsed.as_secs_f64());

    let log = gateway.access_log();
    if !log.enabled() {
        return;
    }
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let upstream = ctx.upstream.map(|a| a.to_string()).unwrap_or_default();
    let line = Line::new()
        .str("time", &rfc3339_millis(std::time::SystemTime::now()))
        .str("request_id", &ctx.request_id)
        .str("client_ip", &ctx.client_ip)
        .str("method", req.method.as_str())
        .str("host", host)
        .str(
            "path",
            ctx.normalized_path.as_deref().unwrap_or(req.uri.path()),
        )
        .str("route", route)
        .str(
            "consumer",
            ctx.plugins
                .as_ref()
                .and_then(|p| p.caller.consumer.as_deref())
                .unwrap_or(""),
        )
        .str("upstream", &upstream)
        .str("tls_client", ctx.client_subject.as_deref().unwrap_or(""))
        .num("status", status)
        .num("bytes", session.body_bytes_sent())
        .num(
            "duration_ms",
            format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
        );
    let line = match ctx.plugins.as_ref() {
        Some(state) => state
            .caller
            .log
            .iter()
            .fold(line, |line, (key, value)| line.json(key, value)),
        None => line,
    }
    .finish();
    log.write(line);
}
