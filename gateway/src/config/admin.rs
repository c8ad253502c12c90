//! `[admin]`: the admin listener (health, metrics, admin API) and its token.

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: Spanned<String>,
    /// Bearer token for `/api/*`. Without one the API is closed; health and metrics stay open.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Spanned::new(0..0, "127.0.0.1:9080".into()),
            token: None,
        }
    }
}

impl AdminConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if let Err(e) = self.listen.get_ref().parse::<std::net::SocketAddr>() {
            report(
                Some(self.listen.span()),
                format!("bad admin listen address {:?}: {e}", self.listen.get_ref()),
            );
        }
        if self.token.as_deref() == Some("") {
            report(
                None,
                "admin.token must not be empty (leave it out to close the API)".into(),
            );
        }
    }
}
