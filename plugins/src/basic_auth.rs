//! `type = "basic-auth"`: `Authorization: Basic` checked against the consumers' stored
//! password hashes (argon2 or bcrypt — plain passwords are refused at config load).
//!
//! Hash checks are slow on purpose (tens of milliseconds); they run on Tokio's blocking
//! pool, never on a proxy thread, and a credential that verified is remembered for a few
//! minutes as a SHA-256 digest (of hash, user and password), so a busy client does not pay
//! the hash on every request and a changed password or hash invalidates it.

use crate::{order, parse_config, BuildContext, Plugin, Reply, RequestState};
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
        Ok(Arc::new(BasicAuth {
            name: name.into(),
            challenge,
            hide: config.hide_credentials,
            allow: config.allow,
            cx_consumers: cx.consumers.clone(),
            stores: cx.stores.clone(),
        }))
    }
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

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        let challenge = |message: &str| Reply::challenge(&self.challenge, message);
        let (user, password) =
            credentials(req).ok_or_else(|| challenge("basic credentials are required"))?;
        let Some((hash, consumer)) = self.cx_consumers.basic(&user) else {
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
        consumer.admit(&self.allow, state)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
