//! `[[routes]]`: how a request is matched and what is done with it.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: Spanned<String>,
    /// Exact host names or `*.suffix` wildcards; empty means any host.
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    /// `/prefix/`, `=/exact` or `~regex`.
    #[serde(default = "default_path")]
    pub path: Spanned<String>,
    /// Allowed methods; empty means any.
    #[serde(default)]
    pub methods: Vec<Spanned<String>>,
    /// Request headers that must be present with exactly these values.
    #[serde(default = "crate::config::spanned_default")]
    pub headers: Spanned<BTreeMap<String, String>>,
    /// Cookies that must be sent with exactly these values (names are case-sensitive).
    #[serde(default = "crate::config::spanned_default")]
    pub cookies: Spanned<BTreeMap<String, String>>,
    /// Query parameters that must be present with exactly these values, compared decoded.
    #[serde(default = "crate::config::spanned_default")]
    pub query: Spanned<BTreeMap<String, String>>,
    /// Proxy to this service …
    pub service: Option<Spanned<String>>,
    /// … and remove the matched prefix from the path first (an exact path: all of it, so
    /// the upstream gets `/`).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Or answer directly.
    pub respond: Option<RespondConfig>,
    /// Or redirect.
    pub redirect: Option<RedirectConfig>,
    /// Idle timeout of WebSocket tunnels on this route; defaults to the service's.
    pub websocket_idle_timeout_ms: Option<u64>,
    /// What happens to open tunnels when this route is removed or their endpoint leaves.
    #[serde(default)]
    pub on_route_change: TunnelPolicy,
    /// Window over which `drain` spreads its closes.
    #[serde(default = "default_drain_window")]
    pub drain_window_seconds: u64,
    /// Plugins of this route (after the global ones), by `[plugins.NAME]`.
    #[serde(default)]
    pub plugins: Vec<Spanned<String>>,
    /// Only endpoints carrying these labels (e.g. `{ stage = "blue" }`).
    #[serde(default = "crate::config::spanned_default")]
    pub subset: Spanned<BTreeMap<String, String>>,
    /// Or a weighted split between label subsets (blue/green, canary).
    #[serde(default = "crate::config::spanned_default")]
    pub split: Spanned<Vec<SplitConfig>>,
    /// Request header with which a tester picks a subset: `stage=green`, or a bare label
    /// value (`green`) naming one of the split's subsets.
    #[serde(default = "default_subset_header")]
    pub subset_header: String,
    /// Requests that arrive without TLS are redirected to `https://` (308, which keeps the
    /// method and body).
    #[serde(default)]
    pub https_redirect: bool,
    /// `Strict-Transport-Security` value added to responses sent over TLS (e.g.
    /// `"max-age=31536000; includeSubDomains"`).
    pub hsts: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    pub labels: BTreeMap<String, String>,
    pub weight: u32,
}

fn default_subset_header() -> String {
    "x-tidegate-subset".into()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TunnelPolicy {
    /// Leave the tunnel open: it ends when a side closes it.
    Keep,
    /// Close with 1001 (going away), spread over the drain window.
    #[default]
    Drain,
    /// Close with 1001 at once.
    Close,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondConfig {
    #[serde(default = "default_respond_status")]
    pub status: Spanned<u16>,
    #[serde(default)]
    pub body: String,
    #[serde(default = "crate::config::spanned_default")]
    pub headers: Spanned<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectConfig {
    pub to: Spanned<String>,
    #[serde(default = "default_redirect_status")]
    pub status: Spanned<u16>,
}

fn default_path() -> Spanned<String> {
    Spanned::new(0..0, "/".to_string())
}
fn default_respond_status() -> Spanned<u16> {
    Spanned::new(0..0, 200)
}
fn default_redirect_status() -> Spanned<u16> {
    Spanned::new(0..0, 302)
}
fn default_drain_window() -> u64 {
    30
}

pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
];

impl RouteConfig {
    pub fn validate(
        &self,
        report: &mut dyn FnMut(Option<Range<usize>>, String),
        service_exists: &dyn Fn(&str) -> bool,
    ) {
        let name = self.name.get_ref();
        if name.is_empty() {
            report(
                Some(self.name.span()),
                "route name must not be empty".into(),
            );
        }
        let actions = [
            self.service.is_some(),
            self.respond.is_some(),
            self.redirect.is_some(),
        ];
        if actions.iter().filter(|a| **a).count() != 1 {
            report(
                Some(self.name.span()),
                format!("route {name:?} needs exactly one of `service`, `respond` or `redirect`"),
            );
        }
        if let Some(service) = &self.service {
            if !service_exists(service.get_ref()) {
                report(
                    Some(service.span()),
                    format!(
                        "route {name:?} refers to unknown service {:?}",
                        service.get_ref()
                    ),
                );
            }
        }
        for host in &self.hosts {
            if let Err(e) = check_host_pattern(host.get_ref()) {
                report(
                    Some(host.span()),
                    format!("bad host {:?}: {e}", host.get_ref()),
                );
            }
        }
        if !matches!(self.path.get_ref().chars().next(), Some('/' | '=' | '~')) {
            report(
                Some(self.path.span()),
                format!(
                    "path {:?} must start with '/' (prefix), '=' (exact) or '~' (regex)",
                    self.path.get_ref()
                ),
            );
        }
        // An exact path is all prefix: its requests go upstream as `/`. A regex has none.
        if self.strip_prefix && self.path.get_ref().starts_with('~') {
            report(
                Some(self.path.span()),
                "strip_prefix needs a prefix or exact path (a regex has no prefix to strip)".into(),
            );
        }
        for method in &self.methods {
            if !METHODS.contains(&method.get_ref().as_str()) {
                report(
                    Some(method.span()),
                    format!(
                        "unknown method {:?} (expected one of {})",
                        method.get_ref(),
                        METHODS.join(", ")
                    ),
                );
            }
        }
        check_headers(&self.headers, report);
        check_cookies(&self.cookies, report);
        if self.query.get_ref().keys().any(String::is_empty) {
            report(
                Some(self.query.span()),
                "a query parameter needs a name".into(),
            );
        }
        if let Some(hsts) = &self.hsts {
            if http::HeaderValue::from_str(hsts.get_ref()).is_err()
                || !hsts.get_ref().contains("max-age=")
            {
                report(
                    Some(hsts.span()),
                    "hsts must be a Strict-Transport-Security value with max-age=".into(),
                );
            }
        }
        let (subset, split) = (self.subset.get_ref(), self.split.get_ref());
        if !subset.is_empty() && !split.is_empty() {
            report(
                Some(self.subset.span()),
                format!("route {name:?} has both `subset` and `split`"),
            );
        }
        if (!subset.is_empty() || !split.is_empty()) && self.service.is_none() {
            report(
                Some(self.name.span()),
                format!("route {name:?}: `subset`/`split` need a `service`"),
            );
        }
        if !split.is_empty() && split.iter().map(|s| s.weight as u64).sum::<u64>() == 0 {
            report(
                Some(self.split.span()),
                format!("route {name:?}: split weights add up to 0"),
            );
        }
        if http::HeaderName::from_bytes(self.subset_header.as_bytes()).is_err() {
            report(
                Some(self.name.span()),
                format!("bad subset_header {:?}", self.subset_header),
            );
        }
        if let Some(respond) = &self.respond {
            let status = *respond.status.get_ref();
            if !(200..=599).contains(&status) {
                report(
                    Some(respond.status.span()),
                    format!("respond status {status} is not between 200 and 599"),
                );
            }
            check_headers(&respond.headers, report);
        }
        if let Some(redirect) = &self.redirect {
            let status = *redirect.status.get_ref();
            if ![301, 302, 303, 307, 308].contains(&status) {
                report(
                    Some(redirect.status.span()),
                    format!("redirect status {status} is not one of 301, 302, 303, 307, 308"),
                );
            }
            if http::HeaderValue::from_str(redirect.to.get_ref()).is_err()
                || redirect.to.get_ref().is_empty()
            {
                report(
                    Some(redirect.to.span()),
                    "redirect target is not a valid Location value".into(),
                );
            }
        }
    }
}

fn check_headers(
    headers: &Spanned<BTreeMap<String, String>>,
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) {
    for (name, value) in headers.get_ref() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            report(Some(headers.span()), format!("bad header name {name:?}"));
        }
        if http::HeaderValue::from_str(value).is_err() {
            report(
                Some(headers.span()),
                format!("bad value for header {name:?}"),
            );
        }
    }
}

/// Cookie names are tokens and values cookie-octets (RFC 6265 §4.1.1): anything else could
/// never be sent, so a route asking for it would silently never match.
fn check_cookies(
    cookies: &Spanned<BTreeMap<String, String>>,
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) {
    let token = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
    let octet = |b: u8| b.is_ascii_graphic() && !b"\",;\\".contains(&b);
    for (name, value) in cookies.get_ref() {
        if name.is_empty() || !name.bytes().all(token) {
            report(Some(cookies.span()), format!("bad cookie name {name:?}"));
        }
        if !value.bytes().all(octet) {
            report(
                Some(cookies.span()),
                format!("bad value for cookie {name:?} (no spaces, quotes, commas, semicolons or backslashes)"),
            );
        }
    }
}

/// A configured host is an exact name (`chat.example.com`) or a wildcard (`*.example.org`).
pub fn check_host_pattern(pattern: &str) -> Result<(), String> {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    if name.is_empty() {
        return Err("empty host name".into());
    }
    if name.contains('*') {
        return Err("a wildcard is only allowed as the first label (`*.example.com`)".into());
    }
    if name.contains(':') {
        return Err("host patterns match names only; leave the port out".into());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err("only letters, digits, '-', '_' and '.' are allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_patterns() {
        assert!(check_host_pattern("*.example.org").is_ok());
        assert!(check_host_pattern("a.*.org").is_err());
        assert!(check_host_pattern("a.org:80").is_err());
        assert!(check_host_pattern("").is_err());
    }
}
