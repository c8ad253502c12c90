//! The request as it goes upstream: forwarding headers, request id and path rewrite.

use super::RequestCtx;
use crate::router::Route;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Applies everything Tidegate changes on the way upstream. Shared by plain requests and
/// WebSocket handshakes so both are forwarded the same way.
pub fn prepare_upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    route: &Route,
) {
    let xff = match req
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prior) if !prior.is_empty() => format!("{prior}, {}", ctx.client_ip),
        _ => ctx.client_ip.clone(),
    };
    let _ = req.insert_header("x-forwarded-for", xff);
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let _ = req.insert_header("x-forwarded-proto", if tls { "https" } else { "http" });
    if let Some(host) = req.headers.get(http::header::HOST).cloned() {
        let _ = req.insert_header("x-forwarded-host", host);
    }
    let _ = req.insert_header("x-request-id", ctx.request_id.as_str());

    if route.strip_prefix || ctx.normalized_path.is_some() {
        let path = ctx.normalized_path.as_deref().unwrap_or(req.uri.path());
        let path = if route.strip_prefix {
            strip(path, ctx.prefix_len)
        } else {
            path.to_string()
        };
        let uri = match req.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(uri) = uri.parse() {
            req.set_uri(uri);
        }
    }
}

/// `/api/users` with prefix `/api/` (or `/api`) → `/users`; an exhausted path becomes `/`.
fn strip(path: &str, prefix_len: usize) -> String {
    let rest = path.get(prefix_len..).unwrap_or("");
    if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_prefixes() {
        assert_eq!(super::strip("/api/users", 5), "/users");
        assert_eq!(super::strip("/api/users", 4), "/users");
        assert_eq!(super::strip("/api", 4), "/");
        assert_eq!(super::strip("/api/", 5), "/");
    }
}
