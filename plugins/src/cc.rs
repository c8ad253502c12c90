//! `type = "cc-protection"`: flood (CC) protection. A key (the client IP by default) that
//! exceeds its rate is banned for a while and answered 429 (or 403) without reaching the
//! upstream; allow-listed networks are never limited.

use crate::key::KeySource;
use crate::rate_limit::Window;
use crate::{metrics, order, parse_config, Plugin, Reply, RequestState, Stores};
use async_trait::async_trait;
use parking_lot::Mutex;
use pingora_http::RequestHeader;
use pingora_limits::rate::Rate;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_key")]
    key: String,
    rate: Window,
    #[serde(default = "default_ban")]
    ban_seconds: u64,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default = "default_status")]
    status: u16,
}

fn default_key() -> String {
    "client_ip".into()
}
fn default_ban() -> u64 {
    60
}
fn default_status() -> u16 {
    429
}

/// Bans by plugin and key, outside snapshots so a reload does not pardon anyone.
#[derive(Default)]
pub struct BanStore {
    bans: Mutex<HashMap<(String, String), Instant>>,
}

impl BanStore {
    fn banned_until(&self, plugin: &str, key: &str) -> Option<Instant> {
        let bans = self.bans.lock();
        bans.get(&(plugin.to_string(), key.to_string()))
            .copied()
            .filter(|until| *until > Instant::now())
    }

    fn ban(&self, plugin: &str, key: &str, until: Instant) {
        let mut bans = self.bans.lock();
        if bans.len() > 10_000 {
            let now = Instant::now();
            bans.retain(|_, u| *u > now);
        }
        bans.insert((plugin.to_string(), key.to_string()), until);
    }
}

pub struct CcProtection {
    name: String,
    key: KeySource,
    limit: u64,
    rate: Arc<Rate>,
    ban: Duration,
    allow: Vec<ipnet::IpNet>,
    status: u16,
    stores: Arc<Stores>,
}

impl CcProtection {
    pub fn build(
        name: &str,
        table: toml::Table,
        stores: &Arc<Stores>,
    ) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let key = KeySource::parse(&config.key).map_err(|e| format!("plugin {name:?}: {e}"))?;
        let allow = config
            .allow
            .iter()
            .map(|c| {
                crate::key::parse_cidr(c).map_err(|e| format!("plugin {name:?}: {e} in allow"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ![403, 429].contains(&config.status) {
            return Err(format!("plugin {name:?}: status must be 429 or 403"));
        }
        Ok(Arc::new(CcProtection {
            name: name.to_string(),
            key,
            limit: config.rate.count,
            rate: stores
                .limits
                .rate(&format!("cc:{name}"), config.rate.per.duration()),
            ban: Duration::from_secs(config.ban_seconds),
            allow,
            status: config.status,
            stores: stores.clone(),
        }))
    }

    fn refuse(&self, until: Instant) -> Reply {
        let secs = until
            .saturating_duration_since(Instant::now())
            .as_secs()
            .max(1);
        let mut reply = Reply::json(
            self.status,
            if self.status == 403 {
                "Forbidden"
            } else {
                "Too Many Requests"
            },
            &format!("too many requests: blocked for {secs} s ({})", self.name),
        );
        reply
            .headers
            .push((http::header::RETRY_AFTER, http::HeaderValue::from(secs)));
        reply
    }
}

#[async_trait]
impl Plugin for CcProtection {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::CC_PROTECTION
    }

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        if let Ok(ip) = state.client_ip.parse::<std::net::IpAddr>() {
            if self.allow.iter().any(|n| n.contains(&ip)) {
                return Ok(());
            }
        }
        let Some(key) = self.key.extract(req, state) else {
            return Ok(());
        };
        if let Some(until) = self.stores.cc.banned_until(&self.name, &key) {
            return Err(self.refuse(until));
        }
        let seen = self.rate.observe(&key.as_ref(), 1);
        if seen as u64 > self.limit {
            let until = Instant::now() + self.ban;
            self.stores.cc.ban(&self.name, &key, until);
            metrics::get()
                .cc_bans
                .with_label_values(&[&self.name])
                .inc();
            log::warn!(
                "{}: banned {key} for {:?} after {seen} requests",
                self.name,
                self.ban
            );
            return Err(self.refuse(until));
        }
        Ok(())
    }
}
