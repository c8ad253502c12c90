//! `type = "cc-protection"`: flood (CC) protection. A key (the client IP by default) that
//! exceeds its rate is banned for a while and answered 429 (or 403) without reaching the
//! upstream; allow-listed networks are never limited.

use crate::key::KeySource;
use crate::rate_limit::Window;
use crate::{metrics, order, parse_config, Ctx, Plugin, Reply, Stores};
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

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[self.status]);
        crate::metrics::get()
            .cc_bans
            .with_label_values(&[&self.name]);
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        if let Ok(ip) = cx.client_ip.parse::<std::net::IpAddr>() {
            if self.allow.iter().any(|n| n.contains(&ip)) {
                return Ok(());
            }
        }
        let Some(key) = self.key.extract(req, cx) else {
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

#[cfg(test)]
mod tests {
    use crate::testing;
    use std::time::Duration;

    const PLUGIN: &str = "type = \"cc-protection\"\nrate = { per = \"minute\", count = 2 }\nallow = [\"10.0.0.0/8\", \"2001:db8::/32\"]";

    async fn status(p: &std::sync::Arc<dyn crate::Plugin>, ip: &str) -> Option<u16> {
        status_with(p, ip, &[]).await
    }

    async fn status_with(
        p: &std::sync::Arc<dyn crate::Plugin>,
        ip: &str,
        headers: &[(&str, &str)],
    ) -> Option<u16> {
        let req = testing::request("GET", "/", headers);
        testing::run(p, &req, ip)
            .await
            .0
            .err()
            .map(|reply| reply.status)
    }

    #[tokio::test]
    async fn a_client_over_the_rate_is_banned_with_429_and_retry_after() {
        let p = testing::plugin(PLUGIN);
        assert_eq!(status(&p, "192.0.2.1").await, None);
        assert_eq!(status(&p, "192.0.2.1").await, None);
        let req = testing::request("GET", "/", &[]);
        let reply = testing::run(&p, &req, "192.0.2.1").await.0.unwrap_err();
        assert_eq!(reply.status, 429);
        assert_eq!(testing::body(&reply)["error"], "Too Many Requests");
        let retry: u64 = testing::header(&reply, "retry-after")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        // Still banned on the next request; other clients are not.
        assert_eq!(status(&p, "192.0.2.1").await, Some(429));
        assert_eq!(status(&p, "192.0.2.2").await, None);
    }

    #[tokio::test]
    async fn the_ban_status_may_be_403() {
        let p = testing::plugin(
            "type = \"cc-protection\"\nrate = { per = \"minute\", count = 1 }\nstatus = 403",
        );
        assert_eq!(status(&p, "192.0.2.1").await, None);
        let req = testing::request("GET", "/", &[]);
        let reply = testing::run(&p, &req, "192.0.2.1").await.0.unwrap_err();
        assert_eq!(reply.status, 403);
        assert_eq!(testing::body(&reply)["error"], "Forbidden");
        assert!(testing::header(&reply, "retry-after").is_some());
    }

    #[tokio::test]
    async fn allow_listed_addresses_are_never_banned() {
        let p = testing::plugin(PLUGIN);
        for _ in 0..10 {
            assert_eq!(status(&p, "10.1.2.3").await, None);
            assert_eq!(status(&p, "2001:db8::7").await, None);
        }
        assert_eq!(status(&p, "2001:db9::7").await, None);
        assert_eq!(status(&p, "2001:db9::7").await, None);
        assert_eq!(status(&p, "2001:db9::7").await, Some(429));
    }

    #[tokio::test]
    async fn a_header_key_bans_that_key_and_requests_without_it_pass() {
        let p = testing::plugin(
            "type = \"cc-protection\"\nkey = \"header:x-client\"\nrate = { per = \"minute\", count = 1 }",
        );
        let ip = "192.0.2.1";
        assert_eq!(status_with(&p, ip, &[("x-client", "a")]).await, None);
        assert_eq!(status_with(&p, ip, &[("x-client", "a")]).await, Some(429));
        assert_eq!(status_with(&p, ip, &[("x-client", "b")]).await, None);
        assert_eq!(status(&p, ip).await, None);
        assert_eq!(status(&p, ip).await, None);
    }

    #[tokio::test]
    async fn a_ban_ends_after_ban_seconds() {
        let p = testing::plugin(
            "type = \"cc-protection\"\nrate = { per = \"second\", count = 1 }\nban_seconds = 1",
        );
        assert_eq!(status(&p, "192.0.2.1").await, None);
        assert_eq!(status(&p, "192.0.2.1").await, Some(429));
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(status(&p, "192.0.2.1").await, None);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_plugin() {
        for table in [
            "rate = { per = \"minute\", count = 1 }\nstatus = 500",
            "rate = { per = \"minute\", count = 1 }\nkey = \"body:x\"",
            "rate = { per = \"minute\", count = 1 }\nallow = [\"10.0.0.0/33\"]",
            "rate = { per = \"week\", count = 1 }",
            "ban_seconds = 5",
        ] {
            let error = testing::refusal(&format!("type = \"cc-protection\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
        }
    }
}
