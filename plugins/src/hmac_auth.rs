//! `type = "hmac-auth"`: request signatures. The client signs the method, path, sorted
//! query, a timestamp, an optional nonce, the body's SHA-256 and chosen headers with a secret
//! it shares with the gateway (the consumer's `hmac` credential). The gateway recomputes the
//! signature (constant-time compare), refuses timestamps outside the clock-skew window and
//! refuses a signature or nonce it has already seen inside that window (replay), locally or
//! fleet-wide through Redis. The recipe is in docs/plugins/hmac-auth.md.
//!
//! Headers are checked first (`on_request`); the body — read before anything goes upstream —
//! then completes the signature (`on_request_body`). So a request with a tampered body, query
//! or header never reaches the upstream, and neither does a replay.

use crate::replay::{self, Seen};
use crate::{order, parse_config, BuildContext, Ctx, Plugin, Reply, MAX_BODY_INSPECT};
use async_trait::async_trait;
use base64::Engine;
use hmac::{Hmac, Mac};
use pingora_http::RequestHeader;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SCHEME: &str = "HMAC-SHA256";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// How far the client's `x-date` may be from the gateway's clock, either way.
    #[serde(default = "default_skew")]
    clock_skew_seconds: u64,
    /// Headers every signature must cover (besides the fixed parts).
    #[serde(default = "default_signed")]
    signed_headers: Vec<String>,
    /// Where seen signatures are kept: `local` (this gateway) or `redis` (the fleet).
    #[serde(default)]
    replay: ReplayScope,
    /// Largest body a signed request may have (bytes, at most 65536).
    #[serde(default = "default_max_body")]
    max_body: usize,
    #[serde(default = "default_true")]
    hide_credentials: bool,
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum ReplayScope {
    #[default]
    Local,
    Redis,
}

fn default_skew() -> u64 {
    300
}
fn default_signed() -> Vec<String> {
    vec!["host".into()]
}
fn default_max_body() -> usize {
    MAX_BODY_INSPECT
}
fn default_true() -> bool {
    true
}

pub struct HmacAuth {
    name: String,
    skew: u64,
    required: Vec<String>,
    replay: ReplayScope,
    max_body: usize,
    hide: bool,
    allow: Vec<String>,
    consumers: Arc<crate::consumers::Consumers>,
    stores: Arc<crate::Stores>,
}

/// What `on_request` found, kept for `on_request_body`.
struct Pending {
    key_id: String,
    signature: Vec<u8>,
    signed_headers: Vec<(String, String)>,
    date: String,
    nonce: String,
}

/// `keyId="…", headers="…", signature="…"` after the scheme.
fn parse_authorization(value: &str) -> Option<(String, Vec<String>, Vec<u8>)> {
    let rest = value.strip_prefix(SCHEME)?.strip_prefix(' ')?;
    let (mut key_id, mut headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
        match k.trim() {
            "keyId" => key_id = Some(v.to_string()),
            "headers" => {
                headers = Some(v.split_whitespace().map(str::to_ascii_lowercase).collect());
            }
            "signature" => {
                signature = Some(base64::engine::general_purpose::STANDARD.decode(v).ok()?);
            }
            _ => return None,
        }
    }
    Some((key_id?, headers.unwrap_or_default(), signature?))
}

/// The query as signed: `&`-separated pairs as sent, sorted bytewise.
pub fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    pairs.sort_unstable();
    pairs.join("&")
}

/// The text both sides sign (the recipe: docs/plugins/hmac-auth.md).
#[allow(clippy::too_many_arguments)]
pub fn string_to_sign(
    method: &str,
    path: &str,
    query: Option<&str>,
    date: &str,
    nonce: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> String {
    let body_hash: String = Sha256::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = format!(
        "{SCHEME}\n{method}\n{path}\n{}\n{date}\n{nonce}\n{body_hash}",
        canonical_query(query)
    );
    for (name, value) in headers {
        out.push('\n');
        out.push_str(name);
        out.push(':');
        out.push_str(value);
    }
    out
}

impl HmacAuth {
    pub fn build(
        name: &str,
        table: toml::Table,
        cx: &BuildContext,
    ) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        if config.max_body > MAX_BODY_INSPECT {
            return Err(format!(
                "plugin {name:?}: max_body is at most {MAX_BODY_INSPECT}"
            ));
        }
        if config.clock_skew_seconds == 0 {
            return Err(format!(
                "plugin {name:?}: clock_skew_seconds must be above 0"
            ));
        }
        Ok(Arc::new(HmacAuth {
            name: name.into(),
            skew: config.clock_skew_seconds,
            required: config
                .signed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            replay: config.replay,
            max_body: config.max_body,
            hide: config.hide_credentials,
            allow: config.allow,
            consumers: cx.consumers.clone(),
            stores: cx.stores.clone(),
        }))
    }

    fn challenge(message: &str) -> Reply {
        Reply::challenge(SCHEME, message)
    }

    /// Seen this signature or nonce before, within the window?
    async fn replayed(&self, key: [u8; 32]) -> Result<(), Reply> {
        let window = Duration::from_secs(self.skew * 2);
        let seen = match (self.replay, self.stores.redis.get()) {
            (ReplayScope::Redis, Some(redis)) => {
                match replay::check_redis(&redis, &self.name, &key, window).await {
                    Some(seen) => seen,
                    None => self.stores.replay.check(key, window),
                }
            }
            _ => self.stores.replay.check(key, window),
        };
        match seen {
            Seen::First => Ok(()),
            Seen::Replay => Err(Self::challenge("this signature or nonce was already used")),
            Seen::Saturated => Err(Reply::json(
                503,
                "Service Unavailable",
                "replay protection is saturated; try again later",
            )),
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl Plugin for HmacAuth {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::AUTH
    }

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[401, 403, 411, 413, 503]);
    }

    fn body_limit(&self) -> usize {
        self.max_body.max(1)
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let authorization = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Self::challenge("a signed request is required"))?;
        let (key_id, headers, signature) = parse_authorization(authorization).ok_or_else(|| {
            Self::challenge("the Authorization header is not a valid HMAC-SHA256 signature")
        })?;
        if self.consumers.hmac(&key_id).is_none() {
            return Err(Self::challenge("unknown key id"));
        }
        // `X-Date` (unix seconds or an HTTP date), else the standard `Date` header; the
        // signed text holds the value exactly as sent.
        let date = req
            .headers
            .get("x-date")
            .or_else(|| req.headers.get(http::header::DATE))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Self::challenge("x-date (or date) is required"))?
            .to_string();
        let at: u64 = match date.parse() {
            Ok(seconds) => seconds,
            Err(_) => httpdate::parse_http_date(&date)
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .ok_or_else(|| Self::challenge("the date must be unix seconds or an HTTP date"))?,
        };
        if at.abs_diff(unix_now()) > self.skew {
            return Err(Self::challenge(
                "the date is outside the allowed clock skew",
            ));
        }
        if let Some(missing) = self.required.iter().find(|h| !headers.contains(h)) {
            return Err(Self::challenge(&format!(
                "the signature must cover {missing:?}"
            )));
        }
        let mut signed_headers = Vec::with_capacity(headers.len());
        for name in headers {
            let value = req
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| Self::challenge(&format!("signed header {name:?} is missing")))?
                .trim()
                .to_string();
            signed_headers.push((name, value));
        }
        let nonce = req
            .headers
            .get("x-nonce")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let chunked = req.headers.get(http::header::TRANSFER_ENCODING).is_some();
        let length: Option<usize> = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        if chunked {
            return Err(Reply::json(
                411,
                "Length Required",
                "a signed request must declare its body length",
            ));
        }
        if length.unwrap_or(0) > self.max_body {
            return Err(Reply::json(
                413,
                "Content Too Large",
                "the body is larger than signed requests may be",
            ));
        }
        cx.keep(Pending {
            key_id,
            signature,
            signed_headers,
            date,
            nonce,
        });
        Ok(())
    }

    async fn on_request_body(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        let pending = cx
            .take::<Pending>()
            .ok_or_else(|| Self::challenge("a signed request is required"))?;
        let body = body.ok_or_else(|| {
            Reply::json(413, "Content Too Large", "the body could not be checked")
        })?;
        let Some((secret, consumer)) = self.consumers.hmac(&pending.key_id) else {
            return Err(Self::challenge("unknown key id"));
        };
        let text = string_to_sign(
            req.method.as_str(),
            req.uri.path(),
            req.uri.query(),
            &pending.date,
            &pending.nonce,
            body,
            &pending.signed_headers,
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(text.as_bytes());
        if mac.verify_slice(&pending.signature).is_err() {
            return Err(Self::challenge("the signature does not match the request"));
        }
        // Only a genuine signature may spend a nonce.
        let mut key = Sha256::new();
        key.update(pending.key_id.as_bytes());
        key.update([0]);
        if pending.nonce.is_empty() {
            key.update(&pending.signature);
        } else {
            key.update(b"nonce:");
            key.update(pending.nonce.as_bytes());
        }
        self.replayed(key.finalize().into()).await?;
        consumer.admit(&self.allow, cx)
    }

    fn on_upstream_request(&self, req: &mut RequestHeader, _cx: &mut Ctx<'_>) {
        if self.hide {
            req.remove_header(&http::header::AUTHORIZATION);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{testing, Chain, RequestState};

    /// The worked example of docs/plugins/hmac-auth.md, byte for byte (the signature was made with openssl).
    #[test]
    fn the_documented_example_signs_as_written() {
        let text = string_to_sign(
            "POST",
            "/api/messages",
            Some("room=42&b=2&a=1"),
            "1795746421",
            "5f2b9c1e",
            br#"{"text":"hi"}"#,
            &[("host".into(), "chat.example.com".into())],
        );
        assert_eq!(
            text,
            "HMAC-SHA256\nPOST\n/api/messages\na=1&b=2&room=42\n1795746421\n5f2b9c1e\n\
             e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500\nhost:chat.example.com"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"alice-demo-secret-0123456789").unwrap();
        mac.update(text.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(signature, "O2xKIG0iyaPBxSvbxb/sXjKhBpxMArRFuvKS3gI9QrU=");
        assert!(parse_authorization(
            r#"HMAC-SHA256 keyId="alice", headers="host", signature="AAAA""#
        )
        .is_some());
        assert!(
            parse_authorization(r#"HMAC-SHA256 keyId="alice", signature="not base64!""#).is_none()
        );
        assert!(parse_authorization(r#"Basic YWxpY2U6eA=="#).is_none());
    }

    const SECRET: &str = "alice-demo-secret-0123456789";
    const BODY: &[u8] = br#"{"text":"hi"}"#;

    fn plugin(extra: &str) -> Arc<dyn Plugin> {
        let cx = testing::context(&format!(
            "[[consumers]]\nname = \"alice\"\ntenant = \"t1\"\nhmac = {{ key_id = \"alice\", secret = \"{SECRET}\" }}\n"
        ));
        testing::try_plugin(&format!("type = \"hmac-auth\"\n{extra}"), &cx).unwrap()
    }

    /// A request to POST /api/messages?room=42 signed over `body`, dated now.
    fn signed(body: &[u8], nonce: &str) -> RequestHeader {
        let date = unix_now().to_string();
        let host = ("host".to_string(), "chat.example.com".to_string());
        let text = string_to_sign(
            "POST",
            "/api/messages",
            Some("room=42"),
            &date,
            nonce,
            body,
            &[host],
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let authorization =
            format!(r#"{SCHEME} keyId="alice", headers="host", signature="{signature}""#);
        let length = body.len().to_string();
        testing::request(
            "POST",
            "/api/messages?room=42",
            &[
                ("host", "chat.example.com"),
                ("x-date", date.as_str()),
                ("x-nonce", nonce),
                ("content-length", length.as_str()),
                ("authorization", authorization.as_str()),
            ],
        )
    }

    /// The header phase, then (if it passed) the body phase with `body`.
    async fn run(
        p: &Arc<dyn Plugin>,
        req: &RequestHeader,
        body: &[u8],
    ) -> (Result<(), Reply>, RequestState) {
        let chain = Chain::new(vec![p.clone()]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        let mut result = chain.request(req, &mut state).await;
        if result.is_ok() {
            result = chain.request_body(req, Some(body), &mut state).await;
        }
        (result, state)
    }

    #[tokio::test]
    async fn a_request_without_a_signature_is_401_with_a_challenge() {
        let req = testing::request("POST", "/api/messages", &[("host", "chat.example.com")]);
        let (result, state) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert_eq!(testing::header(&reply, "www-authenticate"), Some(SCHEME));
        assert_eq!(state.caller.consumer, None);
    }

    #[tokio::test]
    async fn a_correctly_signed_request_passes_both_phases_and_names_the_consumer() {
        let p = plugin("");
        assert_eq!(p.body_limit(), MAX_BODY_INSPECT);
        let (result, state) = run(&p, &signed(BODY, "n-1"), BODY).await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        assert_eq!(state.caller.tenant.as_deref(), Some("t1"));
    }

    #[tokio::test]
    async fn the_header_phase_alone_names_no_consumer() {
        let (result, state) = testing::run(&plugin(""), &signed(BODY, "n-1"), "192.0.2.1").await;
        result.unwrap();
        assert_eq!(state.caller.consumer, None);
    }

    #[tokio::test]
    async fn a_tampered_body_is_refused() {
        let (result, state) = run(&plugin(""), &signed(BODY, "n-1"), br#"{"text":"ho"}"#).await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert!(testing::body(&reply)["message"]
            .as_str()
            .unwrap()
            .contains("does not match"));
        assert_eq!(state.caller.consumer, None);
    }

    #[tokio::test]
    async fn a_body_that_could_not_be_read_is_413() {
        let p = plugin("");
        let req = signed(BODY, "n-1");
        let chain = Chain::new(vec![p]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let reply = chain
            .request_body(&req, None, &mut state)
            .await
            .unwrap_err();
        assert_eq!(reply.status, 413);
    }

    #[tokio::test]
    async fn a_replayed_signature_is_refused() {
        let p = plugin("");
        let req = signed(BODY, "n-1");
        assert!(run(&p, &req, BODY).await.0.is_ok());
        let (result, _) = run(&p, &req, BODY).await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert!(testing::body(&reply)["message"]
            .as_str()
            .unwrap()
            .contains("already used"));
        // The same body under another nonce is a new request.
        assert!(run(&p, &signed(BODY, "n-2"), BODY).await.0.is_ok());
    }

    #[tokio::test]
    async fn a_date_outside_the_skew_or_an_unknown_key_is_401() {
        let p = plugin("clock_skew_seconds = 60");
        let mut req = signed(BODY, "n-1");
        let old = (unix_now() - 120).to_string();
        req.insert_header("x-date", old.as_str()).unwrap();
        assert_eq!(run(&p, &req, BODY).await.0.unwrap_err().status, 401);
        let mut req = signed(BODY, "n-1");
        let authorization = req.headers["authorization"]
            .to_str()
            .unwrap()
            .replace("alice", "bob");
        req.insert_header("authorization", authorization.as_str())
            .unwrap();
        assert_eq!(run(&p, &req, BODY).await.0.unwrap_err().status, 401);
    }

    #[tokio::test]
    async fn a_signature_must_cover_the_required_headers() {
        let p = plugin("signed_headers = [\"host\", \"content-type\"]");
        let (result, _) = run(&p, &signed(BODY, "n-1"), BODY).await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert!(testing::body(&reply)["message"]
            .as_str()
            .unwrap()
            .contains("content-type"));
    }

    #[tokio::test]
    async fn chunked_or_oversized_bodies_are_refused_before_the_body_phase() {
        let p = plugin("max_body = 4");
        let (result, _) = testing::run(&p, &signed(BODY, "n-1"), "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 413);
        let mut req = signed(BODY, "n-1");
        req.insert_header("transfer-encoding", "chunked").unwrap();
        let (result, _) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 411);
    }

    #[tokio::test]
    async fn the_authorization_header_is_removed_before_the_upstream() {
        let chain = Chain::new(vec![plugin("")]);
        let mut req = signed(BODY, "n-1");
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        chain
            .request_body(&req, Some(BODY), &mut state)
            .await
            .unwrap();
        chain.upstream_request(&mut req, &mut state);
        assert!(!req.headers.contains_key("authorization"));
    }

    #[test]
    fn bad_settings_are_refused() {
        for table in [
            "max_body = 65537",
            "clock_skew_seconds = 0",
            "replay = \"disk\"",
        ] {
            let error = testing::refusal(&format!("type = \"hmac-auth\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
        }
    }
}
