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
    /// `grpc` (Nacos 2.x/3.x: pushes, one connection) or `http` (the Open API poller, for
    /// Nacos 1.x and networks where only the HTTP port is open).
    #[serde(default)]
    pub protocol: Protocol,
    /// gRPC: how often every watched service and the shared config are asked for again,
    /// whatever the pushes said (a push can be lost).
    #[serde(default = "default_resync_interval")]
    pub resync_interval_ms: Spanned<u64>,
    /// gRPC: the gRPC port is the HTTP port of each server plus this (Nacos: 1000).
    #[serde(default = "default_grpc_port_offset")]
    pub grpc_port_offset: Spanned<u16>,
}

/// `[nacos] protocol`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Grpc,
    Http,
}

fn default_poll_interval() -> u64 {
    1000
}
fn default_timeout() -> u64 {
    3000
}
fn default_resync_interval() -> Spanned<u64> {
    Spanned::new(0..0, 30_000)
}
fn default_grpc_port_offset() -> Spanned<u16> {
    Spanned::new(0..0, 1000)
}

/// Where a server's gRPC port is: host and HTTP port of its base URL (80 when the URL has
/// none) plus `offset`.
pub fn grpc_address(server: &str, offset: u16) -> Result<(String, u16), String> {
    let uri: http::Uri = server
        .parse()
        .map_err(|e| format!("nacos server {server:?}: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("nacos server {server:?} has no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let grpc = port.checked_add(offset).ok_or_else(|| {
        format!("nacos server {server:?}: port {port} + grpc_port_offset {offset} is above 65535")
    })?;
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        grpc,
    ))
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
        if *self.resync_interval_ms.get_ref() < 1000 {
            report(
                Some(self.resync_interval_ms.span()),
                "nacos resync_interval_ms must be at least 1000".into(),
            );
        }
        if self.protocol == Protocol::Grpc {
            for server in &self.servers {
                let url = server.get_ref();
                if !url.starts_with("http://") {
                    continue; // reported above
                }
                if let Err(e) = grpc_address(url, *self.grpc_port_offset.get_ref()) {
                    let at = if self.grpc_port_offset.span().is_empty() {
                        server.span()
                    } else {
                        self.grpc_port_offset.span()
                    };
                    report(Some(at), e);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Source};

    fn parse(nacos: &str) -> Result<NacosConfig, Vec<String>> {
        let text = format!("[nacos]\nservers = [\"http://127.0.0.1:8848\"]\n{nacos}");
        match Config::parse(&Source::new("t", text)) {
            Ok(config) => Ok(config.nacos.expect("has [nacos]").into_inner()),
            Err(e) => Err(e.errors.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn grpc_is_the_default_protocol() {
        let config = parse("").expect("valid");
        assert_eq!(config.protocol, Protocol::Grpc);
        assert_eq!(*config.resync_interval_ms.get_ref(), 30_000);
        assert_eq!(*config.grpc_port_offset.get_ref(), 1000);
        assert_eq!(
            parse("protocol = \"http\"\n").expect("valid").protocol,
            Protocol::Http
        );
    }

    #[test]
    fn protocol_resync_and_offset_are_checked_with_positions() {
        let e = parse("protocol = \"udp\"\n").expect_err("unknown protocol");
        assert!(e[0].starts_with("3:12:"), "{e:?}");
        assert!(e[0].contains("udp"), "{e:?}");

        let e = parse("resync_interval_ms = 500\n").expect_err("too short");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("3:22: nacos resync_interval_ms must be at least 1000"),
            "{e:?}"
        );

        let e = parse("grpc_port_offset = 60000\n").expect_err("port overflow");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("3:20: nacos server"), "{e:?}");
        assert!(e[0].contains("above 65535"), "{e:?}");
        // The HTTP poller never dials the gRPC port.
        assert!(parse("protocol = \"http\"\ngrpc_port_offset = 60000\n").is_ok());
        assert!(parse("resync_interval_ms = 1000\ngrpc_port_offset = 2000\n").is_ok());
    }

    #[test]
    fn grpc_ports_follow_the_http_ports() {
        assert_eq!(
            grpc_address("http://127.0.0.1:8848", 1000),
            Ok(("127.0.0.1".to_string(), 9848))
        );
        assert_eq!(
            grpc_address("http://[::1]:8848/", 1000),
            Ok(("::1".to_string(), 9848))
        );
        assert_eq!(
            grpc_address("http://nacos.internal", 1000),
            Ok(("nacos.internal".to_string(), 1080))
        );
        assert!(grpc_address("http://h:65000", 1000).is_err());
    }
}
