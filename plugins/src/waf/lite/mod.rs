//! `type = "waf"`, `engine = "lite"`: the cheap engine. Inspects the path, query, cookies,
//! User-Agent and (bounded) body for SQL injection, XSS, path traversal, command injection,
//! scanner signatures and protocol anomalies (libinjection plus a few CRS-shaped patterns;
//! microseconds per request, inline). `mode = "block"` answers 403; `mode = "detect"` only
//! logs and counts, for tuning a route before enforcing. Exclusions turn checks off for a
//! path prefix, optionally only for some parameters (a rich-text field that legitimately
//! carries HTML).

mod detect;
mod targets;

pub use detect::{decode, inspect, inspect_within, is_scanner, Check};

use crate::{order, parse_config, Caller, Ctx, Plugin, Reply, MAX_BODY_INSPECT};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use serde::Deserialize;
use serde_json::json;
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

pub struct LiteWaf {
    name: String,
    mode: Mode,
    checks: Vec<Check>,
    max_body: usize,
    exclusions: Vec<Exclusion>,
}

impl LiteWaf {
    /// Builds from the plugin's table without its `engine` key.
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
        Ok(Arc::new(LiteWaf {
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
    fn act(&self, finding: Finding, cx: &mut Caller) -> Result<(), Reply> {
        let action = match self.mode {
            Mode::Block => "block",
            Mode::Detect => "detect",
        };
        crate::metrics::get()
            .waf_matches
            .with_label_values(&[&*cx.route, finding.check.as_str(), action])
            .inc();
        cx.log.push((
            "waf",
            json!({
                "engine": "lite",
                "action": action,
                "rules": [finding.check.as_str()],
                "target": &finding.target,
            }),
        ));
        log::warn!(
            "waf {}: {} in {} on route {} from {} ({action})",
            self.name,
            finding.check.as_str(),
            finding.target,
            cx.route,
            cx.client_ip
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
impl Plugin for LiteWaf {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::WAF
    }

    /// Match series are labelled by route, which only requests name: none is declared.
    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[403]);
    }

    fn body_limit(&self) -> usize {
        self.max_body
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let found = targets::inspect_head(req, &|param| self.checks_for(req.uri.path(), param));
        match found {
            Some(finding) => self.act(finding, cx),
            None => Ok(()),
        }
    }

    async fn on_request_body(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        let Some(body) = body else {
            return Ok(());
        };
        let found =
            targets::inspect_body(req, body, &|param| self.checks_for(req.uri.path(), param));
        match found {
            Some(finding) => self.act(finding, cx),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{testing, Chain};

    /// `1' OR '1'='1' --`, percent-encoded for a query.
    const SQLI: &str = "1%27%20OR%20%271%27%3D%271%27%20--";
    /// `<script>alert(1)</script>`, percent-encoded.
    const XSS: &str = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";

    async fn run(table: &str, uri: &str) -> Result<(), crate::Reply> {
        let p = testing::plugin(&format!("type = \"waf\"\nengine = \"lite\"\n{table}"));
        let req = testing::request("GET", uri, &[("host", "shop.example.com")]);
        testing::run(&p, &req, "192.0.2.1").await.0
    }

    /// `tidegate_waf_matches_total` of route "r" (the one `testing::run` uses).
    fn matches(check: &str, action: &str) -> u64 {
        crate::metrics::get()
            .waf_matches
            .with_label_values(&["r", check, action])
            .get()
    }

    #[tokio::test]
    async fn sql_injection_in_the_query_is_403_in_block_mode() {
        let reply = run("", &format!("/search?q={SQLI}")).await.unwrap_err();
        assert_eq!(reply.status, 403);
        let message = testing::body(&reply)["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("sqli in query:q"), "{message}");
    }

    #[tokio::test]
    async fn detect_mode_passes_the_request_and_counts_the_match() {
        let before = matches("sqli", "detect");
        run("mode = \"detect\"", &format!("/search?q={SQLI}"))
            .await
            .unwrap();
        assert!(matches("sqli", "detect") > before);
    }

    #[tokio::test]
    async fn a_match_is_counted_by_route_and_logged() {
        let p = testing::plugin("type = \"waf\"\nengine = \"lite\"");
        let req = testing::request(
            "GET",
            &format!("/search?q={SQLI}"),
            &[("host", "shop.example.com")],
        );
        let before = matches("sqli", "block");
        let (result, state) = testing::run(&p, &req, "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 403);
        assert!(matches("sqli", "block") > before);
        let (key, value) = &state.caller.log[0];
        assert_eq!(*key, "waf");
        assert_eq!(value["engine"], "lite");
        assert_eq!(value["action"], "block");
        assert_eq!(value["rules"], serde_json::json!(["sqli"]));
        assert_eq!(value["target"], "query:q");
    }

    #[tokio::test]
    async fn benign_requests_pass() {
        for uri in [
            "/",
            "/search?q=blue%20shoes&page=2",
            "/products/42?sort=price&order=asc",
            "/search?q=Conan%20O%27Brien",
        ] {
            assert!(run("", uri).await.is_ok(), "{uri}");
        }
    }

    #[tokio::test]
    async fn an_exclusion_turns_checks_off_below_its_path_prefix() {
        let table = "exclusions = [{ path = \"/admin/\", checks = [\"sqli\"] }]";
        assert!(run(table, &format!("/admin/search?q={SQLI}")).await.is_ok());
        assert_eq!(
            run(table, &format!("/search?q={SQLI}"))
                .await
                .unwrap_err()
                .status,
            403
        );
        // Only the excluded checks are off.
        assert_eq!(
            run(table, &format!("/admin/search?q={XSS}"))
                .await
                .unwrap_err()
                .status,
            403
        );
    }

    #[tokio::test]
    async fn an_exclusion_with_params_covers_only_those_parameters() {
        let table = "exclusions = [{ path = \"/notes/\", params = [\"content\"], checks = [\"xss\", \"sqli\"] }]";
        assert!(run(table, &format!("/notes/1?content={XSS}")).await.is_ok());
        assert_eq!(
            run(table, &format!("/notes/1?title={XSS}"))
                .await
                .unwrap_err()
                .status,
            403
        );
    }

    #[tokio::test]
    async fn an_exclusion_without_checks_turns_every_check_off() {
        let table = "exclusions = [{ path = \"/webhooks/\" }]";
        assert!(run(table, &format!("/webhooks/in?q={SQLI}&x={XSS}"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn only_the_configured_checks_run() {
        let table = "checks = [\"xss\"]";
        assert!(run(table, &format!("/search?q={SQLI}")).await.is_ok());
        assert_eq!(
            run(table, &format!("/search?q={XSS}"))
                .await
                .unwrap_err()
                .status,
            403
        );
    }

    #[tokio::test]
    async fn the_body_is_inspected_in_the_body_phase() {
        let p = testing::plugin("type = \"waf\"\nengine = \"lite\"");
        assert_eq!(p.body_limit(), crate::MAX_BODY_INSPECT);
        let chain = Chain::new(vec![p]);
        let req = testing::request(
            "POST",
            "/comments",
            &[
                ("host", "shop.example.com"),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
        );
        let body = format!("name=ann&comment={SQLI}");
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let reply = chain
            .request_body(&req, Some(body.as_bytes()), &mut state)
            .await
            .unwrap_err();
        assert_eq!(reply.status, 403);
        assert!(chain
            .request_body(&req, Some(b"name=ann&comment=hello"), &mut state)
            .await
            .is_ok());
        // A body that could not be read is passed uninspected.
        assert!(chain.request_body(&req, None, &mut state).await.is_ok());
    }

    #[test]
    fn bad_settings_are_refused() {
        for table in [
            "max_body = 65537",
            "checks = []",
            "mode = \"log\"",
            "checks = [\"sql\"]",
        ] {
            let error = testing::refusal(&format!("type = \"waf\"\nengine = \"lite\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
        }
    }
}
