//! Replay protection for signed requests: a signature (or nonce) may be used once inside its
//! validity window. Locally that is a map of digests with expiry times; for a fleet it is one
//! `SET key NX PX window` in Redis, falling back to the local map while Redis fails (then a
//! replay could pass once per other gateway — said in the log and the Redis metrics).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Digests kept at most; beyond it (after dropping expired ones) new signatures are refused
/// rather than protection being dropped.
const CAPACITY: usize = 1_000_000;

#[derive(Default)]
pub struct LocalReplayStore {
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    First,
    Replay,
    /// The store is full of unexpired entries.
    Saturated,
}

impl LocalReplayStore {
    /// Records `key` for `window`; says whether it was already there.
    pub fn check(&self, key: [u8; 32], window: Duration) -> Seen {
        let now = Instant::now();
        let mut seen = self.seen.lock();
        if let Some(until) = seen.get(&key) {
            if *until > now {
                return Seen::Replay;
            }
        }
        if seen.len() >= CAPACITY {
            seen.retain(|_, until| *until > now);
            if seen.len() >= CAPACITY {
                return Seen::Saturated;
            }
        }
        seen.insert(key, now + window);
        Seen::First
    }
}

fn script() -> &'static redis::Script {
    static SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
    SCRIPT.get_or_init(|| {
        redis::Script::new(
            "if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return {1} else return {0} end",
        )
    })
}

/// The fleet-wide check; `None` when Redis cannot answer (decide locally).
pub async fn check_redis(
    redis: &crate::redis_client::RedisClient,
    plugin: &str,
    key: &[u8; 32],
    window: Duration,
) -> Option<Seen> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let answer = redis
        .eval(
            script(),
            &[format!("tidegate:replay:{plugin}:{hex}")],
            &[window.as_millis() as u64],
        )
        .await?;
    Some(if answer.first() == Some(&1) {
        Seen::First
    } else {
        Seen::Replay
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_once_per_window() {
        let store = LocalReplayStore::default();
        assert_eq!(store.check([1; 32], Duration::from_secs(60)), Seen::First);
        assert_eq!(store.check([1; 32], Duration::from_secs(60)), Seen::Replay);
        assert_eq!(store.check([2; 32], Duration::from_millis(1)), Seen::First);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(store.check([2; 32], Duration::from_millis(1)), Seen::First);
    }
}
