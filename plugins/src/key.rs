//! Where a per-key plugin (limits, flood protection) takes its key from.

use crate::Caller;
use pingora_http::RequestHeader;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Header(http::HeaderName),
    Query(String),
    Cookie(String),
    /// A claim of a JWT verified by an authentication plugin earlier in the chain.
    JwtClaim(String),
    /// The consumer an authentication plugin identified.
    Consumer,
    /// The tenant of that consumer.
    Tenant,
    ClientIp,
}

impl KeySource {
    pub fn parse(spec: &str) -> Result<KeySource, String> {
        let bad = || {
            format!("bad key {spec:?}: expected header:NAME, query:NAME, cookie:NAME, jwt-claim:NAME, consumer, tenant or client_ip")
        };
        match spec {
            "consumer" => return Ok(KeySource::Consumer),
            "tenant" => return Ok(KeySource::Tenant),
            "client_ip" => return Ok(KeySource::ClientIp),
            _ => {}
        }
        let (kind, name) = spec.split_once(':').ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        match kind {
            "header" => http::HeaderName::from_bytes(name.as_bytes())
                .map(KeySource::Header)
                .map_err(|_| bad()),
            "query" => Ok(KeySource::Query(name.into())),
            "cookie" => Ok(KeySource::Cookie(name.into())),
            "jwt-claim" => Ok(KeySource::JwtClaim(name.into())),
            _ => Err(bad()),
        }
    }

    /// Whether the key comes from an authentication plugin (consumer, tenant, JWT claim)
    /// rather than from the request itself.
    pub fn needs_identity(&self) -> bool {
        matches!(
            self,
            KeySource::JwtClaim(_) | KeySource::Consumer | KeySource::Tenant
        )
    }

    /// The key of this request, if it carries one. Keys are capped at 256 bytes so a client
    /// cannot make the gateway hash megabytes.
    pub fn extract<'a>(&self, req: &'a RequestHeader, caller: &'a Caller) -> Option<Cow<'a, str>> {
        let value: Cow<'a, str> = match self {
            KeySource::JwtClaim(name) => match caller.claims.as_ref()?.get(name)? {
                serde_json::Value::String(s) => Cow::Borrowed(s.as_str()),
                other => Cow::Owned(other.to_string()),
            },
            KeySource::Consumer => Cow::Borrowed(caller.consumer.as_deref()?),
            KeySource::Tenant => Cow::Borrowed(caller.tenant.as_deref()?),
            _ => return self.extract_from_request(req, &caller.client_ip),
        };
        capped(value)
    }

    /// The key for the kinds a request carries by itself (header, query, cookie, client
    /// address); `None` for the identity kinds. Also what the gateway's `lb = "hash"` uses.
    pub fn extract_from_request<'a>(
        &self,
        req: &'a RequestHeader,
        client_ip: &'a str,
    ) -> Option<Cow<'a, str>> {
        let value: &'a str = match self {
            KeySource::Header(name) => req.headers.get(name)?.to_str().ok()?,
            KeySource::Query(name) => {
                let q = req.uri.query()?;
                q.split('&').find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k == name).then_some(v)
                })?
            }
            KeySource::Cookie(name) => cookie(&req.headers, name)?,
            KeySource::ClientIp => client_ip,
            KeySource::JwtClaim(_) | KeySource::Consumer | KeySource::Tenant => return None,
        };
        capped(Cow::Borrowed(value))
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (RFC 6265 `name=value`
/// pairs separated by `;`): the first one, as sent.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim_start().split_once('=')?;
            (k == name).then_some(v)
        })
}

fn capped(value: Cow<'_, str>) -> Option<Cow<'_, str>> {
    (!value.is_empty() && value.len() <= 256).then_some(value)
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address (as a /32 or /128).
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("bad CIDR or address {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_each_kind() {
        let mut req = RequestHeader::build("GET", b"/x?tenant=q1&a=b", None).unwrap();
        req.insert_header("x-tenant-id", "h1").unwrap();
        req.insert_header("cookie", "a=1; t=c1").unwrap();
        let mut state = Caller {
            client_ip: "10.0.0.1".into(),
            ..Caller::default()
        };
        state.consumer = Some("alice".into());
        let get = |spec: &str, state: &Caller| {
            KeySource::parse(spec)
                .unwrap()
                .extract(&req, state)
                .map(std::borrow::Cow::into_owned)
        };
        assert_eq!(get("header:x-tenant-id", &state).as_deref(), Some("h1"));
        assert_eq!(get("query:tenant", &state).as_deref(), Some("q1"));
        assert_eq!(get("cookie:t", &state).as_deref(), Some("c1"));
        assert_eq!(get("consumer", &state).as_deref(), Some("alice"));
        assert_eq!(get("client_ip", &state).as_deref(), Some("10.0.0.1"));
        assert_eq!(get("jwt-claim:org", &state), None);
        assert!(KeySource::parse("body:x").is_err());
    }
}
