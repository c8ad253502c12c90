//! `type = "jwt-auth"`: bearer JWTs (HS256/384/512, RS256/384/512, ES256/384) verified with
//! a configured key; `exp`/`nbf` (with leeway), `iss` and `aud` checked. A claim names the
//! consumer and optionally the tenant; verified claims are available to later plugins
//! (`key = "jwt-claim:NAME"`).
//!
//! Algorithm confusion is impossible by construction: a plugin holds one key of one family
//! (an HMAC secret, or an RSA/EC public key) and accepts only that family's algorithms, so an
//! HS256 token "signed" with an RSA public key is refused, as is `alg: none`.

use crate::consumers::secret;
use crate::{order, parse_config, Plugin, Reply, RequestState};
use async_trait::async_trait;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use pingora_http::RequestHeader;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Accepted algorithms, all of one family.
    algorithms: Vec<String>,
    /// HMAC secret (literal, `env:VAR` or `file:PATH`) for HS*.
    secret: Option<String>,
    /// PEM public key (literal, `env:VAR` or `file:PATH`) for RS*/ES*.
    public_key: Option<String>,
    /// Or the issuer's JWKS URL (RS*/ES*): keys by `kid`, cached and refreshed.
    jwks_url: Option<String>,
    #[serde(default = "default_jwks_refresh")]
    jwks_refresh_seconds: u64,
    issuer: Option<String>,
    audience: Option<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default = "default_consumer_claim")]
    consumer_claim: String,
    tenant_claim: Option<String>,
    #[serde(default = "default_true")]
    hide_credentials: bool,
    /// API permission: only these consumers may pass (empty: any valid token).
    #[serde(default)]
    allow: Vec<String>,
}

fn default_jwks_refresh() -> u64 {
    300
}
fn default_leeway() -> u64 {
    30
}
fn default_consumer_claim() -> String {
    "sub".into()
}
fn default_true() -> bool {
    true
}

/// Where verification keys come from.
enum Keys {
    Static(DecodingKey),
    Jwks(Arc<crate::jwks::JwksCache>, crate::jwks::Family),
}

pub struct JwtAuth {
    name: String,
    key: Keys,
    validation: Validation,
    consumer_claim: String,
    tenant_claim: Option<String>,
    hide: bool,
    allow: Vec<String>,
    consumers: Arc<crate::consumers::Consumers>,
}

impl JwtAuth {
    pub fn build(
        name: &str,
        table: toml::Table,
        cx: &crate::BuildContext,
    ) -> Result<Arc<dyn Plugin>, String> {
        let stores = &cx.stores;
        let config: Config = parse_config(name, table)?;
        let err = |m: String| format!("plugin {name:?}: {m}");
        let algorithms = config
            .algorithms
            .iter()
            .map(|a| {
                a.parse::<Algorithm>()
                    .map_err(|_| err(format!("unknown algorithm {a:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if algorithms.is_empty() {
            return Err(err("`algorithms` must not be empty".into()));
        }
        let hmac =
            |a: &Algorithm| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512);
        let rsa =
            |a: &Algorithm| matches!(a, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512);
        let ec = |a: &Algorithm| matches!(a, Algorithm::ES256 | Algorithm::ES384);
        let key = match (&config.secret, &config.public_key, &config.jwks_url) {
            (Some(s), None, None) if algorithms.iter().all(hmac) => Keys::Static(
                DecodingKey::from_secret(secret(s).map_err(err)?.as_bytes()),
            ),
            (None, Some(k), None) if algorithms.iter().all(rsa) => Keys::Static(
                DecodingKey::from_rsa_pem(secret(k).map_err(err)?.as_bytes())
                    .map_err(|e| err(format!("bad RSA public key: {e}")))?,
            ),
            (None, Some(k), None) if algorithms.iter().all(ec) => Keys::Static(
                DecodingKey::from_ec_pem(secret(k).map_err(err)?.as_bytes())
                    .map_err(|e| err(format!("bad EC public key: {e}")))?,
            ),
            (None, None, Some(url))
                if algorithms.iter().all(rsa) || algorithms.iter().all(ec) =>
            {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(err(format!("jwks_url {url:?} must be an http(s) URL")));
                }
                let family = if algorithms.iter().all(rsa) {
                    crate::jwks::Family::Rsa
                } else {
                    crate::jwks::Family::Ec
                };
                let refresh = std::time::Duration::from_secs(config.jwks_refresh_seconds.max(1));
                Keys::Jwks(stores.jwks.get(url, refresh), family)
            }
            _ => {
                return Err(err(
                    "give `secret` with HS* algorithms, or `public_key` / `jwks_url` with RS* or ES* algorithms (one key source, one family)".into(),
                ))
            }
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = config.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        match &config.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Arc::new(JwtAuth {
            name: name.into(),
            key,
            validation,
            consumer_claim: config.consumer_claim,
            tenant_claim: config.tenant_claim,
            hide: config.hide_credentials,
            allow: config.allow,
            consumers: cx.consumers.clone(),
        }))
    }
}

fn claim_text(claims: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[async_trait]
impl Plugin for JwtAuth {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::AUTH
    }

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        let challenge = |message: &str| Reply::challenge("Bearer", message);
        let token = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| challenge("a bearer token is required"))?;
        let fetched;
        let key = match &self.key {
            Keys::Static(key) => key,
            Keys::Jwks(set, family) => {
                let header = jsonwebtoken::decode_header(token)
                    .map_err(|e| challenge(&format!("the token is not valid: {e}")))?;
                fetched = set
                    .key(header.kid.as_deref(), *family)
                    .await
                    .map_err(|e| challenge(&format!("the token is not valid: {e}")))?;
                &fetched
            }
        };
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            key,
            &self.validation,
        )
        .map_err(|e| challenge(&format!("the token is not valid: {e}")))?;
        let claims = data.claims;
        let consumer = claim_text(&claims, &self.consumer_claim).ok_or_else(|| {
            challenge(&format!("the token has no {:?} claim", self.consumer_claim))
        })?;
        // A `[[consumers]]` entry with this issuer and subject names the consumer and its
        // tenant; otherwise the claim itself is the consumer.
        let issuer = claim_text(&claims, "iss");
        let known = claim_text(&claims, "sub")
            .and_then(|sub| self.consumers.by_jwt(issuer.as_deref(), &sub));
        match known {
            Some(c) => {
                state.consumer = Some(c.name.clone());
                state.tenant = c.tenant.clone();
            }
            None => state.consumer = Some(consumer),
        }
        if let Some(t) = &self.tenant_claim {
            if let Some(tenant) = claim_text(&claims, t) {
                state.tenant = Some(tenant);
            }
        }
        if !self.allow.is_empty()
            && !state
                .consumer
                .as_ref()
                .is_some_and(|c| self.allow.iter().any(|a| a == c))
        {
            return Err(Reply::json(
                403,
                "Forbidden",
                "this consumer may not call this route",
            ));
        }
        state.claims = Some(claims);
        Ok(())
    }

    fn on_upstream_request(
        &self,
        req: &mut RequestHeader,
        _state: &mut RequestState,
        _index: usize,
    ) {
        if self.hide {
            req.remove_header(&http::header::AUTHORIZATION);
        }
    }
}
