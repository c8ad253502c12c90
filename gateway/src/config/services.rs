//! `[[services]]`: a named group of endpoints and how to reach them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: Spanned<String>,
    #[serde(default)]
    pub lb: LbKind,
    /// For `lb = "hash"`: `header:NAME`, `cookie:NAME`, `query:NAME` or `client_ip`.
    pub hash_key: Option<Spanned<String>>,
    #[serde(default = "crate::config::spanned_default")]
    pub endpoints: Spanned<Vec<EndpointConfig>>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout")]
    pub read_timeout_ms: u64,
    #[serde(default = "default_read_timeout")]
    pub write_timeout_ms: u64,
    /// How long an idle upstream connection stays in the pool.
    #[serde(default = "default_pool_idle")]
    pub pool_idle_timeout_ms: u64,
    /// Connect failures are retried this many times, each on another endpoint.
    #[serde(default = "default_retries")]
    pub retries: Spanned<u32>,
    /// Idle timeout of WebSocket tunnels (no byte in either direction).
    #[serde(default = "default_ws_idle")]
    pub websocket_idle_timeout_ms: u64,
    /// Active health checks (none by default).
    pub health_check: Option<HealthCheckConfig>,
    /// Passive health: eject an endpoint after consecutive failures of real requests.
    #[serde(default)]
    pub passive: PassiveConfig,
    /// Endpoints from Nacos instead of `endpoints`:
    /// `nacos = { service = "chat-svc", group = "DEFAULT_GROUP", clusters = ["a"] }`.
    pub nacos: Option<Spanned<super::NacosBinding>>,
    /// Endpoints from a Kubernetes Service's EndpointSlices (its ready pods) instead:
    /// `kubernetes = { namespace = "chat", service = "chat-svc", port = "http" }`, or from
    /// several Services: `kubernetes = [{ … }, { … }]`.
    pub kubernetes: Option<Spanned<super::KubernetesBindings>>,
    /// How endpoints are spoken to: `http` (HTTP/1.1, the default), `https` (over TLS),
    /// `grpc` (HTTP/2 with prior knowledge) or `grpcs` (HTTP/2 over TLS).
    #[serde(default)]
    pub protocol: Protocol,
    /// For `https`/`grpcs`: `{ sni = "api.internal", verify = true, ca = "file:/etc/ca.pem" }`.
    pub tls: Option<Spanned<UpstreamTlsConfig>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Https,
    Grpc,
    Grpcs,
}

impl Protocol {
    pub fn tls(self) -> bool {
        matches!(self, Protocol::Https | Protocol::Grpcs)
    }

    pub fn grpc(self) -> bool {
        matches!(self, Protocol::Grpc | Protocol::Grpcs)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTlsConfig {
    /// The name sent as SNI and checked against the endpoint's certificate (default: the
    /// endpoint's DNS name, for endpoints given by name).
    pub sni: Option<String>,
    /// Verify the endpoint's certificate (chain and name). On by default.
    #[serde(default = "default_true")]
    pub verify: bool,
    /// PEM bundle of the CAs to trust instead of the system's (a path or `file:PATH`).
    pub ca: Option<String>,
    /// The Host requests carry to endpoints given by DNS name: `name` (the default: their
    /// name, with the port unless 443) or `client` (the client's, as for endpoints by IP).
    #[serde(default)]
    pub host: TlsHost,
}

/// `tls.host`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsHost {
    #[default]
    Name,
    Client,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// `http` (GET `path`, 2xx/3xx is healthy), `tcp` (a connect is healthy) or `grpc`
    /// (`grpc.health.v1.Health/Check` of `grpc_service` answers SERVING).
    #[serde(default = "default_check_kind")]
    pub r#type: String,
    #[serde(default = "default_check_path")]
    pub path: String,
    /// For `type = "grpc"`: the service name asked about ("" is the server as a whole).
    #[serde(default)]
    pub grpc_service: String,
    #[serde(default = "default_check_interval")]
    pub interval_ms: u64,
    #[serde(default = "default_check_timeout")]
    pub timeout_ms: u64,
    /// Results in a row that flip an endpoint to healthy / unhealthy.
    #[serde(default = "default_threshold")]
    pub healthy_threshold: u32,
    #[serde(default = "default_threshold")]
    pub unhealthy_threshold: u32,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveConfig {
    /// Consecutive failures that eject an endpoint; 0 turns passive checks off.
    pub failures: u32,
    pub eject_ms: u64,
    /// Whether an upstream 5xx counts as a failure (connect failures always do).
    pub count_5xx: bool,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            failures: 3,
            eject_ms: 10_000,
            count_5xx: false,
        }
    }
}

fn default_check_kind() -> String {
    "http".into()
}
fn default_check_path() -> String {
    "/".into()
}
fn default_check_interval() -> u64 {
    1000
}
fn default_check_timeout() -> u64 {
    500
}
fn default_threshold() -> u32 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// `IP:PORT`, or `NAME:PORT`: every address the name resolves to is an endpoint.
    pub addr: Spanned<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LbKind {
    #[default]
    RoundRobin,
    LeastConn,
    Hash,
}

/// The most retries a service may ask for: each retry is a whole connect timeout.
pub const MAX_RETRIES: u32 = 7;

fn default_connect_timeout() -> u64 {
    1000
}
fn default_read_timeout() -> u64 {
    30_000
}
fn default_pool_idle() -> u64 {
    60_000
}
fn default_retries() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}
fn default_ws_idle() -> u64 {
    3_600_000
}
fn default_weight() -> u32 {
    1
}

impl ServiceConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        let name = self.name.get_ref();
        match (&self.tls, self.protocol.tls()) {
            (Some(tls), false) => report(
                Some(tls.span()),
                format!("service {name:?}: `tls` needs protocol = \"https\" or \"grpcs\""),
            ),
            (tls, true) => {
                let settings = tls.as_ref().map(toml::Spanned::get_ref);
                let verify = settings.is_none_or(|t| t.verify);
                let sni = settings.and_then(|t| t.sni.as_deref());
                // An endpoint by name is checked against its name; one by IP needs tls.sni.
                let by_ip = self.endpoints.get_ref().iter().any(|e| {
                    matches!(
                        super::dns::parse_endpoint_addr(e.addr.get_ref()),
                        Ok(super::EndpointAddr::Ip(_))
                    )
                });
                let needs_sni = by_ip || self.nacos.is_some() || self.kubernetes.is_some();
                if verify && needs_sni && sni.is_none_or(str::is_empty) {
                    report(
                        Some(tls.as_ref().map_or(self.name.span(), Spanned::span)),
                        format!("service {name:?}: verifying the endpoints' certificates needs tls.sni (the name they must carry), or tls.verify = false, or endpoints by DNS name"),
                    );
                }
            }
            _ => {}
        }
        if let Some(check) = &self.health_check {
            if !matches!(check.r#type.as_str(), "http" | "tcp" | "grpc") {
                report(
                    Some(self.name.span()),
                    format!(
                        "service {name:?}: health_check type {:?} is not http, tcp or grpc",
                        check.r#type
                    ),
                );
            }
            if check.r#type == "grpc" && !self.protocol.grpc() {
                report(
                    Some(self.name.span()),
                    format!("service {name:?}: a grpc health check needs protocol = \"grpc\""),
                );
            }
        }
        if name.is_empty() {
            report(
                Some(self.name.span()),
                "service name must not be empty".into(),
            );
        }
        // Exactly one source of endpoints: the file, Nacos or Kubernetes.
        let bindings: Vec<(&str, Range<usize>)> = [
            self.nacos.as_ref().map(|b| ("nacos", b.span())),
            self.kubernetes.as_ref().map(|b| ("kubernetes", b.span())),
        ]
        .into_iter()
        .flatten()
        .collect();
        match (bindings.as_slice(), self.endpoints.get_ref().is_empty()) {
            ([], true) => report(
                Some(self.name.span()),
                format!("service {name:?} has no endpoints (and no nacos or kubernetes binding)"),
            ),
            ([(kind, span)], false) => report(
                Some(span.clone()),
                format!("service {name:?} has both endpoints and a {kind} binding; choose one"),
            ),
            ([_, (_, span)], _) => report(
                Some(span.clone()),
                format!("service {name:?} has both a nacos and a kubernetes binding; choose one"),
            ),
            _ => {}
        }
        if let Some(binding) = &self.nacos {
            if let Err(e) = binding.get_ref().validate() {
                report(Some(binding.span()), e);
            }
        }
        if let Some(binding) = &self.kubernetes {
            if let Err(e) = binding.get_ref().validate() {
                report(Some(binding.span()), e);
            }
        }
        for endpoint in self.endpoints.get_ref() {
            if let Err(e) = super::dns::parse_endpoint_addr(endpoint.addr.get_ref()) {
                report(
                    Some(endpoint.addr.span()),
                    format!("bad endpoint address {:?}: {e}", endpoint.addr.get_ref()),
                );
            }
        }
        if self.lb == LbKind::Hash && self.hash_key.is_none() {
            report(
                Some(self.name.span()),
                format!("service {name:?} uses lb = \"hash\" but has no hash_key"),
            );
        }
        if *self.retries.get_ref() > MAX_RETRIES {
            report(
                Some(self.retries.span()),
                format!("retries must be at most {MAX_RETRIES}"),
            );
        }
        if self.connect_timeout_ms == 0 || self.read_timeout_ms == 0 || self.write_timeout_ms == 0 {
            report(Some(self.name.span()), "timeouts must be above 0 ms".into());
        }
    }
}
