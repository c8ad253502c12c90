//! `type = "waf"`: inspects the path, query, cookies, User-Agent and (bounded) body for SQL
//! injection, XSS, path traversal, command injection, scanner signatures and protocol
//! anomalies. `mode = "block"` answers 403; `mode = "detect"` only logs and counts, for
//! tuning a route before enforcing. Exclusions turn checks off for a path prefix, optionally
//! only for some parameters (a rich-text field that legitimately carries HTML).

mod detect;
mod targets;

pub use detect::{decode, inspect, inspect_within, is_scanner, Check};

use crate::{order, parse_config, Plugin, Reply, RequestState, MAX_BODY_INSPECT};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use serde::Deserialize;
use std::borrow::Cow;
use std::sync::Arc;
use targets::Finding;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mode: Mode,
    /// Which checks run (default: all).
    #[serde(default = "all_checks")]
    checks: Vec<Check>,
    /// Body bytes inspected (at most 65536); a larger or chunked body is passed uninspected.
    #[serde(default = "default_max_body")]
    max_body: usize,
    #[serde(default)]
    exclusions: Vec<Exclusion>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Block,
    Detect,
}

/// `{ path = "/api/notes/", params = ["content"], checks = ["xss"] }`: for paths starting
/// with `path`, skip `checks` (all when empty) on `params` (every target when empty).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exclusion {
    path: String,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    checks: Vec<Check>,
}

fn all_checks() -> Vec<Check> {
    Check::ALL.to_vec()
}
fn default_max_body() -> usize {
    MAX_BODY_INSPECT
}

pub struct Waf {
    name: String,
    mode: Mode,
    checks: Vec<Check>,
    max_body: usize,
    exclusions: Vec<Exclusion>,
}

impl Waf {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        if config.max_body > MAX_BODY_INSPECT {
            return Err(format!(
                "plugin {name:?}: max_body is at most {MAX_BODY_INSPECT}"
            ));
        }
        if config.checks.is_empty() {
            return Err(format!("plugin {name:?}: `checks` must not be empty"));
        }
        Ok(Arc::new(Waf {
            name: name.into(),
            mode: config.mode,
            checks: config.checks,
            max_body: config.max_body,
            exclusions: config.exclusions,
        }))
    }

    /// The checks that apply to `param` on `path`, after exclusions (no copy when none
    /// applies, which is the request path's usual case).
    fn checks_for(&self, path: &str, param: Option<&str>) -> Cow<'_, [Check]> {
        let mut checks = Cow::Borrowed(self.checks.as_slice());
        for ex in &self.exclusions {
            if !path.starts_with(&ex.path) {
                continue;
            }
            let covers_param =
                ex.params.is_empty() || param.is_some_and(|p| ex.params.iter().any(|x| x == p));
            if covers_param {
                checks
                    .to_mut()
                    .retain(|c| !ex.checks.is_empty() && !ex.checks.contains(c));
            }
        }
        checks
    }

    /// Blocks or records a finding.
    fn act(&self, finding: Finding, state: &RequestState) -> Result<(), Reply> {
        let action = match self.mode {
            Mode::Block => "blocked",
            Mode::Detect => "detected",
        };
        crate::metrics::get()
            .waf_matches
            .with_label_values(&[self.name.as_str(), finding.check.as_str(), action])
            .inc();
        log::warn!(
            "waf {}: {} in {} on route {} from {} ({action})",
            self.name,
            finding.check.as_str(),
            finding.target,
            state.route,
            state.client_ip
        );
        match self.mode {
            Mode::Block => Err(Reply::json(
                403,
                "Forbidden",
                &format!(
                    "blocked by the web application firewall ({} in {})",
                    finding.check.as_str(),
                    finding.target
                ),
            )),
            Mode::Detect => Ok(()),
        }
    }
}

#[async_trait]
impl Plugin for Waf {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::WAF
    }

    fn body_limit(&self) -> usize {
        self.max_body
    }

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        let found = targets::inspect_head(req, &|param| self.checks_for(req.uri.path(), param));
        match found {
            Some(finding) => self.act(finding, state),
            None => Ok(()),
        }
    }

    async fn on_request_body(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        let Some(body) = body else {
            return Ok(());
        };
        let found =
            targets::inspect_body(req, body, &|param| self.checks_for(req.uri.path(), param));
        match found {
            Some(finding) => self.act(finding, state),
            None => Ok(()),
        }
    }
}
