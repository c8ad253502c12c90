//! The plugin API: the [`Plugin`] trait, what a hook sees ([`Ctx`]), what it may answer
//! ([`Reply`]), and what building a plugin may use ([`BuildContext`], [`Stores`]).

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

    /// A short JSON error body, as every gateway-made error has (the gateway adds the
    /// `request_id` when it sends it).
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

/// Who is calling, as the plugins of one request see and shape it.
#[derive(Debug, Default)]
pub struct Caller {
    pub route: Arc<str>,
    pub client_ip: String,
    /// The subject of the client's verified TLS certificate (mTLS), e.g. `CN=svc-a,O=acme`.
    pub client_subject: Option<String>,
    /// Set by an authentication plugin.
    pub consumer: Option<String>,
    pub tenant: Option<String>,
    /// Verified JWT claims, set by a JWT plugin.
    pub claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// Fields a plugin adds to the request's access log line: a key and a JSON value (the
    /// WAF's verdict, say).
    pub log: Vec<(&'static str, serde_json::Value)>,
}

type Slot = Option<Box<dyn Any + Send + Sync>>;

/// Everything the plugins of one request keep: the caller, and one slot per plugin for what
/// it carries between phases (dropped with the request, which is how concurrency guards are
/// released).
pub struct RequestState {
    pub caller: Caller,
    slots: Vec<Slot>,
}

impl RequestState {
    pub fn new(route: Arc<str>, client_ip: String, chain_len: usize) -> Self {
        RequestState {
            caller: Caller {
                route,
                client_ip,
                ..Caller::default()
            },
            slots: (0..chain_len).map(|_| None).collect(),
        }
    }

    /// The context of the plugin at `index` of the chain.
    pub(crate) fn ctx(&mut self, index: usize) -> Ctx<'_> {
        Ctx {
            caller: &mut self.caller,
            slot: &mut self.slots[index],
        }
    }
}

/// What a hook gets: the caller (shared with the other plugins of the chain; derefs to
/// [`Caller`]) and the plugin's own per-request slot.
pub struct Ctx<'a> {
    caller: &'a mut Caller,
    slot: &'a mut Slot,
}

impl Ctx<'_> {
    /// Keeps `value` for this plugin's later phases of the same request.
    pub fn keep<T: Any + Send + Sync>(&mut self, value: T) {
        *self.slot = Some(Box::new(value));
    }

    /// What this plugin kept earlier in the request, if it is a `T`.
    pub fn kept<T: Any + Send + Sync>(&mut self) -> Option<&mut T> {
        self.slot.as_mut()?.downcast_mut()
    }

    /// Takes back what this plugin kept.
    pub fn take<T: Any + Send + Sync>(&mut self) -> Option<T> {
        match self.slot.take()?.downcast::<T>() {
            Ok(b) => Some(*b),
            Err(other) => {
                *self.slot = Some(other);
                None
            }
        }
    }
}

impl std::ops::Deref for Ctx<'_> {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        self.caller
    }
}

impl std::ops::DerefMut for Ctx<'_> {
    fn deref_mut(&mut self) -> &mut Caller {
        self.caller
    }
}

#[async_trait]
pub trait Plugin: Any + Send + Sync {
    /// The configured name (`[plugins.NAME]`).
    fn name(&self) -> &str;
    /// Place in the fixed phase order, see [`order`].
    fn order(&self) -> u16;

    /// Before anything goes upstream. `Err(reply)` answers the request.
    async fn on_request(&self, _req: &RequestHeader, _cx: &mut Ctx<'_>) -> Result<(), Reply> {
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
        _cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        Ok(())
    }

    fn on_upstream_request(&self, _req: &mut RequestHeader, _cx: &mut Ctx<'_>) {}

    /// On the upstream's response header, before [`Self::on_response`] (never on the
    /// gateway's or a plugin's own answers). `Err(reply)` answers the client instead: the
    /// upstream's response is dropped and the connection is not reused.
    fn on_upstream_response(&self, _resp: &ResponseHeader, _cx: &mut Ctx<'_>) -> Result<(), Reply> {
        Ok(())
    }

    /// On the response header, whoever made it (upstream or a plugin's reply).
    fn on_response(&self, _resp: &mut ResponseHeader, _cx: &mut Ctx<'_>) {}

    /// Whether this plugin looks at upstream response bodies ([`Self::on_response_body`]).
    fn inspects_response_body(&self) -> bool {
        false
    }

    /// A piece of the upstream's response body (`end`: the last one). A plugin may hold
    /// pieces back (take them out of `body`) and release them later (put them back), within
    /// a bound of its own. `Err(why)` cuts the response there: its header has gone out, so
    /// nothing more of it reaches the client and the connection closes.
    fn on_response_body(
        &self,
        _body: &mut Option<Bytes>,
        _end: bool,
        _cx: &mut Ctx<'_>,
    ) -> Result<(), String> {
        Ok(())
    }

    fn on_log(&self, _status: u16, _cx: &mut Ctx<'_>) {}

    /// Creates this plugin's metric series at zero (called when a snapshot is applied), so
    /// dashboards show 0 rather than "no data" before the first event.
    fn declare_metrics(&self) {}
}

/// The most body bytes the gateway holds back for inspection: Pingora replays a read body
/// to the upstream from a buffer of this size.
pub const MAX_BODY_INSPECT: usize = 64 * 1024;

/// State that outlives snapshots, shared by every plugin instance of a process.
#[derive(Default)]
pub struct Stores {
    pub limits: crate::rate_limit::LimitStore,
    pub cc: crate::cc::BanStore,
    pub redis: crate::redis_client::RedisSlot,
    /// Signatures/nonces already seen by hmac-auth (local store).
    pub replay: crate::replay::LocalReplayStore,
    /// Fetched key sets by URL, so a reload does not refetch them.
    pub jwks: crate::jwks::JwksStore,
    /// Verified basic-auth credentials (hash checks are deliberately slow).
    pub basic: crate::basic_auth::VerifiedCache,
}

/// What building a plugin may use: state outside snapshots, and the snapshot's consumers.
pub struct BuildContext {
    pub stores: Arc<Stores>,
    pub consumers: Arc<crate::consumers::Consumers>,
}

/// Deserializes a plugin's table into its config type, naming the plugin in errors.
pub fn parse_config<T: serde::de::DeserializeOwned>(
    name: &str,
    table: toml::Table,
) -> Result<T, String> {
    T::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("plugin {name:?}: {}", e.message().trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_is_seen_changed_and_taken_back_by_its_type() {
        let mut state = RequestState::new("r".into(), "192.0.2.1".into(), 2);
        let mut cx = state.ctx(0);
        assert_eq!(cx.kept::<u32>(), None);
        cx.keep(41u32);
        *cx.kept::<u32>().unwrap() += 1;
        assert_eq!(cx.kept::<String>(), None);
        // Taking the wrong type leaves the value where it was.
        assert_eq!(cx.take::<String>(), None);
        assert_eq!(cx.take::<u32>(), Some(42));
        assert_eq!(cx.take::<u32>(), None);
        assert_eq!(cx.kept::<u32>(), None);
    }

    #[test]
    fn keeping_again_replaces_the_value() {
        let mut state = RequestState::new("r".into(), "192.0.2.1".into(), 1);
        let mut cx = state.ctx(0);
        cx.keep(1u8);
        cx.keep("text".to_string());
        assert_eq!(cx.kept::<u8>(), None);
        assert_eq!(cx.take::<String>().as_deref(), Some("text"));
    }

    #[test]
    fn each_plugin_has_its_own_slot_and_all_share_the_caller() {
        let mut state = RequestState::new("orders".into(), "192.0.2.1".into(), 2);
        {
            let mut cx = state.ctx(0);
            cx.keep(7i64);
            assert_eq!(cx.client_ip, "192.0.2.1");
            assert_eq!(&*cx.route, "orders");
            cx.consumer = Some("alice".into());
        }
        {
            let mut cx = state.ctx(1);
            assert_eq!(cx.kept::<i64>(), None);
            assert_eq!(cx.consumer.as_deref(), Some("alice"));
            cx.tenant = Some("t1".into());
        }
        assert_eq!(state.ctx(0).take::<i64>(), Some(7));
        assert_eq!(state.caller.tenant.as_deref(), Some("t1"));
    }

    #[test]
    fn a_kept_value_is_dropped_with_the_request_state() {
        let alive = Arc::new(());
        let mut state = RequestState::new("r".into(), "192.0.2.1".into(), 1);
        state.ctx(0).keep(alive.clone());
        assert_eq!(Arc::strong_count(&alive), 2);
        drop(state);
        assert_eq!(Arc::strong_count(&alive), 1);
    }

    #[test]
    fn json_replies_have_a_small_json_body() {
        let reply = Reply::json(429, "Too Many Requests", "slow down");
        assert_eq!(reply.status, 429);
        assert_eq!(
            reply.headers,
            vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json")
            )]
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({ "error": "Too Many Requests", "message": "slow down" })
        );
    }

    #[test]
    fn a_challenge_is_a_401_with_www_authenticate() {
        let reply = Reply::challenge("Basic realm=\"x\"", "credentials are required");
        assert_eq!(reply.status, 401);
        let value = |name: HeaderName| {
            reply
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_str().unwrap().to_string())
        };
        assert_eq!(
            value(http::header::WWW_AUTHENTICATE).as_deref(),
            Some("Basic realm=\"x\"")
        );
        assert_eq!(
            value(http::header::CONTENT_TYPE).as_deref(),
            Some("application/json")
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["error"], "Unauthorized");
        assert_eq!(body["message"], "credentials are required");
    }

    #[test]
    fn a_challenge_that_is_not_a_header_value_is_left_out() {
        let reply = Reply::challenge("Bearer\nInjected: yes", "m");
        assert_eq!(reply.status, 401);
        assert!(reply
            .headers
            .iter()
            .all(|(n, _)| *n != http::header::WWW_AUTHENTICATE));
    }

    #[test]
    fn config_errors_name_the_plugin() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            count: u32,
        }
        let table: toml::Table = toml::from_str("count = 3").unwrap();
        assert_eq!(parse_config::<Config>("limits", table).unwrap().count, 3);
        let table: toml::Table = toml::from_str("count = 3\ncuont = 4").unwrap();
        let error = parse_config::<Config>("limits", table).unwrap_err();
        assert!(error.starts_with("plugin \"limits\": "), "{error}");
        assert!(error.contains("cuont"), "{error}");
        let table: toml::Table = toml::from_str("count = \"three\"").unwrap();
        assert!(parse_config::<Config>("limits", table).is_err());
    }
}
