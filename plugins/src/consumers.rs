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
    pub fn admit(&self, allow: &[String], caller: &mut crate::Caller) -> Result<(), crate::Reply> {
        if !allow.is_empty() && !allow.contains(&self.name) {
            return Err(crate::Reply::json(
                403,
                "Forbidden",
                "this consumer may not call this route",
            ));
        }
        caller.consumer = Some(self.name.clone());
        caller.tenant = self.tenant.clone();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn build(doc: &str) -> Result<Consumers, String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            consumers: Vec<ConsumerConfig>,
        }
        let doc: Doc = toml::from_str(doc).expect("consumers TOML");
        Consumers::build(&doc.consumers)
    }

    fn refused(doc: &str) -> String {
        build(doc).expect_err("should be refused")
    }

    const BCRYPT: &str = "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234";

    #[test]
    fn keys_find_their_consumer_and_only_whole_keys_match() {
        let c = build(
            "[[consumers]]\nname = \"alice\"\ntenant = \"t1\"\nkeys = [\"k-alice-0001\", \"k-alice-0002\"]\n\
             [[consumers]]\nname = \"bob\"\nkeys = [\"k-bob-000001\"]\n",
        )
        .unwrap();
        let alice = c.by_key(b"k-alice-0002").unwrap();
        assert_eq!(
            (alice.name.as_str(), alice.tenant.as_deref()),
            ("alice", Some("t1"))
        );
        assert_eq!(c.by_key(b"k-bob-000001").unwrap().name, "bob");
        assert!(c.by_key(b"k-alice-000").is_none());
        assert!(c.by_key(b"k-alice-00011").is_none());
        assert!(c.by_key(b"").is_none());
    }

    #[test]
    fn duplicate_names_and_keys_and_short_keys_are_refused() {
        let twice = refused("[[consumers]]\nname = \"a\"\n[[consumers]]\nname = \"a\"\n");
        assert!(twice.contains("used twice"), "{twice}");
        assert!(refused("[[consumers]]\nname = \"\"\n").contains("empty"));
        let shared = refused(
            "[[consumers]]\nname = \"a\"\nkeys = [\"shared-key-1\"]\n[[consumers]]\nname = \"b\"\nkeys = [\"shared-key-1\"]\n",
        );
        assert!(
            shared.contains("\"b\"") && shared.contains("used twice"),
            "{shared}"
        );
        let short = refused("[[consumers]]\nname = \"a\"\nkeys = [\"short\"]\n");
        assert!(short.contains("at least 8"), "{short}");
    }

    #[test]
    fn basic_credentials_must_be_hashes_with_unique_usernames() {
        let plain =
            refused("[[consumers]]\nname = \"a\"\nbasic = { password_hash = \"hunter22\" }\n");
        assert!(
            plain.contains("plain passwords are not accepted"),
            "{plain}"
        );
        let c = build(&format!(
            "[[consumers]]\nname = \"alice\"\nbasic = {{ password_hash = \"{BCRYPT}\" }}\n\
             [[consumers]]\nname = \"bob\"\nbasic = {{ username = \"robert\", password_hash = \"{BCRYPT}\" }}\n"
        ))
        .unwrap();
        assert_eq!(c.basic("alice").unwrap().1.name, "alice");
        assert_eq!(c.basic("robert").unwrap().1.name, "bob");
        assert!(c.basic("bob").is_none());
        let twice = refused(&format!(
            "[[consumers]]\nname = \"alice\"\nbasic = {{ password_hash = \"{BCRYPT}\" }}\n\
             [[consumers]]\nname = \"bob\"\nbasic = {{ username = \"alice\", password_hash = \"{BCRYPT}\" }}\n"
        ));
        assert!(twice.contains("username used twice"), "{twice}");
    }

    #[test]
    fn hmac_credentials_need_one_long_enough_secret_and_unique_key_ids() {
        let c = build(
            "[[consumers]]\nname = \"alice\"\nhmac = { key_id = \"k1\", secret = \"0123456789abcdef\" }\n",
        )
        .unwrap();
        let (key, consumer) = c.hmac("k1").unwrap();
        assert_eq!(
            (key.as_slice(), consumer.name.as_str()),
            (&b"0123456789abcdef"[..], "alice")
        );
        assert!(c.hmac("k2").is_none());
        for (doc, says) in [
            (
                "hmac = { key_id = \"k1\", secret = \"too-short\" }",
                "at least 16",
            ),
            ("hmac = { key_id = \"k1\" }", "one of secret_env or secret"),
            (
                "hmac = { key_id = \"k1\", secret = \"0123456789abcdef\", secret_env = \"X\" }",
                "one of secret_env or secret",
            ),
            (
                "hmac = { key_id = \"k1\", secret_env = \"TIDEGATE_TEST_UNSET_HMAC_SECRET\" }",
                "TIDEGATE_TEST_UNSET_HMAC_SECRET is not set",
            ),
        ] {
            let error = refused(&format!("[[consumers]]\nname = \"a\"\n{doc}\n"));
            assert!(error.contains(says), "{doc}: {error}");
        }
        let twice = refused(
            "[[consumers]]\nname = \"a\"\nhmac = { key_id = \"k1\", secret = \"0123456789abcdef\" }\n\
             [[consumers]]\nname = \"b\"\nhmac = { key_id = \"k1\", secret = \"fedcba9876543210\" }\n",
        );
        assert!(twice.contains("key_id used twice"), "{twice}");
    }

    #[test]
    fn secrets_are_literal_env_or_file() {
        assert_eq!(secret("plain-value").unwrap(), "plain-value");
        std::env::set_var("TIDEGATE_TEST_CONSUMER_SECRET", "from-env");
        assert_eq!(
            secret("env:TIDEGATE_TEST_CONSUMER_SECRET").unwrap(),
            "from-env"
        );
        let unset = secret("env:TIDEGATE_TEST_NEVER_SET").unwrap_err();
        assert!(unset.contains("TIDEGATE_TEST_NEVER_SET"), "{unset}");
        let path = std::env::temp_dir().join(format!("tidegate-secret-{}", std::process::id()));
        std::fs::write(&path, "  from-file\n").unwrap();
        let read = secret(&format!("file:{}", path.display()));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(read.unwrap(), "from-file");
        let missing = secret("file:/nonexistent/tidegate/secret").unwrap_err();
        assert!(missing.contains("cannot read secret file"), "{missing}");
    }

    #[test]
    fn keys_may_come_from_the_environment() {
        std::env::set_var("TIDEGATE_TEST_CONSUMER_KEY", "k-from-env-01");
        let c = build("[[consumers]]\nname = \"a\"\nkeys = [\"env:TIDEGATE_TEST_CONSUMER_KEY\"]\n")
            .unwrap();
        assert_eq!(c.by_key(b"k-from-env-01").unwrap().name, "a");
        assert!(c.by_key(b"env:TIDEGATE_TEST_CONSUMER_KEY").is_none());
    }

    #[test]
    fn jwt_identities_match_subject_and_issuer_if_given() {
        let c = build(
            "[[consumers]]\nname = \"alice\"\njwt = { issuer = \"https://id.example\", subject = \"u-1\" }\n\
             [[consumers]]\nname = \"svc\"\njwt = { subject = \"u-2\" }\n",
        )
        .unwrap();
        let name = |iss: Option<&str>, sub: &str| c.by_jwt(iss, sub).map(|c| c.name.clone());
        assert_eq!(
            name(Some("https://id.example"), "u-1").as_deref(),
            Some("alice")
        );
        assert_eq!(name(Some("https://other.example"), "u-1"), None);
        assert_eq!(name(None, "u-1"), None);
        assert_eq!(
            name(Some("https://any.example"), "u-2").as_deref(),
            Some("svc")
        );
        assert_eq!(name(None, "u-2").as_deref(), Some("svc"));
        assert_eq!(name(None, "u-3"), None);
    }

    #[test]
    fn admitting_sets_consumer_and_tenant_unless_off_the_allow_list() {
        let alice = Consumer {
            name: "alice".into(),
            tenant: Some("t1".into()),
        };
        let mut caller = crate::Caller::default();
        let reply = alice.admit(&["bob".to_string()], &mut caller).unwrap_err();
        assert_eq!(reply.status, 403);
        assert_eq!(caller.consumer, None);
        alice.admit(&[], &mut caller).unwrap();
        alice
            .admit(&["bob".to_string(), "alice".to_string()], &mut caller)
            .unwrap();
        assert_eq!(caller.consumer.as_deref(), Some("alice"));
        assert_eq!(caller.tenant.as_deref(), Some("t1"));
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
