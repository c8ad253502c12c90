//! The configuration schema: every TOML section as a plain data type, one file per section
//! (mirroring the configuration reference), and the checks that need nothing but the text.
//!
//! This module is a leaf: it imports nothing of the runtime. The compile step
//! (`Snapshot::build` in `snapshot.rs`) turns a parsed [`Config`] into runtime objects and
//! reports what only building can find (a bad regex, a plugin's settings), positioned the
//! same way: every problem is a [`ConfigError`] with a line and column, so `tidegate check`,
//! the admin API, the console and the file watcher all report errors alike.

pub mod access_log;
pub mod admin;
pub mod dns;
pub mod edge;
mod error;
pub mod identity;
pub mod kubernetes;
pub mod nacos;
pub mod plugins;
pub mod routes;
pub mod server;
pub mod services;
pub mod source;
pub mod tls;

pub use access_log::AccessLogConfig;
pub use admin::AdminConfig;
pub use dns::{DnsConfig, EndpointAddr};
pub use edge::{EdgeConfig, EscapedSlashes};
pub use error::{line_column, ConfigError, ConfigErrors, Problems};
pub use identity::{IdentityConfig, IdentityHeaders};
pub use kubernetes::{KubeKey, KubernetesBinding, KubernetesBindings, KubernetesConfig, PortRef};
pub use nacos::{NacosBinding, NacosConfig, RegisterConfig, ServiceKey};
pub use plugins::PluginTables;
pub use routes::{RedirectConfig, RespondConfig, RouteConfig, SplitConfig, TunnelPolicy, METHODS};
pub use server::ServerConfig;
pub use services::{
    EndpointConfig, HealthCheckConfig, LbKind, PassiveConfig, Protocol, ServiceConfig,
    UpstreamTlsConfig, MAX_RETRIES,
};
pub use source::{ConfigSourceConfig, ConfigSourceKind, Overlay, Source};
/// `[[consumers]]`: callers and their tenant (their schema is the plugins').
pub use tidegate_plugins::consumers::ConsumerConfig;
/// `[redis]`: the shared-counter store of fleet-wide limits (its schema is the plugins').
pub use tidegate_plugins::redis_client::RedisConfig;
pub use tls::{CertificateConfig, ClientAuth, TlsConfig};

use serde::Deserialize;

/// The configuration a gateway starts with when no file is given: a demo route at `/`
/// that answers directly, so `tidegate` runs with no other service present.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../conf/default.toml");

/// `#[serde(default = "crate::config::spanned_default")]` for optional spanned fields.
pub fn spanned_default<T: Default>() -> toml::Spanned<T> {
    toml::Spanned::new(0..0, T::default())
}

/// One whole configuration document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub access_log: AccessLogConfig,
    /// How clients are treated before routing: caps, timeouts, header limits, paths.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// The TLS listeners' protocol settings.
    #[serde(default)]
    pub tls: TlsConfig,
    /// Certificates the TLS listeners serve, chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<CertificateConfig>,
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[plugins.NAME]`: plugin instances, each with a `type`; routes list them by name.
    #[serde(default)]
    pub plugins: PluginTables,
    /// Plugins that run on every route, before the route's own.
    #[serde(default)]
    pub global_plugins: Vec<toml::Spanned<String>>,
    #[serde(default)]
    pub redis: RedisConfig,
    /// Callers and their tenant, for the authentication plugins.
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    /// Names of the headers that carry the authenticated consumer and tenant upstream.
    #[serde(default)]
    pub identity: IdentityConfig,
    /// How endpoint DNS names are resolved.
    #[serde(default)]
    pub dns: DnsConfig,
    /// The Nacos registry (discovery, shared config, self-registration).
    pub nacos: Option<toml::Spanned<NacosConfig>>,
    /// The Kubernetes API server (pod discovery).
    pub kubernetes: Option<toml::Spanned<KubernetesConfig>>,
    /// `[config]`: where routes and services come from (the file, or a Nacos data id).
    #[serde(default = "spanned_default")]
    pub config: toml::Spanned<ConfigSourceConfig>,
}

impl Config {
    /// Parses TOML and runs every check that needs only the text. Errors are positioned in
    /// `source.text`; the compile step adds what only building finds.
    pub fn parse(source: &Source) -> Result<Config, ConfigErrors> {
        let mut config: Config = toml::from_str(&source.text).map_err(|e| {
            ConfigErrors::single(
                source.origin.clone(),
                ConfigError::at_span(&source.text, e.span(), e.message().to_string()),
            )
        })?;
        let mut problems = Problems::new(&source.text);
        if let Some(overlay) = &source.overlay {
            overlay.apply(&mut config, &source.text, &mut problems);
        }
        config.validate(&mut problems.reporter());
        problems.finish(&source.origin).map(|()| config)
    }

    /// Every schema check, each reported through `report(span, message)`. Checks never stop
    /// at the first problem: an operator fixing a file wants the whole list at once.
    fn validate(&self, report: &mut dyn FnMut(Option<std::ops::Range<usize>>, String)) {
        self.server.validate(report);
        self.admin.validate(report);
        self.access_log.validate(report);
        self.edge.validate(report);
        self.tls.validate(report);
        self.dns.validate(report);
        tls::validate_all(&self.certificates, report);
        if !self.server.tls_listen.is_empty() && self.certificates.is_empty() {
            report(
                Some(self.server.tls_listen[0].span()),
                "server.tls_listen needs at least one [[certificates]] entry".into(),
            );
        }
        if let Some(nacos) = &self.nacos {
            nacos.get_ref().validate(nacos.span(), report);
            if let Some(register) = &nacos.get_ref().register {
                if let Err(e) = register.address(self.admin.listen.get_ref()) {
                    report(Some(nacos.span()), e);
                }
            }
        }
        if let Some(kubernetes) = &self.kubernetes {
            kubernetes.get_ref().validate(report);
        }
        if self.config.get_ref().source == ConfigSourceKind::Nacos && self.nacos.is_none() {
            report(
                Some(self.config.span()),
                "[config] source = \"nacos\" needs a [nacos] section".into(),
            );
        }
        let mut service_names = std::collections::HashSet::new();
        for service in &self.services {
            service.validate(report);
            if let (Some(binding), None) = (&service.nacos, &self.nacos) {
                report(
                    Some(binding.span()),
                    format!(
                        "service {:?} is bound to nacos but there is no [nacos] section",
                        service.name.get_ref()
                    ),
                );
            }
            if let (Some(binding), None) = (&service.kubernetes, &self.kubernetes) {
                report(
                    Some(binding.span()),
                    format!(
                        "service {:?} is bound to kubernetes but there is no [kubernetes] section (an empty one means: in the cluster)",
                        service.name.get_ref()
                    ),
                );
            }
            if !service_names.insert(service.name.get_ref().as_str()) {
                report(
                    Some(service.name.span()),
                    format!("duplicate service name {:?}", service.name.get_ref()),
                );
            }
        }
        plugins::validate(&self.plugins, report);
        if let Err(e) = tidegate_plugins::redis_client::validate_url(&self.redis.url) {
            report(None, e);
        }
        if let Err(e) = self.identity.compile() {
            report(None, e);
        }
        plugins::check_references(&self.plugins, &self.global_plugins, &self.routes, report);
        let mut route_names = std::collections::HashSet::new();
        for route in &self.routes {
            route.validate(report, &|name| service_names.contains(name));
            if !route_names.insert(route.name.get_ref().as_str()) {
                report(
                    Some(route.name.span()),
                    format!("duplicate route name {:?}", route.name.get_ref()),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
