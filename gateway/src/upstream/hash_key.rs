//! Where `lb = "hash"` takes its key from.

use pingora_proxy::Session;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Header(http::HeaderName),
    Cookie(String),
    Query(String),
    ClientIp,
}

impl HashKey {
    pub fn parse(spec: &str) -> Result<HashKey, String> {
        let bad = || {
            format!(
                "bad hash_key {spec:?}: expected header:NAME, cookie:NAME, query:NAME or client_ip"
            )
        };
        if spec == "client_ip" {
            return Ok(HashKey::ClientIp);
        }
        let (kind, name) = spec.split_once(':').ok_or_else(bad)?;
        if name.is_empty() {
            return Err(bad());
        }
        match kind {
            "header" => http::HeaderName::from_bytes(name.as_bytes())
                .map(HashKey::Header)
                .map_err(|_| bad()),
            "cookie" => Ok(HashKey::Cookie(name.to_string())),
            "query" => Ok(HashKey::Query(name.to_string())),
            _ => Err(bad()),
        }
    }

    /// The key's bytes for this request; empty when the request does not carry it (such
    /// requests all land on the same endpoint, which is the least surprising fallback).
    pub fn extract<'a>(&self, session: &'a Session, client_ip: &'a str) -> &'a [u8] {
        let req = session.req_header();
        match self {
            HashKey::Header(name) => req.headers.get(name).map_or(&[], |v| v.as_bytes()),
            HashKey::ClientIp => client_ip.as_bytes(),
            HashKey::Cookie(name) => req
                .headers
                .get_all(http::header::COOKIE)
                .iter()
                .find_map(|v| cookie_value(v.as_bytes(), name.as_bytes()))
                .unwrap_or(&[]),
            HashKey::Query(name) => req
                .uri
                .query()
                .and_then(|q| query_value(q.as_bytes(), name.as_bytes()))
                .unwrap_or(&[]),
        }
    }
}

pub fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii_start();
        let eq = pair.iter().position(|b| *b == b'=')?;
        (&pair[..eq] == name).then(|| &pair[eq + 1..])
    })
}

pub fn query_value<'a>(query: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    query.split(|b| *b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|b| *b == b'=').unwrap_or(pair.len());
        (&pair[..eq] == name).then(|| pair.get(eq + 1..).unwrap_or(&[]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert!(matches!(
            HashKey::parse("header:x-tenant"),
            Ok(HashKey::Header(_))
        ));
        assert_eq!(
            HashKey::parse("cookie:sid"),
            Ok(HashKey::Cookie("sid".into()))
        );
        assert_eq!(HashKey::parse("client_ip"), Ok(HashKey::ClientIp));
        assert!(HashKey::parse("header:").is_err());
        assert!(HashKey::parse("body:x").is_err());
    }

    #[test]
    fn finds_cookie_and_query_values() {
        assert_eq!(
            cookie_value(b"a=1; sid=xyz; b=2", b"sid"),
            Some(&b"xyz"[..])
        );
        assert_eq!(cookie_value(b"a=1", b"sid"), None);
        assert_eq!(query_value(b"x=1&k=v", b"k"), Some(&b"v"[..]));
        assert_eq!(query_value(b"k", b"k"), Some(&b""[..]));
    }
}
