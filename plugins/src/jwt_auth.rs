//! `type = "jwt-auth"`: bearer JWTs (HS256/384/512, RS256/384/512, ES256/384) verified with
//! a configured key; `exp`/`nbf` (with leeway), `iss` and `aud` checked. A claim names the
//! consumer and optionally the tenant; verified claims are available to later plugins
//! (`key = "jwt-claim:NAME"`).
//!
//! Algorithm confusion is impossible by construction: a plugin holds one key of one family
//! (an HMAC secret, or an RSA/EC public key) and accepts only that family's algorithms, so an
//! HS256 token "signed" with an RSA public key is refused, as is `alg: none`.

use crate::consumers::secret;
use crate::{order, parse_config, Ctx, Plugin, Reply};
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
        // A configured issuer or audience must be present, not only right when present: a
        // token that leaves the claim out would otherwise pass.
        let mut required = vec!["exp"];
        if config.issuer.is_some() {
            required.push("iss");
        }
        if config.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
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

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[401, 403]);
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
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
                cx.consumer = Some(c.name.clone());
                cx.tenant = c.tenant.clone();
            }
            None => cx.consumer = Some(consumer),
        }
        if let Some(t) = &self.tenant_claim {
            if let Some(tenant) = claim_text(&claims, t) {
                cx.tenant = Some(tenant);
            }
        }
        if !self.allow.is_empty()
            && !cx
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
        cx.claims = Some(claims);
        Ok(())
    }

    fn on_upstream_request(&self, req: &mut RequestHeader, _cx: &mut Ctx<'_>) {
        if self.hide {
            req.remove_header(&http::header::AUTHORIZATION);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;
    use crate::{Chain, Plugin};
    use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
    use serde_json::json;
    use std::sync::Arc;

    const SECRET: &str = "a-test-secret-of-thirty-two-bytes";

    fn plugin(extra: &str) -> Arc<dyn Plugin> {
        testing::plugin(&format!(
            "type = \"jwt-auth\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\n{extra}"
        ))
    }

    fn token(claims: serde_json::Value, secret: &str) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes());
        encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    fn valid(sub: &str) -> serde_json::Value {
        json!({ "sub": sub, "exp": get_current_timestamp() + 600, "org": "acme" })
    }

    async fn run(
        p: &Arc<dyn Plugin>,
        token: &str,
    ) -> (Result<(), crate::Reply>, crate::RequestState) {
        let authorization = format!("Bearer {token}");
        let req = testing::request("GET", "/", &[("authorization", authorization.as_str())]);
        testing::run(p, &req, "192.0.2.1").await
    }

    async fn status(p: &Arc<dyn Plugin>, token: &str) -> Option<u16> {
        run(p, token).await.0.err().map(|reply| reply.status)
    }

    #[tokio::test]
    async fn a_valid_token_names_the_consumer_and_keeps_its_claims() {
        let (result, state) = run(&plugin(""), &token(valid("alice"), SECRET)).await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        assert_eq!(state.caller.tenant, None);
        let claims = state.caller.claims.unwrap();
        assert_eq!(claims["org"], "acme");
        assert_eq!(claims["sub"], "alice");
    }

    #[tokio::test]
    async fn a_missing_or_non_bearer_token_is_401_with_a_bearer_challenge() {
        let p = plugin("");
        let req = testing::request("GET", "/", &[]);
        let reply = testing::run(&p, &req, "192.0.2.1").await.0.unwrap_err();
        assert_eq!(reply.status, 401);
        assert_eq!(testing::header(&reply, "www-authenticate"), Some("Bearer"));
        let req = testing::request("GET", "/", &[("authorization", "Basic YTpi")]);
        assert_eq!(
            testing::run(&p, &req, "192.0.2.1")
                .await
                .0
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(status(&p, "not.a.token").await, Some(401));
    }

    #[tokio::test]
    async fn an_expired_token_is_401() {
        let now = get_current_timestamp();
        let expired = token(json!({ "sub": "alice", "exp": now - 120 }), SECRET);
        assert_eq!(status(&plugin(""), &expired).await, Some(401));
        // Inside the leeway it still passes; without leeway it does not.
        let just = token(json!({ "sub": "alice", "exp": now - 10 }), SECRET);
        assert_eq!(status(&plugin(""), &just).await, None);
        assert_eq!(
            status(&plugin("leeway_seconds = 0"), &just).await,
            Some(401)
        );
    }

    #[tokio::test]
    async fn a_token_without_exp_or_not_yet_valid_is_401() {
        let p = plugin("leeway_seconds = 0");
        assert_eq!(
            status(&p, &token(json!({ "sub": "alice" }), SECRET)).await,
            Some(401)
        );
        let now = get_current_timestamp();
        let early = json!({ "sub": "alice", "exp": now + 600, "nbf": now + 300 });
        assert_eq!(status(&p, &token(early, SECRET)).await, Some(401));
    }

    #[tokio::test]
    async fn a_wrong_signature_is_401() {
        let forged = token(valid("alice"), "another-secret-of-thirty-two-byte");
        let (result, state) = run(&plugin(""), &forged).await;
        assert_eq!(result.unwrap_err().status, 401);
        assert!(state.caller.consumer.is_none() && state.caller.claims.is_none());
    }

    #[tokio::test]
    async fn an_unsigned_alg_none_token_is_401() {
        use base64::Engine;
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let unsigned = format!(
            "{}.{}.",
            b64(json!({ "alg": "none", "typ": "JWT" })),
            b64(valid("alice"))
        );
        assert_eq!(status(&plugin(""), &unsigned).await, Some(401));
    }

    #[tokio::test]
    async fn an_algorithm_outside_the_configured_list_is_401() {
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let hs512 = encode(&Header::new(Algorithm::HS512), &valid("alice"), &key).unwrap();
        assert_eq!(status(&plugin(""), &hs512).await, Some(401));
    }

    #[tokio::test]
    async fn the_issuer_and_audience_are_checked_when_configured() {
        let p = plugin("issuer = \"https://id.example\"\naudience = \"orders\"");
        let exp = get_current_timestamp() + 600;
        let claims =
            |iss: &str, aud: &str| json!({ "sub": "alice", "exp": exp, "iss": iss, "aud": aud });
        let ok = token(claims("https://id.example", "orders"), SECRET);
        assert_eq!(status(&p, &ok).await, None);
        let wrong_iss = token(claims("https://evil.example", "orders"), SECRET);
        assert_eq!(status(&p, &wrong_iss).await, Some(401));
        let wrong_aud = token(claims("https://id.example", "billing"), SECRET);
        assert_eq!(status(&p, &wrong_aud).await, Some(401));
    }

    #[tokio::test]
    async fn a_token_lacking_the_configured_issuer_or_audience_is_401() {
        let exp = get_current_timestamp() + 600;
        let p = plugin("issuer = \"https://id.example\"");
        let no_iss = json!({ "sub": "alice", "exp": exp });
        assert_eq!(status(&p, &token(no_iss, SECRET)).await, Some(401));
        let p = plugin("audience = \"orders\"");
        let no_aud = json!({ "sub": "alice", "exp": exp });
        assert_eq!(status(&p, &token(no_aud, SECRET)).await, Some(401));
    }

    #[tokio::test]
    async fn the_consumer_and_tenant_claims_are_configurable() {
        let p = plugin("consumer_claim = \"client_id\"\ntenant_claim = \"org\"");
        let exp = get_current_timestamp() + 600;
        let claims = json!({ "sub": "u-1", "client_id": "svc-orders", "org": "acme", "exp": exp });
        let (result, state) = run(&p, &token(claims, SECRET)).await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("svc-orders"));
        assert_eq!(state.caller.tenant.as_deref(), Some("acme"));
        assert_eq!(status(&p, &token(valid("alice"), SECRET)).await, Some(401));
    }

    #[tokio::test]
    async fn a_known_issuer_and_subject_are_a_consumer_with_its_tenant() {
        let cx = testing::context(
            "[[consumers]]\nname = \"alice\"\ntenant = \"t1\"\njwt = { issuer = \"https://id.example\", subject = \"u-42\" }\n",
        );
        let p = testing::try_plugin(
            &format!("type = \"jwt-auth\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\nallow = [\"alice\"]"),
            &cx,
        )
        .unwrap();
        let exp = get_current_timestamp() + 600;
        let mine = json!({ "sub": "u-42", "iss": "https://id.example", "exp": exp });
        let (result, state) = run(&p, &token(mine, SECRET)).await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        assert_eq!(state.caller.tenant.as_deref(), Some("t1"));
        // Same subject from another issuer is not alice, so the allow list refuses it.
        let other = json!({ "sub": "u-42", "iss": "https://other.example", "exp": exp });
        assert_eq!(status(&p, &token(other, SECRET)).await, Some(403));
    }

    #[tokio::test]
    async fn the_token_is_removed_before_the_upstream() {
        let chain = Chain::new(vec![plugin("")]);
        let authorization = format!("Bearer {}", token(valid("alice"), SECRET));
        let mut req = testing::request("GET", "/", &[("authorization", authorization.as_str())]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        chain.upstream_request(&mut req, &mut state);
        assert!(!req.headers.contains_key("authorization"));
    }

    #[test]
    fn mismatched_keys_and_algorithms_are_refused_at_build() {
        for table in [
            "algorithms = []\nsecret = \"s\"",
            "algorithms = [\"HS257\"]\nsecret = \"s\"",
            "algorithms = [\"RS256\"]\nsecret = \"s\"",
            "algorithms = [\"HS256\", \"RS256\"]\nsecret = \"s\"",
            "algorithms = [\"HS256\"]",
            "algorithms = [\"RS256\"]\npublic_key = \"not a pem\"",
            "algorithms = [\"RS256\"]\njwks_url = \"ftp://keys.example/jwks\"",
        ] {
            let error = testing::refusal(&format!("type = \"jwt-auth\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
        }
    }
}
