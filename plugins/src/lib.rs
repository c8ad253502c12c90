//! Tidegate's plugin API and built-in plugins.
//!
//! A plugin is configured under `[plugins.NAME]` with a `type`, validated and built when a
//! snapshot is compiled, and run by the gateway in fixed phases: `on_request` (may answer
//! the request itself), `on_request_body` (for plugins that ask to see the body; still
//! before anything goes upstream), `on_upstream_request`, `on_response`, and `on_log`. A route's chain
//! is the global plugins plus its own, ordered by [`Plugin::order`] — ip rules, flood
//! protection, authentication, WAF, limits, CORS, rewrites — whatever order they are listed in.
//!
//! State that must outlive a snapshot (counters, bans) lives in [`Stores`], keyed by plugin
//! name, so that a reload that changes a threshold keeps the counts.

pub mod basic_auth;
pub mod cc;
pub mod consumers;
pub mod cors;
pub mod hmac_auth;
pub mod ip_restriction;
pub mod jwks;
pub mod jwt_auth;
pub mod key;
pub mod key_auth;
pub mod metrics;
pub mod rate_limit;
pub mod redis_client;
pub mod replay;
pub mod request_block;
pub mod request_size;
pub mod waf;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::any::Any;
use std::sync::Arc;

/// Positions in the fixed phase order (lower runs first).
pub mod order {
    pub const IP_RESTRICTION: u16 = 100;
    pub const CC_PROTECTION: u16 = 200;
    pub const AUTH: u16 = 300;
    pub const WAF: u16 = 400;
    pub const LIMITS: u16 = 500;
    pub const CORS: u16 = 600;
    pub const REWRITE: u16 = 700;
}

/// An answer a plugin gives instead of proxying.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Reply {
    /// 401 with a `WWW-Authenticate` challenge (e.g. `Bearer`, `Basic realm="x"`).
    pub fn challenge(challenge: &str, message: &str) -> Reply {
        let mut reply = Reply::json(401, "Unauthorized", message);
        if let Ok(value) = HeaderValue::from_str(challenge) {
            reply.headers.push((http::header::WWW_AUTHENTICATE, value));
        }
        reply
    }

    /// A short JSON error body, as every gateway-made error has.
    pub fn json(status: u16, error: &str, message: &str) -> Reply {
        let body = serde_json::json!({ "error": error, "message": message }).to_string();
        Reply {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body),
        }
    }
}

/// What plugins of one request share: who is calling, and each plugin's own slot.
pub struct RequestState {
    pub route: Arc<str>,
    pub client_ip: String,
    /// Set by an authentication plugin.
    pub consumer: Option<String>,
    pub tenant: Option<String>,
    /// Verified JWT claims, set by a JWT plugin.
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    slots: Vec<Option<Box<dyn Any + Send + Sync>>>,
}

impl RequestState {
    pub fn new(route: Arc<str>, client_ip: String, chain_len: usize) -> Self {
        RequestState {
            route,
            client_ip,
            consumer: None,
            tenant: None,
            claims: None,
            slots: (0..chain_len).map(|_| None).collect(),
        }
    }

    /// The slot of the plugin at `index` in the chain: per-request data it keeps between
    /// phases (dropped with the request, which is how concurrency guards are released).
    pub fn slot(&mut self, index: usize) -> &mut Option<Box<dyn Any + Send + Sync>> {
        &mut self.slots[index]
    }
}

#[async_trait]
pub trait Plugin: Any + Send + Sync {
    /// The configured name (`[plugins.NAME]`).
    fn name(&self) -> &str;
    /// Place in the fixed phase order, see [`order`].
    fn order(&self) -> u16;

    /// Before anything goes upstream. `Err(reply)` answers the request.
    async fn on_request(
        &self,
        _req: &RequestHeader,
        _state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        Ok(())
    }

    /// How many bytes of the request body this plugin must see before the request may go
    /// upstream (0: it does not look at bodies). The gateway reads bodies only after every
    /// `on_request` passed, and only bodies of a declared length up to [`MAX_BODY_INSPECT`].
    fn body_limit(&self) -> usize {
        0
    }

    /// The request body, for plugins with a `body_limit`. `body` is `None` when it could not
    /// be read in full before proxying (chunked, or longer than the limit).
    async fn on_request_body(
        &self,
        _req: &RequestHeader,
        _body: Option<&[u8]>,
        _state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        Ok(())
    }

    fn on_upstream_request(
        &self,
        _req: &mut RequestHeader,
        _state: &mut RequestState,
        _index: usize,
    ) {
    }

    /// On the response header, whoever made it (upstream or a plugin's reply).
    fn on_response(&self, _resp: &mut ResponseHeader, _state: &mut RequestState, _index: usize) {}

    fn on_log(&self, _status: u16, _state: &mut RequestState, _index: usize) {}
}

/// The most body bytes the gateway holds back for inspection: Pingora replays a read body
/// to the upstream from a buffer of this size.
pub const MAX_BODY_INSPECT: usize = 64 * 1024;

/// State that outlives snapshots, shared by every plugin instance of a process.
#[derive(Default)]
pub struct Stores {
    pub limits: rate_limit::LimitStore,
    pub cc: cc::BanStore,
    pub redis: redis_client::RedisSlot,
    /// Signatures/nonces already seen by hmac-auth (local store).
    pub replay: replay::LocalReplayStore,
    /// Fetched key sets by URL, so a reload does not refetch them.
    pub jwks: jwks::JwksStore,
    /// Verified basic-auth credentials (hash checks are deliberately slow).
    pub basic: basic_auth::VerifiedCache,
}

/// What building a plugin may use: state outside snapshots, and the snapshot's consumers.
pub struct BuildContext {
    pub stores: Arc<Stores>,
    pub consumers: Arc<consumers::Consumers>,
}

/// Builds a plugin from its `[plugins.NAME]` table. Errors are one line each.
pub fn build(
    name: &str,
    table: &toml::Table,
    cx: &BuildContext,
) -> Result<Arc<dyn Plugin>, String> {
    let stores = &cx.stores;
    let kind = table
        .get("type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("plugin {name:?} needs a `type`"))?;
    let mut rest = table.clone();
    rest.remove("type");
    match kind {
        "key-rate-limit" => rate_limit::KeyRateLimit::build(name, rest, stores),
        "cc-protection" => cc::CcProtection::build(name, rest, stores),
        "key-auth" => key_auth::KeyAuth::build(name, rest, cx),
        "basic-auth" => basic_auth::BasicAuth::build(name, rest, cx),
        "hmac-auth" => hmac_auth::HmacAuth::build(name, rest, cx),
        "ip-restriction" => ip_restriction::IpRestriction::build(name, rest),
        "jwt-auth" => jwt_auth::JwtAuth::build(name, rest, cx),
        "cors" => cors::Cors::build(name, rest),
        "request-size" => request_size::RequestSize::build(name, rest),
        "request-block" => request_block::RequestBlock::build(name, rest),
        "waf" => waf::Waf::build(name, rest),
        other => Err(format!(
            "plugin {name:?} has unknown type {other:?} (known: key-rate-limit, cc-protection, key-auth, basic-auth, hmac-auth, jwt-auth, ip-restriction, cors, request-size, request-block, waf)"
        )),
    }
}

/// Deserializes a plugin's table into its config type, naming the plugin in errors.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    name: &str,
    table: toml::Table,
) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("plugin {name:?}: {}", e.message().trim()))
}
