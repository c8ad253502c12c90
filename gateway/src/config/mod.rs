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
#[derive(Debug, Clone, Default, Deserialize)]
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
}

/// A parsed document together with the text it came from; positions in errors refer to it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where the text came from, for messages: a path, "embedded default" or "admin api".
    pub origin: String,
    pub text: String,
}

impl Source {
    pub fn new(origin: impl Into<String>, text: impl Into<String>) -> Self {
        Source {
            origin: origin.into(),
            text: text.into(),
        }
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
        let config: Config = toml::from_str(&source.text).map_err(|e| {
            ConfigErrors::single(
                source.origin.clone(),
                ConfigError::at_span(&source.text, e.span(), e.message().to_string()),
            )
        })?;
        let mut errors = Vec::new();
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
        let mut service_names = std::collections::HashMap::new();
        for service in &self.services {
            service.validate(report);
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
