//! `[edge]`: how the gateway treats clients before a request is routed — connection caps,
//! timeouts, header limits, and how request paths are normalised. Read per connection and
//! per request, so a change applies without a restart.

use serde::Deserialize;
use std::ops::Range;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Client connections the process holds at most; more are closed at once (0: no cap).
    pub max_connections: usize,
    /// Concurrent connections per client address (0: no cap). The address is the PROXY
    /// header's client where there is one; connections from `trusted_proxies` without one
    /// are not capped (they carry many clients).
    pub max_connections_per_ip: usize,
    /// From a connection's first byte (or a keep-alive request's first byte) to the end of
    /// its request head; a slower client gets 408 and is closed.
    pub header_read_timeout_ms: u64,
    /// How long a new connection may stay silent, and a keep-alive connection idle between
    /// requests, before it is closed.
    pub keepalive_timeout_ms: u64,
    /// The largest request head (request line and fields); larger gets 431.
    pub max_header_bytes: usize,
    /// Merge repeated slashes in paths (`//a///b` → `/a/b`).
    pub merge_slashes: bool,
    /// `%2F` and `%5C` (and a raw `\`) in a path: `reject` (400), `keep` them encoded, or
    /// `decode` them into `/` (a path separator like any other).
    pub escaped_slashes: EscapedSlashes,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum EscapedSlashes {
    #[default]
    Reject,
    Keep,
    Decode,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            max_connections: 100_000,
            max_connections_per_ip: 0,
            header_read_timeout_ms: 10_000,
            keepalive_timeout_ms: 60_000,
            max_header_bytes: 32 * 1024,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Reject,
        }
    }
}

impl EdgeConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if self.header_read_timeout_ms == 0 || self.keepalive_timeout_ms == 0 {
            report(
                None,
                "edge.header_read_timeout_ms and edge.keepalive_timeout_ms must be above 0".into(),
            );
        }
        if !(1024..=1024 * 1024).contains(&self.max_header_bytes) {
            report(
                None,
                "edge.max_header_bytes must be between 1024 and 1048576".into(),
            );
        }
    }
}
