//! `[access_log]`: where the one-JSON-line-per-request log goes.

use serde::Deserialize;
use std::ops::Range;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConfig {
    pub enabled: bool,
    /// `stdout`, `stderr` or a file path (appended to).
    pub path: String,
    /// Lines are written in batches at least this often (a line waits at most this long).
    pub flush_interval_ms: u64,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            path: "stdout".into(),
            flush_interval_ms: 50,
        }
    }
}

impl AccessLogConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if self.path.is_empty() {
            report(None, "access_log.path must not be empty".into());
        }
        if !(1..=10_000).contains(&self.flush_interval_ms) {
            report(
                None,
                format!(
                    "access_log.flush_interval_ms must be 1 to 10000, not {}",
                    self.flush_interval_ms
                ),
            );
        }
    }
}
