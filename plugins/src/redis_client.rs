//! The Redis connection cluster limits share, with a strict time budget and a breaker: after
//! a failure or a slow answer Redis is left alone for a second (callers fall back to local
//! limits meanwhile), so an outage costs requests nothing but the fallback.

use parking_lot::Mutex;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `[redis]`
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://127.0.0.1:6379/0`; empty: no Redis (cluster limits run locally).
    pub url: String,
    /// Budget for one limit check, connect included.
    pub timeout_ms: u64,
    /// Gateways in the fleet: while Redis is out, each enforces limit / fleet_size.
    pub fleet_size: u32,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: String::new(),
            timeout_ms: 5,
            fleet_size: 1,
        }
    }
}

const BREAK_FOR: Duration = Duration::from_secs(1);

pub struct RedisClient {
    config: RedisConfig,
    client: redis::Client,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
    connecting: tokio::sync::Mutex<()>,
    started: Instant,
    /// Milliseconds since `started` before which Redis is not tried.
    broken_until: AtomicU64,
    /// So an outage is logged once, and its end once.
    out: AtomicBool,
}

impl RedisClient {
    pub fn fleet_size(&self) -> u32 {
        self.config.fleet_size.max(1)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `script` with `keys`/`args`; `None` means: decide locally.
    pub async fn eval(
        &self,
        script: &redis::Script,
        keys: &[String],
        args: &[u64],
    ) -> Option<Vec<i64>> {
        if self.now_ms() < self.broken_until.load(Ordering::Relaxed) {
            return None;
        }
        let budget = Duration::from_millis(self.config.timeout_ms.max(1));
        let attempt = async {
            let mut call = script.prepare_invoke();
            for k in keys {
                call.key(k);
            }
            for a in args {
                call.arg(*a);
            }
            // A pooled connection may have died with a Redis restart: one retry on a fresh
            // connection, inside the same budget, before calling Redis out.
            for _ in 0..2 {
                let (mut conn, fresh) = self.connection().await?;
                match call.invoke_async::<Vec<i64>>(&mut conn).await {
                    Ok(v) => return Some(v),
                    Err(_) if !fresh => *self.conn.lock() = None,
                    Err(_) => return None,
                }
            }
            None
        };
        match tokio::time::timeout(budget, attempt).await {
            Ok(Some(v)) => {
                if self.out.swap(false, Ordering::Relaxed) {
                    log::info!("redis {} is back: cluster limits resume", self.config.url);
                }
                crate::metrics::get().redis_up.set(1);
                Some(v)
            }
            _ => {
                self.broken_until.store(
                    self.now_ms() + BREAK_FOR.as_millis() as u64,
                    Ordering::Relaxed,
                );
                *self.conn.lock() = None;
                if !self.out.swap(true, Ordering::Relaxed) {
                    log::warn!(
                        "redis {} failed or was slower than {budget:?}: cluster limits fall back to local limits / {}",
                        self.config.url,
                        self.fleet_size()
                    );
                }
                crate::metrics::get().redis_up.set(0);
                None
            }
        }
    }

    /// The shared connection, and whether it was just made.
    async fn connection(&self) -> Option<(redis::aio::MultiplexedConnection, bool)> {
        if let Some(c) = self.conn.lock().clone() {
            return Some((c, false));
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.conn.lock().clone() {
            return Some((c, false));
        }
        let c = self.client.get_multiplexed_async_connection().await.ok()?;
        *self.conn.lock() = Some(c.clone());
        Some((c, true))
    }
}

/// The current Redis client, replaced when `[redis]` changes (plugins look it up per
/// request, so they follow).
#[derive(Default)]
pub struct RedisSlot {
    current: Mutex<Option<Arc<RedisClient>>>,
}

impl RedisSlot {
    pub fn get(&self) -> Option<Arc<RedisClient>> {
        self.current.lock().clone()
    }

    pub fn configure(&self, config: &RedisConfig) -> Result<(), String> {
        let mut current = self.current.lock();
        if current.as_ref().is_some_and(|c| &c.config == config) {
            return Ok(());
        }
        if config.url.is_empty() {
            *current = None;
            return Ok(());
        }
        let client =
            redis::Client::open(config.url.as_str()).map_err(|e| format!("bad redis url: {e}"))?;
        *current = Some(Arc::new(RedisClient {
            config: config.clone(),
            client,
            conn: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            broken_until: AtomicU64::new(0),
            out: AtomicBool::new(false),
        }));
        Ok(())
    }
}

pub fn validate_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Ok(());
    }
    redis::Client::open(url)
        .map(|_| ())
        .map_err(|e| format!("bad redis url {url:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls_are_accepted_and_others_refused() {
        for ok in [
            "",
            "redis://127.0.0.1:6379/0",
            "redis://:secret@redis.internal:6380",
            "redis://localhost",
        ] {
            assert_eq!(validate_url(ok), Ok(()), "{ok}");
        }
        for bad in ["http://127.0.0.1:6379", "127.0.0.1:6379", "not a url"] {
            let error = validate_url(bad).unwrap_err();
            assert!(error.starts_with("bad redis url"), "{bad}: {error}");
            assert!(error.contains(&format!("{bad:?}")), "{bad}: {error}");
        }
    }

    #[test]
    fn the_defaults_are_no_redis_a_5_ms_budget_and_a_fleet_of_one() {
        let config: RedisConfig = toml::from_str("").unwrap();
        assert_eq!(config, RedisConfig::default());
        assert_eq!(
            (config.url.as_str(), config.timeout_ms, config.fleet_size),
            ("", 5, 1)
        );
        assert!(toml::from_str::<RedisConfig>("uri = \"redis://x\"").is_err());
    }

    #[test]
    fn the_slot_follows_the_configuration() {
        let slot = RedisSlot::default();
        assert!(slot.get().is_none());
        let config = RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            fleet_size: 0,
            ..RedisConfig::default()
        };
        slot.configure(&config).unwrap();
        let first = slot.get().unwrap();
        // A fleet size of 0 counts as 1 (limits are divided by it).
        assert_eq!(first.fleet_size(), 1);
        // The same configuration keeps the client (and its connection).
        slot.configure(&config).unwrap();
        assert!(Arc::ptr_eq(&first, &slot.get().unwrap()));
        let bigger = RedisConfig {
            fleet_size: 3,
            ..config.clone()
        };
        slot.configure(&bigger).unwrap();
        assert_eq!(slot.get().unwrap().fleet_size(), 3);
        assert!(!Arc::ptr_eq(&first, &slot.get().unwrap()));
        // A bad URL leaves the current client; an empty one removes it.
        let bad = RedisConfig {
            url: "http://nope".into(),
            ..config.clone()
        };
        assert!(slot
            .configure(&bad)
            .unwrap_err()
            .starts_with("bad redis url"));
        assert_eq!(slot.get().unwrap().fleet_size(), 3);
        slot.configure(&RedisConfig::default()).unwrap();
        assert!(slot.get().is_none());
    }

    #[tokio::test]
    async fn a_broken_client_answers_none_without_calling_redis() {
        let slot = RedisSlot::default();
        slot.configure(&RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            ..RedisConfig::default()
        })
        .unwrap();
        let client = slot.get().unwrap();
        client.broken_until.store(u64::MAX, Ordering::Relaxed);
        let script = redis::Script::new("return {1}");
        assert_eq!(client.eval(&script, &["k".to_string()], &[1]).await, None);
        // A failed attempt would have re-armed the breaker for a second from now.
        assert_eq!(client.broken_until.load(Ordering::Relaxed), u64::MAX);
        assert!(client.conn.lock().is_none());
    }
}
