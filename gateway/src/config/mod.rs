//! The user-facing TOML configuration: parsing, positions and validation.
//!
//! Each section's type lives beside the code that uses it (routes in `router`, services in
//! `upstream`, …); this module only ties them together into one document and turns every
//! problem into a [`ConfigError`] that carries a line and column, so that `tidegate check`,
//! the admin API and the file watcher all report errors the same way.

mod error;
mod server;

pub use error::{ConfigError, ConfigErrors};
pub use server::ServerConfig;

use crate::access_log::AccessLogConfig;
use crate::admin::AdminConfig;
use crate::router::RouteConfig;
use crate::upstream::ServiceConfig;
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
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `[plugins.NAME]`: plugin instances, each with a `type`; routes list them by name.
    #[serde(default)]
    pub plugins: std::collections::BTreeMap<String, toml::Spanned<toml::Table>>,
    /// Plugins that run on every route, before the route's own.
    #[serde(default)]
    pub global_plugins: Vec<toml::Spanned<String>>,
    #[serde(default)]
    pub redis: tidegate_plugins::redis_client::RedisConfig,
    /// Callers and their tenant, for the authentication plugins.
    #[serde(default)]
    pub consumers: Vec<tidegate_plugins::consumers::ConsumerConfig>,
    /// Names of the headers that carry the authenticated consumer and tenant upstream.
    #[serde(default)]
    pub identity: crate::proxy::forwarded::IdentityConfig,
    /// The Nacos registry (discovery, shared config, self-registration).
    pub nacos: Option<toml::Spanned<crate::nacos::NacosConfig>>,
    /// `[config]`: where routes and services come from (the file, or a Nacos data id).
    #[serde(default = "spanned_default")]
    pub config: toml::Spanned<crate::nacos::ConfigSourceConfig>,
}

/// The sections that belong to each gateway, not to the fleet: its listeners, admin API,
/// log file, and where its shared config comes from. With a shared config from Nacos they
/// are always taken from the gateway's own (bootstrap) file.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub access_log: AccessLogConfig,
    pub nacos: Option<toml::Spanned<crate::nacos::NacosConfig>>,
    pub config: toml::Spanned<crate::nacos::ConfigSourceConfig>,
}

/// Top-level keys of the sections in [`Overlay`].
const OWN_SECTIONS: [&str; 5] = ["server", "admin", "access_log", "nacos", "config"];

impl Overlay {
    pub fn of(config: &Config) -> std::sync::Arc<Overlay> {
        std::sync::Arc::new(Overlay {
            server: config.server.clone(),
            admin: config.admin.clone(),
            access_log: config.access_log.clone(),
            nacos: config.nacos.clone(),
            config: config.config.clone(),
        })
    }

    /// Puts the gateway's own sections into a shared config; a shared text that sets one of
    /// them is refused (it would act differently on each gateway, or redirect the fleet).
    fn apply(&self, config: &mut Config, text: &str, errors: &mut Vec<ConfigError>) {
        if let Ok(doc) = toml_edit::Document::parse(text) {
            for section in OWN_SECTIONS {
                if let Some((key, _)) = doc.as_table().get_key_value(section) {
                    errors.push(ConfigError::at_span(
                        text,
                        key.span(),
                        format!("[{section}] belongs in each gateway's own file, not in the shared config"),
                    ));
                }
            }
        }
        config.server = self.server.clone();
        config.admin = self.admin.clone();
        config.access_log = self.access_log.clone();
        config.nacos = self.nacos.clone();
        config.config = self.config.clone();
    }
}

/// A parsed document together with the text it came from; positions in errors refer to it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where the text came from, for messages: a path, "embedded default" or "admin api".
    pub origin: String,
    pub text: String,
    /// Set for a shared config from Nacos: the bootstrap's own sections.
    pub overlay: Option<std::sync::Arc<Overlay>>,
}

impl Source {
    pub fn new(origin: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            origin: origin.into(),
            text: text.into(),
            overlay: None,
        }
    }

    pub fn with_overlay(mut self, overlay: std::sync::Arc<Overlay>) -> Self {
        self.overlay = Some(overlay);
        self
    }

    /// Reads a file; an unreadable file is reported like any other config error.
    pub fn read_file(path: &std::path::Path) -> Result<Self, ConfigErrors> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source::new(path.display().to_string(), text)),
            Err(e) => Err(ConfigErrors::single(
                path.display().to_string(),
                ConfigError::whole(format!("cannot read file: {e}")),
            )),
        }
    }
}

impl Config {
    /// Parses TOML and validates everything that can be checked without building runtime
    /// objects. Errors are positioned in `source.text`.
    pub fn parse(source: &Source) -> Result<Config, ConfigErrors> {
        let mut config: Config = toml::from_str(&source.text).map_err(|e| {
            ConfigErrors::single(
                source.origin.clone(),
                ConfigError::at_span(&source.text, e.span(), e.message().to_string()),
            )
        })?;
        let mut errors = Vec::new();
        if let Some(overlay) = &source.overlay {
            overlay.apply(&mut config, &source.text, &mut errors);
        }
        config.validate(&mut |span, message| {
            errors.push(ConfigError::at_span(&source.text, span, message))
        });
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors {
                origin: source.origin.clone(),
                errors,
            })
        }
    }

    /// Every semantic check, each reported through `report(span, message)`. Checks never stop
    /// at the first problem: an operator fixing a file wants the whole list at once.
    fn validate(&self, report: &mut dyn FnMut(Option<std::ops::Range<usize>>, String)) {
        self.server.validate(report);
        self.admin.validate(report);
        self.access_log.validate(report);
        if let Some(nacos) = &self.nacos {
            nacos.get_ref().validate(nacos.span(), report);
            if let Some(register) = &nacos.get_ref().register {
                if let Err(e) =
                    crate::nacos::Registration::new(register, self.admin.listen.get_ref())
                {
                    report(Some(nacos.span()), e);
                }
            }
        }
        if self.config.get_ref().source == crate::nacos::ConfigSourceKind::Nacos
            && self.nacos.is_none()
        {
            report(
                Some(self.config.span()),
                "[config] source = \"nacos\" needs a [nacos] section".into(),
            );
        }
        let mut service_names = std::collections::HashMap::new();
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
            if service_names
                .insert(service.name.get_ref().as_str(), service)
                .is_some()
            {
                report(
                    Some(service.name.span()),
                    format!("duplicate service name {:?}", service.name.get_ref()),
                );
            }
        }
        // Plugins are built once here (on throwaway state) to check their settings.
        let consumers = tidegate_plugins::consumers::Consumers::build(&self.consumers)
            .unwrap_or_else(|e| {
                report(None, e);
                Default::default()
            });
        let scratch = tidegate_plugins::BuildContext {
            stores: std::sync::Arc::default(),
            consumers: std::sync::Arc::new(consumers),
        };
        for (name, table) in &self.plugins {
            if let Err(e) = tidegate_plugins::build(name, table.get_ref(), &scratch) {
                report(Some(table.span()), e);
            }
        }
        if let Err(e) = tidegate_plugins::redis_client::validate_url(&self.redis.url) {
            report(None, e);
        }
        if let Err(e) = self.identity.compile() {
            report(None, e);
        }
        let plugin_exists = |name: &str| self.plugins.contains_key(name);
        for name in &self.global_plugins {
            if !plugin_exists(name.get_ref()) {
                report(
                    Some(name.span()),
                    format!("unknown plugin {:?} in global_plugins", name.get_ref()),
                );
            }
        }
        let mut route_names = std::collections::HashSet::new();
        for route in &self.routes {
            for name in &route.plugins {
                if !plugin_exists(name.get_ref()) {
                    report(
                        Some(name.span()),
                        format!(
                            "route {:?} uses unknown plugin {:?}",
                            route.name.get_ref(),
                            name.get_ref()
                        ),
                    );
                }
            }
            route.validate(report, &|name| service_names.contains_key(name));
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
