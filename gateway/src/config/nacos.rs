//! `[nacos]` and the `nacos = { … }` binding of a service: where the registry is, how to talk
//! to it, which instance lists a service takes, and how this gateway registers itself.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// `[nacos]`: where the registry is and how to talk to it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NacosConfig {
    /// Base URLs (`http://host:8848`), tried in order; the one that answered last is tried
    /// first next time.
    pub servers: Vec<Spanned<String>>,
    /// Namespace id ("" or "public" is the default namespace).
    #[serde(default)]
    pub namespace: String,
    /// Access-token login (Nacos auth); `password` may be `env:NAME` or `file:PATH`.
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_ms: u64,
    /// Per-request timeout (the config long poll adds its own hold time).
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Last known instances and config are kept here, so a gateway restarted while Nacos is
    /// unreachable still routes.
    pub cache_dir: Option<String>,
    /// Register this gateway in Nacos (so a console can find the fleet).
    pub register: Option<RegisterConfig>,
}

fn default_poll_interval() -> u64 {
    1000
}
fn default_timeout() -> u64 {
    3000
}

impl NacosConfig {
    pub fn validate(
        &self,
        span: Range<usize>,
        report: &mut dyn FnMut(Option<Range<usize>>, String),
    ) {
        if self.servers.is_empty() {
            report(
                Some(span.clone()),
                "[nacos] needs at least one server".into(),
            );
        }
        for server in &self.servers {
            let url = server.get_ref();
            if !(url.starts_with("http://") && url.len() > "http://".len()) {
                report(
                    Some(server.span()),
                    format!("nacos server {url:?} must be an http:// URL"),
                );
            }
        }
        if self.username.is_some() != self.password.is_some() {
            report(
                Some(span.clone()),
                "[nacos] username and password go together".into(),
            );
        }
        if self.poll_interval_ms < 100 {
            report(
                Some(span.clone()),
                "nacos poll_interval_ms must be at least 100".into(),
            );
        }
        if self.timeout_ms == 0 {
            report(Some(span), "nacos timeout_ms must be above 0".into());
        }
    }

    /// The namespace id as the Open API wants it ("public" is the empty id).
    pub fn namespace_id(&self) -> &str {
        match self.namespace.as_str() {
            "public" => "",
            other => other,
        }
    }
}

/// A service's binding: `nacos = { service = "chat-svc", group = "DEFAULT_GROUP", clusters = ["a"] }`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NacosBinding {
    pub service: String,
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default)]
    pub clusters: Vec<String>,
}

pub fn default_group() -> String {
    "DEFAULT_GROUP".into()
}

impl NacosBinding {
    pub fn validate(&self) -> Result<(), String> {
        if self.service.is_empty() || self.group.is_empty() {
            return Err("nacos service and group must not be empty".into());
        }
        Ok(())
    }

    pub fn key(&self) -> ServiceKey {
        let mut clusters = self.clusters.clone();
        clusters.sort();
        clusters.dedup();
        ServiceKey {
            service: self.service.clone(),
            group: self.group.clone(),
            clusters: clusters.join(","),
        }
    }
}

/// One watched instance list. Several gateway services bound the same way share one poller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub service: String,
    pub group: String,
    /// Sorted, comma-joined; empty for all clusters.
    pub clusters: String,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@@{}", self.group, self.service)?;
        if !self.clusters.is_empty() {
            write!(f, "@@{}", self.clusters)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegisterConfig {
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default = "default_group")]
    pub group: String,
    /// The address others reach this gateway's admin listener at; by default the admin
    /// listen address (which then must not be a wildcard).
    pub ip: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

fn default_service() -> String {
    "tidegate".into()
}

impl RegisterConfig {
    /// The address others reach this gateway's admin listener at: `ip`/`port` when given,
    /// else the admin listen address (which then must not be a wildcard).
    pub fn address(&self, admin_listen: &str) -> Result<(String, u16), String> {
        let admin: std::net::SocketAddr = admin_listen
            .parse()
            .map_err(|e| format!("admin listen {admin_listen:?}: {e}"))?;
        let ip =
            match &self.ip {
                Some(ip) => ip.clone(),
                None if admin.ip().is_unspecified() => return Err(
                    "[nacos.register] needs ip when the admin listener binds a wildcard address"
                        .into(),
                ),
                None => admin.ip().to_string(),
            };
        Ok((ip, self.port.unwrap_or(admin.port())))
    }
}
