//! Consumers (callers) and their tenant, defined once under `[[consumers]]` and used by the
//! authentication plugins, the limits (`key = "consumer"` / `"tenant"`) and the access log.

use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    pub tenant: Option<String>,
    /// API keys for key-auth: literal, `env:VAR` or `file:PATH` (the file's trimmed text).
    #[serde(default)]
    pub keys: Vec<String>,
    /// basic-auth: `{ username = "alice", password_hash = "$argon2id$…" }`; hashes only
    /// (argon2 PHC strings or bcrypt `$2b$`), never a password.
    pub basic: Option<BasicCredential>,
    /// hmac-auth: `{ key_id = "alice", secret_env = "ALICE_HMAC_SECRET" }` (or `secret =`
    /// literal / `env:` / `file:`).
    pub hmac: Option<HmacCredential>,
    /// jwt-auth: tokens with this issuer and subject are this consumer (and its tenant).
    pub jwt: Option<JwtIdentity>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIdentity {
    pub issuer: Option<String>,
    pub subject: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    /// Defaults to the consumer's name.
    pub username: Option<String>,
    pub password_hash: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacCredential {
    pub key_id: String,
    pub secret_env: Option<String>,
    pub secret: Option<String>,
}

#[derive(Debug)]
pub struct Consumer {
    pub name: String,
    pub tenant: Option<String>,
}

impl Consumer {
    /// An authenticated consumer passes a route's allow list (API permission; empty allows
    /// every consumer) and becomes the request's consumer and tenant.
    pub fn admit(
        &self,
        allow: &[String],
        state: &mut crate::RequestState,
    ) -> Result<(), crate::Reply> {
        if !allow.is_empty() && !allow.contains(&self.name) {
            return Err(crate::Reply::json(
                403,
                "Forbidden",
                "this consumer may not call this route",
            ));
        }
        state.consumer = Some(self.name.clone());
        state.tenant = self.tenant.clone();
        Ok(())
    }
}

/// The compiled consumers of one snapshot.
#[derive(Debug, Default)]
pub struct Consumers {
    keys: Vec<(Vec<u8>, Arc<Consumer>)>,
    basic: std::collections::HashMap<String, (String, Arc<Consumer>)>,
    hmac: std::collections::HashMap<String, (Vec<u8>, Arc<Consumer>)>,
    jwt: Vec<(JwtIdentity, Arc<Consumer>)>,
}

/// Resolves a secret reference: `env:VAR`, `file:PATH`, or the literal itself.
pub fn secret(reference: &str) -> Result<String, String> {
    if let Some(var) = reference.strip_prefix("env:") {
        std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
    } else if let Some(path) = reference.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read secret file {path}: {e}"))
    } else {
        Ok(reference.to_string())
    }
}

impl Consumers {
    pub fn build(configs: &[ConsumerConfig]) -> Result<Consumers, String> {
        let mut keys: Vec<(Vec<u8>, Arc<Consumer>)> = Vec::new();
        let mut basic = std::collections::HashMap::new();
        let mut hmac = std::collections::HashMap::new();
        let mut jwt = Vec::new();
        let mut names = std::collections::HashSet::new();
        for c in configs {
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err(format!("consumer name {:?} is empty or used twice", c.name));
            }
            let consumer = Arc::new(Consumer {
                name: c.name.clone(),
                tenant: c.tenant.clone(),
            });
            for k in &c.keys {
                let key = secret(k).map_err(|e| format!("consumer {:?}: {e}", c.name))?;
                if key.len() < 8 {
                    return Err(format!(
                        "consumer {:?}: API keys must have at least 8 characters",
                        c.name
                    ));
                }
                if keys.iter().any(|(existing, _)| existing == key.as_bytes()) {
                    return Err(format!("consumer {:?}: an API key is used twice", c.name));
                }
                keys.push((key.into_bytes(), consumer.clone()));
            }
            if let Some(b) = &c.basic {
                let username = b.username.clone().unwrap_or_else(|| c.name.clone());
                crate::basic_auth::check_hash_format(&b.password_hash)
                    .map_err(|e| format!("consumer {:?}: {e}", c.name))?;
                if basic
                    .insert(username, (b.password_hash.clone(), consumer.clone()))
                    .is_some()
                {
                    return Err(format!(
                        "consumer {:?}: basic-auth username used twice",
                        c.name
                    ));
                }
            }
            if let Some(h) = &c.hmac {
                let reference = match (&h.secret_env, &h.secret) {
                    (Some(var), None) => format!("env:{var}"),
                    (None, Some(s)) => s.clone(),
                    _ => {
                        return Err(format!(
                            "consumer {:?}: hmac needs one of secret_env or secret",
                            c.name
                        ))
                    }
                };
                let secret =
                    secret(&reference).map_err(|e| format!("consumer {:?}: {e}", c.name))?;
                if secret.len() < 16 {
                    return Err(format!(
                        "consumer {:?}: hmac secrets must have at least 16 characters",
                        c.name
                    ));
                }
                if hmac
                    .insert(h.key_id.clone(), (secret.into_bytes(), consumer.clone()))
                    .is_some()
                {
                    return Err(format!("consumer {:?}: hmac key_id used twice", c.name));
                }
            }
            if let Some(j) = &c.jwt {
                jwt.push((j.clone(), consumer.clone()));
            }
        }
        Ok(Consumers {
            keys,
            basic,
            hmac,
            jwt,
        })
    }

    /// The consumer a verified token's issuer and subject belong to.
    pub fn by_jwt(&self, issuer: Option<&str>, subject: &str) -> Option<Arc<Consumer>> {
        self.jwt
            .iter()
            .find(|(id, _)| {
                id.subject == subject && id.issuer.as_deref().is_none_or(|i| Some(i) == issuer)
            })
            .map(|(_, c)| c.clone())
    }

    /// The stored hash and consumer of a basic-auth username.
    pub fn basic(&self, username: &str) -> Option<&(String, Arc<Consumer>)> {
        self.basic.get(username)
    }

    /// The secret and consumer of an hmac key id.
    pub fn hmac(&self, key_id: &str) -> Option<&(Vec<u8>, Arc<Consumer>)> {
        self.hmac.get(key_id)
    }

    /// The consumer owning `presented`. Every key is compared in constant time and all are
    /// compared, so timing tells nothing about which key, or how much of one, matched.
    pub fn by_key(&self, presented: &[u8]) -> Option<Arc<Consumer>> {
        let mut found = None;
        for (key, consumer) in &self.keys {
            if constant_time_eq(key, presented) {
                found = Some(consumer.clone());
            }
        }
        found
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
