//! Where a config comes from: the `[config]` section (the file, or a shared Nacos data id),
//! the text itself with its origin, and — for a shared config — each gateway's own sections
//! that the shared text may not set.

use super::{
    AccessLogConfig, AdminConfig, Config, ConfigError, ConfigErrors, NacosConfig, ServerConfig,
};
use serde::Deserialize;

/// `[config]`: where routes, services and plugins come from.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConfigSourceConfig {
    #[serde(default)]
    pub source: ConfigSourceKind,
    #[serde(default = "default_data_id")]
    pub data_id: String,
    #[serde(default = "super::nacos::default_group")]
    pub group: String,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSourceKind {
    /// The file given with -c (or the embedded default); the default.
    #[default]
    File,
    Nacos,
}

fn default_data_id() -> String {
    "tidegate.toml".into()
}

/// The sections that belong to each gateway, not to the fleet: its listeners, admin API,
/// log file, and where its shared config comes from. With a shared config from Nacos they
/// are always taken from the gateway's own (bootstrap) file.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub access_log: AccessLogConfig,
    pub nacos: Option<toml::Spanned<NacosConfig>>,
    pub config: toml::Spanned<ConfigSourceConfig>,
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
    pub(super) fn apply(
        &self,
        config: &mut Config,
        text: &str,
        problems: &mut super::Problems<'_>,
    ) {
        if let Ok(doc) = toml_edit::Document::parse(text) {
            for section in OWN_SECTIONS {
                if let Some((key, _)) = doc.as_table().get_key_value(section) {
                    problems.at(
                        key.span(),
                        format!("[{section}] belongs in each gateway's own file, not in the shared config"),
                    );
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
