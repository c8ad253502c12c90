//! JWKS URLs for jwt-auth: the issuer's published public keys, fetched and cached by key id.
//! A set is refreshed when older than its refresh interval, and at once (at most every few
//! seconds) when a token names a key id the cache does not have — that is how a key rotation
//! is followed without waiting. A failed fetch keeps the keys already known. Sets live
//! outside snapshots (by URL), so a config reload does not refetch them.

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::DecodingKey;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Unknown key ids trigger a fetch at most this often (a flood of made-up ids must not
/// become a flood of fetches).
const UNKNOWN_KID_REFETCH: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Family {
    Rsa,
    Ec,
}

#[derive(Default)]
pub struct JwksStore {
    sets: Mutex<HashMap<String, Arc<JwksCache>>>,
}

impl JwksStore {
    pub fn get(&self, url: &str, refresh: Duration) -> Arc<JwksCache> {
        self.sets
            .lock()
            .entry(url.to_string())
            .or_insert_with(|| {
                Arc::new(JwksCache {
                    url: url.to_string(),
                    refresh,
                    keys: Mutex::new(Arc::new(HashMap::new())),
                    fetched_at: Mutex::new(None),
                    attempted_at: Mutex::new(None),
                    fetching: tokio::sync::Mutex::new(()),
                    http: reqwest::Client::builder()
                        .timeout(FETCH_TIMEOUT)
                        .build()
                        .expect("http client"),
                })
            })
            .clone()
    }
}

type Keys = HashMap<String, (Family, DecodingKey)>;

pub struct JwksCache {
    url: String,
    refresh: Duration,
    keys: Mutex<Arc<Keys>>,
    fetched_at: Mutex<Option<Instant>>,
    attempted_at: Mutex<Option<Instant>>,
    fetching: tokio::sync::Mutex<()>,
    http: reqwest::Client,
}

impl JwksCache {
    /// The key for a token's `kid` (or the only key of `family` when the token names none).
    pub async fn key(&self, kid: Option<&str>, family: Family) -> Result<DecodingKey, String> {
        let stale = self
            .fetched_at
            .lock()
            .is_none_or(|t| t.elapsed() >= self.refresh);
        if stale {
            self.fetch(false).await;
        }
        if let Some(key) = self.lookup(kid, family) {
            return Ok(key);
        }
        // Maybe a key rotated in since the last fetch.
        if self.fetch(true).await {
            if let Some(key) = self.lookup(kid, family) {
                return Ok(key);
            }
        }
        Err(match kid {
            Some(kid) => format!("no key {kid:?} in the issuer's key set"),
            None => "the token names no key id and the key set has not exactly one key".into(),
        })
    }

    fn lookup(&self, kid: Option<&str>, family: Family) -> Option<DecodingKey> {
        let keys = self.keys.lock().clone();
        match kid {
            Some(kid) => keys
                .get(kid)
                .filter(|(f, _)| *f == family)
                .map(|(_, k)| k.clone()),
            None => {
                let mut of_family = keys.values().filter(|(f, _)| *f == family);
                match (of_family.next(), of_family.next()) {
                    (Some((_, k)), None) => Some(k.clone()),
                    _ => None,
                }
            }
        }
    }

    /// Fetches the set (one fetch at a time). `unknown_kid` fetches are rate limited.
    /// Returns whether new keys were taken.
    async fn fetch(&self, unknown_kid: bool) -> bool {
        let _one = self.fetching.lock().await;
        if unknown_kid
            && self
                .attempted_at
                .lock()
                .is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFETCH)
        {
            return false;
        }
        if !unknown_kid
            && self
                .fetched_at
                .lock()
                .is_some_and(|t| t.elapsed() < self.refresh)
        {
            // Another request refreshed it while this one waited.
            return true;
        }
        *self.attempted_at.lock() = Some(Instant::now());
        match self.download().await {
            Ok(keys) => {
                *self.keys.lock() = Arc::new(keys);
                *self.fetched_at.lock() = Some(Instant::now());
                true
            }
            Err(e) => {
                log::warn!("jwks {}: {e}; keeping the keys known so far", self.url);
                false
            }
        }
    }

    async fn download(&self) -> Result<Keys, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let text = response.text().await.map_err(|e| e.to_string())?;
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| format!("not a JWK set: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let family = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Family::Rsa,
                AlgorithmParameters::EllipticCurve(_) => Family::Ec,
                // Symmetric or other keys have no place in a published set.
                _ => continue,
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (family, key));
            }
        }
        if keys.is_empty() {
            return Err("the set has no usable RSA or EC key with a kid".into());
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::DecodingKeyKind;

    const URL: &str = "https://id.example/.well-known/jwks.json";

    /// A cache that holds `keys` (each a secret equal to its kid), fetched and attempted just
    /// now, so lookups never go to the network.
    fn cache_with(keys: &[(&str, Family)]) -> Arc<JwksCache> {
        let cache = JwksStore::default().get(URL, Duration::from_secs(300));
        let keys: Keys = keys
            .iter()
            .map(|(kid, family)| {
                let key = DecodingKey::from_secret(kid.as_bytes());
                (kid.to_string(), (*family, key))
            })
            .collect();
        *cache.keys.lock() = Arc::new(keys);
        *cache.fetched_at.lock() = Some(Instant::now());
        *cache.attempted_at.lock() = Some(Instant::now());
        cache
    }

    fn secret_of(key: &DecodingKey) -> Vec<u8> {
        match key.kind() {
            DecodingKeyKind::SecretOrDer(bytes) => bytes.clone(),
            other => panic!("unexpected key kind {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_key_is_found_by_kid_within_its_family() {
        let cache = cache_with(&[("r1", Family::Rsa), ("e1", Family::Ec)]);
        let key = cache.key(Some("r1"), Family::Rsa).await.unwrap();
        assert_eq!(secret_of(&key), b"r1");
        let key = cache.key(Some("e1"), Family::Ec).await.unwrap();
        assert_eq!(secret_of(&key), b"e1");
        let wrong_family = cache.key(Some("r1"), Family::Ec).await.unwrap_err();
        assert!(wrong_family.contains("\"r1\""), "{wrong_family}");
    }

    #[tokio::test]
    async fn an_unknown_kid_is_refused_without_refetching_too_often() {
        let cache = cache_with(&[("r1", Family::Rsa)]);
        let error = cache.key(Some("r9"), Family::Rsa).await.unwrap_err();
        assert_eq!(error, "no key \"r9\" in the issuer's key set");
    }

    #[tokio::test]
    async fn a_token_without_kid_uses_the_only_key_of_its_family() {
        let cache = cache_with(&[("r1", Family::Rsa), ("e1", Family::Ec), ("e2", Family::Ec)]);
        let key = cache.key(None, Family::Rsa).await.unwrap();
        assert_eq!(secret_of(&key), b"r1");
        let error = cache.key(None, Family::Ec).await.unwrap_err();
        assert!(error.contains("not exactly one key"), "{error}");
    }

    #[tokio::test]
    async fn the_store_keeps_one_cache_per_url() {
        let store = JwksStore::default();
        let a = store.get(URL, Duration::from_secs(300));
        assert!(Arc::ptr_eq(&a, &store.get(URL, Duration::from_secs(60))));
        assert!(!Arc::ptr_eq(
            &a,
            &store.get("https://other.example/jwks", Duration::from_secs(300))
        ));
        // The first registration's refresh interval stays.
        assert_eq!(a.refresh, Duration::from_secs(300));
    }
}
