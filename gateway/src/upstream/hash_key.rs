//! Where `lb = "hash"` takes its key from: the same key sources the plugins use, limited to
//! what a request carries by itself (no authentication has run when the peer is chosen).

use pingora_proxy::Session;
use std::borrow::Cow;
use tidegate_plugins::key::KeySource;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashKey(KeySource);

impl HashKey {
    pub fn parse(spec: &str) -> Result<HashKey, String> {
        let bad = || {
            format!(
                "bad hash_key {spec:?}: expected header:NAME, cookie:NAME, query:NAME or client_ip"
            )
        };
        let source = KeySource::parse(spec).map_err(|_| bad())?;
        if source.needs_identity() {
            return Err(bad());
        }
        Ok(HashKey(source))
    }

    /// The key's bytes for this request; empty when the request does not carry it (such
    /// requests all land on the same endpoint, which is the least surprising fallback).
    pub fn extract<'a>(&self, session: &'a Session, client_ip: &'a str) -> Cow<'a, [u8]> {
        match self.0.extract_from_request(session.req_header(), client_ip) {
            Some(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
            Some(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
            None => Cow::Borrowed(&[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        for ok in ["header:x-tenant", "cookie:sid", "query:k", "client_ip"] {
            assert!(HashKey::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["header:", "body:x", "consumer", "jwt-claim:sub"] {
            assert!(HashKey::parse(bad).is_err(), "{bad}");
        }
    }
}
