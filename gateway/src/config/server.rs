//! `[server]`: the proxy listeners and the process. Changing these needs a restart (or a
//! binary upgrade); a reload that changes them applies everything else and says so.

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Proxy listener addresses, `IP:PORT` (HTTP/1.1, and HTTP/2 with prior knowledge).
    pub listen: Vec<Spanned<String>>,
    /// TLS listener addresses (ALPN `h2` and `http/1.1`), certificates from
    /// `[[certificates]]` by SNI.
    pub tls_listen: Vec<Spanned<String>>,
    /// Worker threads of the proxy service.
    pub threads: usize,
    /// Unix socket over which a new binary takes the listeners (`tidegate -u`).
    pub upgrade_sock: String,
    pub pid_file: String,
    /// Seconds the old process keeps serving after a hand-off or a graceful stop.
    pub grace_period_seconds: u64,
    /// Seconds the runtimes get to stop after the grace period.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Hand open plain-TCP WebSocket tunnels to the new process on a binary upgrade
    /// (otherwise they are closed with 1001 over the grace period).
    pub websocket_handover: bool,
    /// On a binary upgrade, how long the old process keeps serving its `wss://` tunnels
    /// (their TLS state cannot move to the new process); those still open then are closed
    /// with 1001 spread over the grace period. 0 closes them like the rest.
    pub tls_tunnel_linger_seconds: u64,
    /// Listen addresses (from `listen`) whose connections start with a PROXY v1/v2 header.
    pub proxy_protocol: Vec<Spanned<String>>,
    /// Peers (CIDRs or addresses) whose X-Forwarded-For is believed. Changeable at runtime.
    pub trusted_proxies: Vec<Spanned<String>>,
    /// Idle upstream connections kept, across all endpoints (Pingora's pool, one LRU for the
    /// process). Pingora's own default, 128, is fewer than a service with a few hundred
    /// endpoints needs: round robin then meets an evicted connection every time.
    pub upstream_keepalive_pool_size: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![Spanned::new(0..0, "127.0.0.1:8080".to_string())],
            tls_listen: Vec::new(),
            threads: 2,
            upgrade_sock: "/tmp/tidegate_upgrade.sock".into(),
            pid_file: "/tmp/tidegate.pid".into(),
            grace_period_seconds: 30,
            graceful_shutdown_timeout_seconds: 5,
            websocket_handover: true,
            tls_tunnel_linger_seconds: 3600,
            proxy_protocol: Vec::new(),
            trusted_proxies: Vec::new(),
            upstream_keepalive_pool_size: 1024,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if self.listen.is_empty() && self.tls_listen.is_empty() {
            report(
                None,
                "server.listen or server.tls_listen needs at least one address".into(),
            );
        }
        for addr in self.listen.iter().chain(&self.tls_listen) {
            if let Err(e) = addr.get_ref().parse::<std::net::SocketAddr>() {
                report(
                    Some(addr.span()),
                    format!("bad listen address {:?}: {e}", addr.get_ref()),
                );
            }
        }
        for addr in &self.proxy_protocol {
            let listed = self
                .listen
                .iter()
                .chain(&self.tls_listen)
                .any(|l| l.get_ref() == addr.get_ref());
            if !listed {
                report(
                    Some(addr.span()),
                    format!(
                        "proxy_protocol address {:?} is not in server.listen or server.tls_listen",
                        addr.get_ref()
                    ),
                );
            }
        }
        for cidr in &self.trusted_proxies {
            if let Err(e) = parse_cidr(cidr.get_ref()) {
                report(Some(cidr.span()), e);
            }
        }
        if self.threads == 0 || self.threads > 1024 {
            report(None, "server.threads must be between 1 and 1024".into());
        }
        if self.upstream_keepalive_pool_size == 0 || self.upstream_keepalive_pool_size > 1 << 20 {
            report(
                None,
                "server.upstream_keepalive_pool_size must be between 1 and 1048576".into(),
            );
        }
    }

    pub fn listen_addrs(&self) -> impl Iterator<Item = &str> {
        self.listen.iter().map(|s| s.get_ref().as_str())
    }

    pub fn tls_listen_addrs(&self) -> impl Iterator<Item = &str> {
        self.tls_listen.iter().map(|s| s.get_ref().as_str())
    }

    /// Whether a running process would need a restart to apply `other` (the fields read at
    /// start-up differ; `trusted_proxies` is read per request and applies at once).
    pub fn needs_restart_for(&self, other: &ServerConfig) -> bool {
        let process = |c: &ServerConfig| {
            (
                c.listen
                    .iter()
                    .chain(&c.tls_listen)
                    .map(|s| s.get_ref().clone())
                    .collect::<Vec<_>>(),
                c.threads,
                c.upgrade_sock.clone(),
                c.pid_file.clone(),
                c.grace_period_seconds,
                c.graceful_shutdown_timeout_seconds,
                c.websocket_handover,
                c.tls_tunnel_linger_seconds,
                c.proxy_protocol
                    .iter()
                    .map(|s| s.get_ref().clone())
                    .collect::<Vec<_>>(),
                c.upstream_keepalive_pool_size,
            )
        };
        process(self) != process(other)
    }

    /// How long an old process may live after a hand-off: the grace period, and the TLS
    /// tunnel linger before it when there are TLS listeners.
    pub fn shutdown_window_seconds(&self) -> u64 {
        let linger = if self.tls_listen.is_empty() {
            0
        } else {
            self.tls_tunnel_linger_seconds
        };
        self.grace_period_seconds + linger
    }

    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|c| parse_cidr(c.get_ref()).ok())
            .collect()
    }
}

pub use tidegate_plugins::key::parse_cidr;
