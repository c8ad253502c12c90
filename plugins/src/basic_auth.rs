//! `type = "basic-auth"`: `Authorization: Basic` checked against the consumers' stored
//! password hashes (argon2 or bcrypt — plain passwords are refused at config load), or
//! against the instance's own `users` (an htpasswd file's lines: one route's users, as
//! nginx's `auth_basic_user_file`, who are nobody's consumers).
//!
//! Hash checks are slow on purpose (tens of milliseconds); they run on Tokio's blocking
//! pool, never on a proxy thread, and a credential that verified is remembered for a few
//! minutes as a SHA-256 digest (of hash, user and password), so a busy client does not pay
//! the hash on every request and a changed password or hash invalidates it.

use crate::{order, parse_config, BuildContext, Ctx, Plugin, Reply};
use async_trait::async_trait;
use base64::Engine;
use parking_lot::Mutex;
use pingora_http::RequestHeader;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default = "default_true")]
    hide_credentials: bool,
    /// API permission: only these consumers may pass (empty: any known consumer).
    #[serde(default)]
    allow: Vec<String>,
    /// This instance's own users; when set (even empty: then nobody passes), the consumers
    /// are not asked.
    users: Option<Vec<crate::consumers::BasicCredential>>,
}

fn default_realm() -> String {
    "tidegate".into()
}
fn default_true() -> bool {
    true
}

/// Accepts only hash formats: argon2 PHC strings and bcrypt.
pub fn check_hash_format(hash: &str) -> Result<(), String> {
    if hash.starts_with("$argon2") {
        match argon2::PasswordHash::new(hash) {
            Ok(h) if h.hash.is_some() && h.salt.is_some() => Ok(()),
            Ok(_) => Err("password_hash is not a complete argon2 hash (salt and hash)".into()),
            Err(e) => Err(format!("password_hash is not a valid argon2 hash: {e}")),
        }
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) && hash.len() == 60 {
        Ok(())
    } else {
        Err("password_hash must be an argon2 ($argon2id$…) or bcrypt ($2b$…) hash; plain passwords are not accepted".into())
    }
}

fn verify(hash: &str, password: &[u8]) -> bool {
    if hash.starts_with("$argon2") {
        use argon2::PasswordVerifier;
        argon2::PasswordHash::new(hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password, &h)
                .is_ok()
        })
    } else {
        bcrypt::verify(password, hash).unwrap_or(false)
    }
}

const REMEMBER: Duration = Duration::from_secs(300);
const REMEMBER_MAX: usize = 10_000;

/// Credentials that verified recently, by digest (never the password itself).
#[derive(Default)]
pub struct VerifiedCache {
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl VerifiedCache {
    fn digest(hash: &str, user: &str, password: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(hash.as_bytes());
        h.update([0]);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password);
        h.finalize().into()
    }

    fn fresh(&self, key: &[u8; 32]) -> bool {
        self.entries
            .lock()
            .get(key)
            .is_some_and(|until| *until > Instant::now())
    }

    fn remember(&self, key: [u8; 32]) {
        let mut entries = self.entries.lock();
        if entries.len() >= REMEMBER_MAX {
            let now = Instant::now();
            entries.retain(|_, until| *until > now);
            if entries.len() >= REMEMBER_MAX {
                entries.clear();
            }
        }
        entries.insert(key, Instant::now() + REMEMBER);
    }
}

pub struct BasicAuth {
    name: String,
    challenge: String,
    hide: bool,
    allow: Vec<String>,
    /// Own users: username → hash.
    users: Option<HashMap<String, String>>,
    cx_consumers: Arc<crate::consumers::Consumers>,
    stores: Arc<crate::Stores>,
}

impl BasicAuth {
    pub fn build(
        name: &str,
        table: toml::Table,
        cx: &BuildContext,
    ) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        if config.realm.contains('"') {
            return Err(format!("plugin {name:?}: realm must not contain quotes"));
        }
        let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", config.realm);
        if config.users.is_some() && !config.allow.is_empty() {
            return Err(format!(
                "plugin {name:?}: `allow` names consumers, and with `users` no consumer is asked"
            ));
        }
        let users = config.users.map(|list| own_users(name, list)).transpose()?;
        Ok(Arc::new(BasicAuth {
            name: name.into(),
            challenge,
            hide: config.hide_credentials,
            allow: config.allow,
            users,
            cx_consumers: cx.consumers.clone(),
            stores: cx.stores.clone(),
        }))
    }
}

/// The instance's own `users`, by username, each with a name and a hash.
fn own_users(
    name: &str,
    list: Vec<crate::consumers::BasicCredential>,
) -> Result<HashMap<String, String>, String> {
    let mut users = HashMap::new();
    for user in list {
        let Some(username) = user.username.filter(|u| !u.is_empty() && !u.contains(':')) else {
            return Err(format!(
                "plugin {name:?}: each of `users` needs a username (without ':')"
            ));
        };
        check_hash_format(&user.password_hash)
            .map_err(|e| format!("plugin {name:?}: user {username:?}: {e}"))?;
        if users.insert(username.clone(), user.password_hash).is_some() {
            return Err(format!(
                "plugin {name:?}: user {username:?} is listed twice"
            ));
        }
    }
    Ok(users)
}

/// `(user, password)` from an `Authorization: Basic …` header.
fn credentials(req: &RequestHeader) -> Option<(String, Vec<u8>)> {
    let value = req
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

#[async_trait]
impl Plugin for BasicAuth {
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
        let challenge = |message: &str| Reply::challenge(&self.challenge, message);
        let (user, password) =
            credentials(req).ok_or_else(|| challenge("basic credentials are required"))?;
        let found = match &self.users {
            None => self
                .cx_consumers
                .basic(&user)
                .map(|(hash, consumer)| (hash, Some(consumer))),
            Some(own) => own.get(&user).map(|hash| (hash, None)),
        };
        let Some((hash, consumer)) = found else {
            // Same answer as a wrong password: which usernames exist is not told.
            return Err(challenge("the credentials are not valid"));
        };
        let key = VerifiedCache::digest(hash, &user, &password);
        if !self.stores.basic.fresh(&key) {
            let hash = hash.clone();
            let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
                .await
                .unwrap_or(false);
            if !ok {
                return Err(challenge("the credentials are not valid"));
            }
            self.stores.basic.remember(key);
        }
        match consumer {
            Some(consumer) => consumer.admit(&self.allow, cx),
            None => Ok(()),
        }
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
    use crate::{testing, Chain};

    #[test]
    fn only_hashes_are_accepted_and_verified() {
        let argon = {
            use argon2::password_hash::{PasswordHasher, SaltString};
            let salt = SaltString::encode_b64(b"fixed-test-salt!").unwrap();
            argon2::Argon2::default()
                .hash_password(b"correct horse", &salt)
                .unwrap()
                .to_string()
        };
        let bcrypt = bcrypt::hash("correct horse", 4).unwrap();
        for hash in [&argon, &bcrypt] {
            check_hash_format(hash).unwrap();
            assert!(verify(hash, b"correct horse"));
            assert!(!verify(hash, b"correct horsE"));
        }
        assert!(check_hash_format("correct horse").is_err());
        assert!(check_hash_format("$2b$short").is_err());
        assert!(check_hash_format("$argon2id$garbage").is_err());
    }

    const PASSWORD: &str = "correct horse";

    /// alice (tenant t1) with a bcrypt hash of PASSWORD (cost 4: fast enough for tests).
    fn plugin(extra: &str) -> Arc<dyn Plugin> {
        let hash = bcrypt::hash(PASSWORD, 4).unwrap();
        let cx = testing::context(&format!(
            "[[consumers]]\nname = \"alice\"\ntenant = \"t1\"\nbasic = {{ password_hash = \"{hash}\" }}\n"
        ));
        testing::try_plugin(&format!("type = \"basic-auth\"\n{extra}"), &cx).unwrap()
    }

    fn basic(user_password: &str) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        format!("Basic {encoded}")
    }

    async fn run(
        p: &Arc<dyn Plugin>,
        authorization: Option<&str>,
    ) -> (Result<(), Reply>, crate::RequestState) {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| ("authorization", a))
            .into_iter()
            .collect();
        let req = testing::request("GET", "/", &headers);
        testing::run(p, &req, "192.0.2.1").await
    }

    #[tokio::test]
    async fn valid_credentials_name_the_consumer_and_tenant() {
        let (result, state) = run(&plugin(""), Some(basic("alice:correct horse").as_str())).await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        assert_eq!(state.caller.tenant.as_deref(), Some("t1"));
    }

    #[tokio::test]
    async fn a_wrong_password_is_401_with_a_basic_challenge() {
        let (result, state) = run(&plugin(""), Some(basic("alice:correct horsE").as_str())).await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert_eq!(
            testing::header(&reply, "www-authenticate"),
            Some("Basic realm=\"tidegate\", charset=\"UTF-8\"")
        );
        assert_eq!(state.caller.consumer, None);
    }

    #[tokio::test]
    async fn an_unknown_user_gets_the_same_401_as_a_wrong_password() {
        let p = plugin("");
        let (unknown, _) = run(&p, Some(basic("mallory:correct horse").as_str())).await;
        let (wrong, _) = run(&p, Some(basic("alice:nope").as_str())).await;
        let (unknown, wrong) = (unknown.unwrap_err(), wrong.unwrap_err());
        assert_eq!(unknown.status, 401);
        assert_eq!(unknown.body, wrong.body);
    }

    #[tokio::test]
    async fn missing_or_malformed_credentials_are_401() {
        let p = plugin("");
        let no_colon = basic("alice");
        for authorization in [
            None,
            Some("Basic not*base64!"),
            Some(no_colon.as_str()),
            Some("Bearer YWxpY2U6Y29ycmVjdCBob3JzZQ=="),
            Some("Basic"),
        ] {
            let (result, _) = run(&p, authorization).await;
            assert_eq!(result.unwrap_err().status, 401, "{authorization:?}");
        }
    }

    #[tokio::test]
    async fn the_scheme_is_case_insensitive() {
        let header = basic("alice:correct horse").replacen("Basic", "bAsIc", 1);
        assert!(run(&plugin(""), Some(header.as_str())).await.0.is_ok());
    }

    #[tokio::test]
    async fn a_remembered_credential_lets_no_other_password_through() {
        let p = plugin("");
        assert!(run(&p, Some(basic("alice:correct horse").as_str()))
            .await
            .0
            .is_ok());
        assert!(run(&p, Some(basic("alice:correct horse").as_str()))
            .await
            .0
            .is_ok());
        let (result, _) = run(&p, Some(basic("alice:correct horse!").as_str())).await;
        assert_eq!(result.unwrap_err().status, 401);
    }

    #[tokio::test]
    async fn a_consumer_off_the_allow_list_is_403() {
        let (result, _) = run(
            &plugin("allow = [\"bob\"]"),
            Some(basic("alice:correct horse").as_str()),
        )
        .await;
        assert_eq!(result.unwrap_err().status, 403);
    }

    #[tokio::test]
    async fn the_authorization_header_is_removed_before_the_upstream() {
        for (extra, kept) in [("", false), ("hide_credentials = false", true)] {
            let chain = Chain::new(vec![plugin(extra)]);
            let authorization = basic("alice:correct horse");
            let mut req =
                testing::request("GET", "/", &[("authorization", authorization.as_str())]);
            let mut state = chain.start("r".into(), "192.0.2.1".into());
            chain.request(&req, &mut state).await.unwrap();
            chain.upstream_request(&mut req, &mut state);
            assert_eq!(req.headers.contains_key("authorization"), kept, "{extra:?}");
        }
    }

    #[tokio::test]
    async fn own_users_are_checked_instead_of_the_consumers_and_name_none() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let p = plugin(&format!(
            "users = [{{ username = \"ops\", password_hash = \"{hash}\" }}]"
        ));
        let (result, state) = run(&p, Some(basic("ops:s3cret").as_str())).await;
        result.unwrap();
        assert_eq!(state.caller.consumer, None);
        for wrong in ["ops:S3cret", "alice:correct horse"] {
            let (result, _) = run(&p, Some(basic(wrong).as_str())).await;
            assert_eq!(result.unwrap_err().status, 401, "{wrong}");
        }
        // An empty list lets nobody in (not every consumer).
        let (result, _) = run(
            &plugin("users = []"),
            Some(basic("alice:correct horse").as_str()),
        )
        .await;
        assert_eq!(result.unwrap_err().status, 401);
    }

    #[test]
    fn own_users_need_a_name_and_a_hash_and_exclude_allow() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        for (users, want) in [
            (format!("[{{ password_hash = \"{hash}\" }}]"), "needs a username"),
            ("[{ username = \"ops\", password_hash = \"$apr1$x$y\" }]".to_string(), "plain passwords"),
            (
                format!("[{{ username = \"a\", password_hash = \"{hash}\" }}, {{ username = \"a\", password_hash = \"{hash}\" }}]"),
                "listed twice",
            ),
        ] {
            let error = testing::refusal(&format!("type = \"basic-auth\"\nusers = {users}"));
            assert!(error.contains(want), "{error}");
        }
        let error = testing::refusal(&format!(
            "type = \"basic-auth\"\nallow = [\"alice\"]\nusers = [{{ username = \"ops\", password_hash = \"{hash}\" }}]"
        ));
        assert!(error.contains("`allow` names consumers"), "{error}");
    }

    #[test]
    fn a_realm_with_quotes_is_refused() {
        let error = testing::refusal("type = \"basic-auth\"\nrealm = 'my \"realm\"'");
        assert!(error.contains("quotes"), "{error}");
    }

    #[test]
    fn a_plain_password_in_the_consumers_is_refused() {
        let doc = "name = \"alice\"\nbasic = { password_hash = \"hunter22\" }";
        let config: crate::consumers::ConsumerConfig = toml::from_str(doc).unwrap();
        let error = crate::consumers::Consumers::build(&[config]).unwrap_err();
        assert!(
            error.contains("plain passwords are not accepted"),
            "{error}"
        );
    }
}
