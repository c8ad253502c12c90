//! The request as it goes upstream: forwarding headers, request id and path rewrite.

use super::RequestCtx;
use crate::router::Route;
use pingora_http::RequestHeader;
use pingora_proxy::Session;

/// Everything Tidegate changes on the way upstream, then the plugins' own changes. Shared
/// by plain requests and WebSocket handshakes so both are forwarded the same way.
pub fn upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &mut RequestCtx,
    route: &Route,
) {
    prepare_upstream_request(session, req, ctx, route);
    if let (Some(state), Some(snapshot)) = (ctx.plugins.as_mut(), ctx.snapshot.as_ref()) {
        let identity = &snapshot.identity;
        if let Some(consumer) = &state.caller.consumer {
            let _ = req.insert_header(identity.consumer.clone(), consumer.as_str());
        }
        if let Some(tenant) = &state.caller.tenant {
            let _ = req.insert_header(identity.tenant.clone(), tenant.as_str());
        }
        route.plugins.upstream_request(req, state);
    }
}

/// The gateway's own changes: forwarding headers, request id, path rewrite.
pub fn prepare_upstream_request(
    session: &Session,
    req: &mut RequestHeader,
    ctx: &RequestCtx,
    route: &Route,
) {
    // A client-sent X-Forwarded-For is kept only when it came through a trusted proxy;
    // otherwise anyone could claim any address.
    let prior = req
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let xff = match prior {
        Some(prior) if ctx.peer_trusted && !prior.is_empty() => {
            format!("{prior}, {}", ctx.peer_ip)
        }
        _ => ctx.peer_ip.clone(),
    };
    let _ = req.insert_header("x-forwarded-for", xff);
    let tls = session.digest().is_some_and(|d| d.ssl_digest.is_some());
    let _ = req.insert_header("x-forwarded-proto", if tls { "https" } else { "http" });
    if let Some(host) = req.headers.get(http::header::HOST).cloned() {
        let _ = req.insert_header("x-forwarded-host", host);
    }
    // A TLS endpoint given by DNS name is asked for by its name (the client's Host is in
    // X-Forwarded-Host).
    if let Some(host) = &ctx.upstream_host {
        let _ = req.insert_header(http::header::HOST, host.clone());
    } else if session.req_header().version == http::Version::HTTP_10
        && !req.headers.contains_key(http::header::HOST)
    {
        // An HTTP/1.0 client may leave Host out (an SLB's health check often does), but it
        // goes upstream as HTTP/1.1, which must carry one (RFC 9112 §3.2): without it an
        // upstream answers 400. Pingora's loop leaves it out too. The endpoint's address
        // is what nginx (`$proxy_host`) and Go's reverse proxy send in its place.
        if let Some(addr) = ctx.upstream {
            let _ = req.insert_header(http::header::HOST, addr.to_string());
        }
    }
    let _ = req.insert_header("x-request-id", ctx.request_id.as_str());
    if route.service().is_some_and(|s| s.protocol.grpc()) {
        // gRPC needs it end to end; Pingora drops hop-by-hop TE on the way from HTTP/1.
        let _ = req.insert_header(http::header::TE, "trailers");
    }
    // Identity headers come from the gateway only: a client's copy never reaches upstream.
    if let Some(snapshot) = &ctx.snapshot {
        req.remove_header(&snapshot.identity.consumer);
        req.remove_header(&snapshot.identity.tenant);
    }

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

/// The client's address: the peer's (after any PROXY header), unless the peer is a trusted
/// proxy; then the right-most X-Forwarded-For entry that is not itself trusted. Returns the
/// client address and whether the peer is trusted.
pub fn client_ip(
    peer: Option<std::net::IpAddr>,
    headers: &http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> (Option<std::net::IpAddr>, bool) {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    let Some(peer) = peer else {
        return (None, false);
    };
    if !is_trusted(&peer) {
        return (Some(peer), false);
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: stop at the last address we could believe.
            Err(_) => break,
        }
    }
    (Some(client), true)
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
    fn finds_the_client_behind_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", "198.51.100.7, 10.1.1.1".parse().unwrap());
        let peer = Some("10.0.0.2".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(
            super::client_ip(peer, &h, &trusted),
            (ip("198.51.100.7"), true)
        );
        // Untrusted peer: its header is ignored.
        assert_eq!(
            super::client_ip(ip("203.0.113.1"), &h, &trusted),
            (ip("203.0.113.1"), false)
        );
        // No header: the trusted peer itself.
        assert_eq!(
            super::client_ip(peer, &http::HeaderMap::new(), &trusted),
            (peer, true)
        );
        // Spoofed left-most entries do not matter: the right-most untrusted one wins.
        h.insert("x-forwarded-for", "1.1.1.1, 198.51.100.7".parse().unwrap());
        assert_eq!(
            super::client_ip(peer, &h, &trusted),
            (ip("198.51.100.7"), true)
        );
    }

    #[test]
    fn strips_prefixes() {
        assert_eq!(super::strip("/api/users", 5), "/users");
        assert_eq!(super::strip("/api/users", 4), "/users");
        assert_eq!(super::strip("/api", 4), "/");
        assert_eq!(super::strip("/api/", 5), "/");
    }
}
