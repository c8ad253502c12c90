//! `[access_log]`: where the one-JSON-line-per-request log goes.

use serde::Deserialize;
use std::ops::Range;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConfig {
    pub enabled: bool,
    /// `stdout`, `stderr` or a file path (appended to).
    pub path: String,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            path: "stdout".into(),
        }
    }
}

impl AccessLogConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if self.path.is_empty() {
            report(None, "access_log.path must not be empty".into());
        }
    }
}
