//! `type = "waf"`: a web application firewall with two engines.
//!
//! * `engine = "crs"` (the default): the OWASP Core Rule Set on libmodsecurity 3, a real
//!   SecLang engine ([`crs`]). Anomaly scoring at a paranoia level, thresholds, CRS-style
//!   exclusions, allowed methods and content types, the operator's own rules file, and
//!   per-route overrides. It inspects the method, target and arguments, every header and
//!   cookie, and bodies (urlencoded, multipart with file names, JSON, XML) up to `max_body`.
//!   A body the gateway cannot hold back for inspection (larger than `max_body`, or of
//!   unknown length) is refused with 413 (`oversize = "reject"`, the default — an
//!   uninspected body is a bypass) or passed with only its headers inspected
//!   (`oversize = "pass"`).
//! * `engine = "lite"`: today's cheap libinjection checks ([`lite`]), microseconds per
//!   request, with their own settings (`checks`, `max_body`, `exclusions` with `checks`).
//!
//! Rules are loaded when a snapshot is built (one rules set per distinct set of settings,
//! shared by every request and by equal sets of later snapshots); a rules file that fails
//! to load refuses the config with the engine's message, and the running snapshot keeps
//! serving with its rules. A blocked request gets `status` (403) and never goes upstream;
//! every match goes to the access log (`waf` field) and to
//! `tidegate_waf_matches_total{route,rule,action}`.
//!
//! Responses (`inspect_responses`, on by default) meet the CRS's outbound rules: status and
//! headers, and the first `response_body_limit` bytes of bodies of the
//! `response_body_types`. Such a body is held back until that prefix is in (or the body
//! ends), so an outbound block lets no inspected byte through. A block on the header
//! answers `status` instead of the upstream's response; a block on the body cuts the
//! response after its header (Pingora sends the header before the body exists, as
//! nginx + ModSecurity does): the client gets no byte of the body and the connection
//! closes. Outbound matches go to the access log's `waf_response` field.

pub mod crs;
pub mod lite;
mod response;

use crate::{order, parse_config, Ctx, Plugin, Reply, MAX_BODY_INSPECT};
use async_trait::async_trait;
use bytes::Bytes;
use crs::engine::Verdict;
use crs::rules::{self as seclang, Crs, Exclusion, Responses, Settings};
use crs::{Loaded, Unavailable};
use pingora_http::{RequestHeader, ResponseHeader};
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

pub use lite::LiteWaf;

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Block,
    Detect,
}

/// What to do with a body the WAF cannot inspect (larger than `max_body`, chunked).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Oversize {
    /// 413: an uninspected body is a bypass.
    #[default]
    Reject,
    /// Inspect the headers only and let the body through.
    Pass,
}

/// `[plugins.NAME]` with `engine = "crs"` (the `engine` key is taken off first).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_paranoia")]
    paranoia_level: u8,
    #[serde(default = "default_inbound")]
    inbound_anomaly_threshold: u32,
    #[serde(default = "default_outbound")]
    outbound_anomaly_threshold: u32,
    /// Default: the CRS's (GET HEAD POST OPTIONS).
    allowed_methods: Option<Vec<String>>,
    /// Default: the CRS's list.
    allowed_content_types: Option<Vec<String>>,
    /// Body bytes inspected, at most 65536.
    #[serde(default = "default_max_body")]
    max_body: usize,
    #[serde(default)]
    oversize: Oversize,
    /// The refusal status.
    #[serde(default = "default_status")]
    status: u16,
    #[serde(default = "default_crs_dir")]
    crs_dir: PathBuf,
    /// A CRS setup file instead of the generated setup.
    crs_setup: Option<PathBuf>,
    /// The operator's own SecLang, loaded after the CRS.
    rules_file: Option<PathBuf>,
    #[serde(default)]
    exclusions: Vec<ExclusionConfig>,
    /// Run the outbound rules on upstream responses.
    #[serde(default = "yes")]
    inspect_responses: bool,
    /// Response body bytes inspected (held back until inspected), at most 1 MiB.
    #[serde(default = "default_response_body_limit")]
    response_body_limit: usize,
    /// Content types whose response bodies are inspected.
    #[serde(default = "default_response_body_types")]
    response_body_types: Vec<String>,
    /// Route name → the settings that differ there.
    #[serde(default)]
    routes: BTreeMap<String, RouteConfig>,
}

/// `{ ids = [942100], tags = ["attack-sqli"], path = "/api/notes/", params = ["content"] }`:
/// these rules (ids and/or tags; neither: every CRS rule), below this path prefix (none:
/// everywhere), on these parameters (none: the whole rule). A path alone turns the WAF off
/// below it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionConfig {
    #[serde(default)]
    ids: Vec<u32>,
    #[serde(default)]
    tags: Vec<String>,
    path: Option<String>,
    #[serde(default)]
    params: Vec<String>,
}

/// A route's overrides. `exclusions` are added to the plugin's; the rest replace its values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteConfig {
    mode: Option<Mode>,
    paranoia_level: Option<u8>,
    inbound_anomaly_threshold: Option<u32>,
    outbound_anomaly_threshold: Option<u32>,
    allowed_methods: Option<Vec<String>>,
    allowed_content_types: Option<Vec<String>>,
    status: Option<u16>,
    inspect_responses: Option<bool>,
    #[serde(default)]
    exclusions: Vec<ExclusionConfig>,
}

fn yes() -> bool {
    true
}
/// The most response body bytes held back for inspection.
const MAX_RESPONSE_INSPECT: usize = 1 << 20;
fn default_response_body_limit() -> usize {
    64 * 1024
}
/// ModSecurity's recommended `SecResponseBodyMimeType`, and JSON (the APIs behind this
/// gateway answer errors in JSON). Streams (`text/event-stream`) are deliberately absent:
/// holding them back would stall them.
fn default_response_body_types() -> Vec<String> {
    ["text/plain", "text/html", "text/xml", "application/json"]
        .map(String::from)
        .to_vec()
}

fn default_paranoia() -> u8 {
    1
}
fn default_inbound() -> u32 {
    5
}
fn default_outbound() -> u32 {
    4
}
fn default_max_body() -> usize {
    MAX_BODY_INSPECT
}
fn default_status() -> u16 {
    403
}
fn default_crs_dir() -> PathBuf {
    PathBuf::from("/usr/share/modsecurity-crs")
}

impl From<&ExclusionConfig> for Exclusion {
    fn from(e: &ExclusionConfig) -> Exclusion {
        Exclusion {
            ids: e.ids.clone(),
            tags: e.tags.clone(),
            path: e.path.clone(),
            params: e.params.clone(),
        }
    }
}

/// The CRS engine's plugin; [`Waf::build`] also builds the lite engine.
pub struct Waf {
    name: String,
    default: Arc<Profile>,
    routes: HashMap<String, Arc<Profile>>,
    max_body: usize,
    oversize: Oversize,
    /// Every status this plugin may answer with.
    statuses: Vec<u16>,
}

/// One route's (or the default) rules and how their verdicts are acted on.
struct Profile {
    rules: Loaded,
    mode: Mode,
    status: u16,
    /// `None`: responses are not inspected.
    responses: Option<Responses>,
}

/// Which side of the exchange a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

/// What the headers say about a body.
#[derive(Debug, PartialEq, Eq)]
enum Body {
    None,
    Declared(usize),
    /// Chunked, an unreadable length, or HTTP/2 without a length on a method with a body.
    Unknown,
}

fn body_of(req: &RequestHeader) -> Body {
    if req.headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Body::Unknown;
    }
    match req.headers.get(http::header::CONTENT_LENGTH) {
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<usize>().ok()) {
            Some(0) => Body::None,
            Some(n) => Body::Declared(n),
            None => Body::Unknown,
        },
        // HTTP/2 frames a body without Content-Length; the gateway does not read those.
        None if req.version >= http::Version::HTTP_2
            && !matches!(
                req.method.as_str(),
                "GET" | "HEAD" | "OPTIONS" | "DELETE" | "TRACE" | "CONNECT"
            ) =>
        {
            Body::Unknown
        }
        None => Body::None,
    }
}

impl Waf {
    /// Builds a `type = "waf"` plugin of the engine its table names.
    pub fn build(name: &str, mut table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let engine = match table.remove("engine") {
            None => "crs".to_string(),
            Some(toml::Value::String(engine)) => engine,
            Some(other) => {
                return Err(format!(
                    "plugin {name:?}: engine is \"crs\" or \"lite\", not {other}"
                ))
            }
        };
        match engine.as_str() {
            "lite" => LiteWaf::build(name, table),
            "crs" => {
                if table.contains_key("checks") {
                    return Err(format!(
                        "plugin {name:?}: `checks` is a setting of engine = \"lite\" \
                         (the default engine is \"crs\")"
                    ));
                }
                Ok(Arc::new(Waf::build_crs(name, table)?))
            }
            other => Err(format!(
                "plugin {name:?}: unknown engine {other:?} (crs or lite)"
            )),
        }
    }

    fn build_crs(name: &str, table: toml::Table) -> Result<Waf, String> {
        let config: Config = parse_config(name, table)?;
        let fail = |e: String| format!("plugin {name:?}: {e}");
        if config.max_body == 0 || config.max_body > MAX_BODY_INSPECT {
            return Err(fail(format!("max_body is 1 to {MAX_BODY_INSPECT}")));
        }
        if config.response_body_limit == 0 || config.response_body_limit > MAX_RESPONSE_INSPECT {
            return Err(fail(format!(
                "response_body_limit is 1 to {MAX_RESPONSE_INSPECT}"
            )));
        }
        let responses = Responses {
            body_limit: config.response_body_limit,
            body_types: config
                .response_body_types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
        };
        check_status(config.status).map_err(fail)?;
        let crs = Crs::discover(&config.crs_dir).map_err(fail)?;
        if let Some(path) = &config.crs_setup {
            seclang::check_setup_file(path).map_err(fail)?;
        }
        if let Some(path) = &config.rules_file {
            seclang::check_rules_file(path).map_err(fail)?;
        }
        let base = Settings {
            detect: config.mode == Mode::Detect,
            paranoia_level: config.paranoia_level,
            inbound_threshold: config.inbound_anomaly_threshold,
            outbound_threshold: config.outbound_anomaly_threshold,
            allowed_methods: config.allowed_methods.clone(),
            allowed_content_types: config.allowed_content_types.clone(),
            max_body: config.max_body,
            crs_setup: config.crs_setup.clone(),
            rules_file: config.rules_file.clone(),
            exclusions: config.exclusions.iter().map(Exclusion::from).collect(),
            responses: config.inspect_responses.then(|| responses.clone()),
        };
        let default = Arc::new(Profile::load(&base, &crs, config.status).map_err(fail)?);
        let mut statuses = vec![config.status, 400, 503];
        if config.oversize == Oversize::Reject {
            statuses.push(413);
        }
        let mut routes = HashMap::with_capacity(config.routes.len());
        for (route, over) in &config.routes {
            let fail = |e: String| format!("plugin {name:?}: route {route:?}: {e}");
            let status = over.status.unwrap_or(config.status);
            check_status(status).map_err(fail)?;
            let mut settings = base.clone();
            if let Some(mode) = over.mode {
                settings.detect = mode == Mode::Detect;
            }
            if let Some(pl) = over.paranoia_level {
                settings.paranoia_level = pl;
            }
            if let Some(t) = over.inbound_anomaly_threshold {
                settings.inbound_threshold = t;
            }
            if let Some(t) = over.outbound_anomaly_threshold {
                settings.outbound_threshold = t;
            }
            if let Some(methods) = &over.allowed_methods {
                settings.allowed_methods = Some(methods.clone());
            }
            if let Some(types) = &over.allowed_content_types {
                settings.allowed_content_types = Some(types.clone());
            }
            if let Some(on) = over.inspect_responses {
                settings.responses = on.then(|| responses.clone());
            }
            settings
                .exclusions
                .extend(over.exclusions.iter().map(Exclusion::from));
            // Equal settings load once: the rules set is shared through the engine's cache.
            let profile = Profile::load(&settings, &crs, status).map_err(fail)?;
            statuses.push(status);
            routes.insert(route.clone(), Arc::new(profile));
        }
        statuses.sort_unstable();
        statuses.dedup();
        Ok(Waf {
            name: name.into(),
            default,
            routes,
            max_body: config.max_body,
            oversize: config.oversize,
            statuses,
        })
    }

    fn profile(&self, route: &str) -> Arc<Profile> {
        self.routes.get(route).unwrap_or(&self.default).clone()
    }

    /// Runs the whole transaction (off the event loop) and acts on the verdict.
    async fn inspect(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        let profile = self.profile(&cx.route);
        let request = crs::Request::new(req, &cx.client_ip, body);
        let stay_open = profile.responses.is_some();
        match crs::inspect(profile.rules.get(), request, stay_open).await {
            Ok((verdict, open)) => {
                self.conclude(&profile, &verdict, Side::Request, cx)?;
                if let Some(tx) = open {
                    let head = req.method == http::Method::HEAD;
                    cx.keep(response::Stage::Open { tx, profile, head });
                }
                Ok(())
            }
            Err(why) => Err(self.unavailable(why, cx)),
        }
    }

    /// Logs and counts a verdict with matches; the refusal when it blocks.
    fn conclude(
        &self,
        profile: &Profile,
        v: &Verdict,
        side: Side,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        let score = match side {
            Side::Request => v.score,
            Side::Response => v.outbound_score,
        };
        if v.rules.is_empty() && score == 0 && !v.disruptive {
            return Ok(());
        }
        let block = v.disruptive && profile.mode == Mode::Block;
        let action = match profile.mode {
            Mode::Detect => "detect",
            Mode::Block if block => "block",
            Mode::Block => "pass",
        };
        let ids = v.ids();
        let mut labels: Vec<String> = ids
            .iter()
            .map(|id| match id {
                0 => "unknown".to_string(),
                id => id.to_string(),
            })
            .collect();
        if labels.is_empty() {
            // Refused without a rule to name (a body over the engine's own limit).
            labels.push("unknown".to_string());
        }
        let metric = &crate::metrics::get().waf_matches;
        for rule in &labels {
            metric
                .with_label_values(&[&*cx.route, rule.as_str(), action])
                .inc();
        }
        let messages: Vec<&str> = v.rules.iter().map(|m| m.msg.as_str()).collect();
        let (field, what) = match side {
            Side::Request => ("waf", "request"),
            Side::Response => ("waf_response", "response"),
        };
        cx.log.push((
            field,
            json!({
                "engine": "crs",
                "action": action,
                "score": score,
                "rules": ids,
                "messages": messages,
            }),
        ));
        let line = format!(
            "waf {}: {action} {what} on route {} from {}: score {score}, rules {}",
            self.name,
            cx.route,
            cx.client_ip,
            labels.join(" ")
        );
        if action == "pass" {
            log::info!("{line}");
        } else {
            log::warn!("{line}");
        }
        if !block {
            return Ok(());
        }
        // The engine's 403 (deny) becomes the configured status; another status a rule chose
        // (400 for a body that does not parse) is kept.
        let status = if v.status != 403 && (400..=599).contains(&v.status) {
            v.status
        } else {
            profile.status
        };
        let error = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Forbidden");
        Err(Reply::json(
            status,
            error,
            &format!("{what} blocked by the web application firewall"),
        ))
    }

    fn unavailable(&self, why: Unavailable, cx: &Ctx<'_>) -> Reply {
        if why == Unavailable::Overloaded {
            crate::metrics::get().waf_overload.inc();
        }
        log::warn!(
            "waf {}: request on route {} from {} not inspected ({why:?}): 503",
            self.name,
            cx.route,
            cx.client_ip
        );
        Reply::json(
            503,
            "Service Unavailable",
            "the web application firewall is overloaded; try again later",
        )
    }

    fn too_large(&self, cx: &Ctx<'_>) -> Reply {
        log::info!(
            "waf {}: body on route {} from {} cannot be inspected (over {} bytes or of unknown length): 413",
            self.name,
            cx.route,
            cx.client_ip,
            self.max_body
        );
        Reply::json(
            413,
            "Payload Too Large",
            &format!(
                "the web application firewall inspects request bodies of a known length up to {} bytes",
                self.max_body
            ),
        )
    }
}

fn check_status(status: u16) -> Result<(), String> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("status {status} is not an error status (400-599)"))
    }
}

impl Profile {
    fn load(settings: &Settings, crs: &Crs, status: u16) -> Result<Profile, String> {
        let parts = seclang::plan(settings, crs)?;
        let rules = crs::engine::Rules::load_shared(&parts)?;
        Ok(Profile {
            rules: Loaded::new(rules),
            mode: if settings.detect {
                Mode::Detect
            } else {
                Mode::Block
            },
            status,
            responses: settings.responses.clone(),
        })
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

    /// Match series are per route and rule, known only from traffic: none is declared.
    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &self.statuses);
    }

    fn body_limit(&self) -> usize {
        self.max_body
    }

    /// A request without a body is decided here, whole; one with a body waits for it.
    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        match body_of(req) {
            Body::None => self.inspect(req, None, cx).await,
            Body::Declared(n) if n <= self.max_body => Ok(()),
            Body::Declared(_) | Body::Unknown => match self.oversize {
                Oversize::Reject => Err(self.too_large(cx)),
                Oversize::Pass => Ok(()),
            },
        }
    }

    async fn on_request_body(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        cx: &mut Ctx<'_>,
    ) -> Result<(), Reply> {
        if body_of(req) == Body::None {
            return Ok(()); // decided in on_request
        }
        let body = match body {
            Some(body) if body.len() <= self.max_body => Some(body),
            _ => match self.oversize {
                Oversize::Reject => return Err(self.too_large(cx)),
                Oversize::Pass => None,
            },
        };
        self.inspect(req, body, cx).await
    }

    fn on_upstream_response(&self, resp: &ResponseHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        self.inspect_response(resp, cx)
    }

    fn inspects_response_body(&self) -> bool {
        self.default.responses.is_some() || self.routes.values().any(|p| p.responses.is_some())
    }

    fn on_response_body(
        &self,
        body: &mut Option<Bytes>,
        end: bool,
        cx: &mut Ctx<'_>,
    ) -> Result<(), String> {
        self.inspect_response_body(body, end, cx)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{testing, Chain};

    /// Whether the Debian CRS the tests load is installed; says so when not.
    /// The CRS is a test requirement (scripts/test.sh installs it): without it these tests
    /// fail rather than pass vacuously.
    pub(crate) fn require_crs() {
        assert!(
            std::path::Path::new("/usr/share/modsecurity-crs/rules").is_dir(),
            "/usr/share/modsecurity-crs is absent: apt install modsecurity-crs (scripts/test.sh does)"
        );
    }

    /// `1' OR '1'='1`, percent-encoded for a query.
    const SQLI: &str = "1%27%20OR%20%271%27%3D%271";

    const BROWSER: [(&str, &str); 4] = [
        ("host", "shop.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
    ];

    fn plugin(table: &str) -> Arc<dyn Plugin> {
        testing::plugin(&format!("type = \"waf\"\n{table}"))
    }

    /// GET `uri` through `p` alone on route "r": the result and the access-log field.
    async fn get(p: &Arc<dyn Plugin>, uri: &str) -> (Result<(), Reply>, Option<serde_json::Value>) {
        let req = testing::request("GET", uri, &BROWSER);
        let (result, state) = testing::run(p, &req, "192.0.2.1").await;
        (result, waf_field(&state))
    }

    fn waf_field(state: &crate::RequestState) -> Option<serde_json::Value> {
        state
            .caller
            .log
            .iter()
            .find(|(k, _)| *k == "waf")
            .map(|(_, v)| v.clone())
    }

    /// POST `body` through a chain of `p` (both phases) on route "r".
    async fn post(
        p: &Arc<dyn Plugin>,
        uri: &str,
        content_type: &str,
        body: &str,
    ) -> (Result<(), Reply>, Option<serde_json::Value>) {
        let length = body.len().to_string();
        let mut headers = BROWSER.to_vec();
        headers.push(("content-type", content_type));
        headers.push(("content-length", length.as_str()));
        let req = testing::request("POST", uri, &headers);
        let chain = Chain::new(vec![p.clone()]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        let mut result = chain.request(&req, &mut state).await;
        if result.is_ok() {
            result = chain
                .request_body(&req, Some(body.as_bytes()), &mut state)
                .await;
        }
        (result, waf_field(&state))
    }

    fn matches(route: &str, rule: &str, action: &str) -> u64 {
        crate::metrics::get()
            .waf_matches
            .with_label_values(&[route, rule, action])
            .get()
    }

    #[tokio::test]
    async fn sql_injection_is_403_with_the_rule_in_the_log_and_the_metric() {
        require_crs();
        let p = plugin("");
        let before = matches("r", "942100", "block");
        let (result, field) = get(&p, &format!("/search?id={SQLI}")).await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 403);
        let body = testing::body(&reply);
        assert_eq!(body["error"], "Forbidden");
        assert_eq!(
            body["message"],
            "request blocked by the web application firewall"
        );
        let field = field.unwrap();
        assert_eq!(field["engine"], "crs");
        assert_eq!(field["action"], "block");
        assert_eq!(field["score"], 5);
        let rules = field["rules"].as_array().unwrap();
        assert!(rules.contains(&json!(942100)), "{field}");
        assert!(rules.contains(&json!(949110)), "{field}");
        assert!(matches("r", "942100", "block") > before);
    }

    #[tokio::test]
    async fn benign_requests_pass_without_a_log_field() {
        require_crs();
        let p = plugin("");
        for uri in [
            "/",
            "/search?q=blue%20shoes&page=2",
            "/products/42?sort=price",
        ] {
            let (result, field) = get(&p, uri).await;
            assert!(result.is_ok(), "{uri}");
            assert_eq!(field, None, "{uri}");
        }
        let (result, field) = post(
            &p,
            "/api/orders",
            "application/json",
            r#"{"name":"Alice","items":[1,2,3],"note":"after five, thanks"}"#,
        )
        .await;
        assert!(result.is_ok(), "{field:?}");
        assert_eq!(field, None);
    }

    #[tokio::test]
    async fn a_json_body_with_xss_is_refused_in_the_body_phase() {
        require_crs();
        let p = plugin("");
        assert_eq!(p.body_limit(), MAX_BODY_INSPECT);
        let (result, field) = post(
            &p,
            "/api/comments",
            "application/json",
            r#"{"comment":"<script>alert(document.cookie)</script>"}"#,
        )
        .await;
        assert_eq!(result.unwrap_err().status, 403);
        let field = field.unwrap();
        assert!(
            field["rules"].as_array().unwrap().contains(&json!(941100)),
            "{field}"
        );
        assert!(field["score"].as_u64().unwrap() >= 20, "{field}");
    }

    #[tokio::test]
    async fn detect_mode_passes_and_logs() {
        require_crs();
        let p = plugin("mode = \"detect\"");
        let before = matches("r", "942100", "detect");
        let (result, field) = get(&p, &format!("/search?id={SQLI}")).await;
        assert!(result.is_ok());
        let field = field.unwrap();
        assert_eq!(field["action"], "detect");
        assert_eq!(field["score"], 5);
        assert!(matches("r", "942100", "detect") > before);
    }

    #[tokio::test]
    async fn the_refusal_status_is_configurable() {
        require_crs();
        let p = plugin("status = 406");
        let reply = get(&p, &format!("/search?id={SQLI}")).await.0.unwrap_err();
        assert_eq!(reply.status, 406);
        assert_eq!(testing::body(&reply)["error"], "Not Acceptable");
    }

    #[tokio::test]
    async fn exclusions_by_id_and_by_path_and_param_let_a_request_pass() {
        require_crs();
        let p = plugin("exclusions = [{ ids = [942100] }]");
        assert!(get(&p, &format!("/search?id={SQLI}")).await.0.is_ok());
        let p = plugin(
            "exclusions = [{ ids = [942100], path = \"/api/notes/\", params = [\"content\"] }]",
        );
        let form = "application/x-www-form-urlencoded";
        let attack = format!("content={SQLI}");
        assert!(post(&p, "/api/notes/1", form, &attack).await.0.is_ok());
        let refused = post(&p, "/api/other", form, &attack).await.0;
        assert_eq!(refused.unwrap_err().status, 403);
        let refused = post(&p, "/api/notes/1", form, &format!("title={SQLI}"))
            .await
            .0;
        assert_eq!(refused.unwrap_err().status, 403);
    }

    #[tokio::test]
    async fn a_route_override_changes_the_mode_there_only() {
        require_crs();
        // testing::run uses route "r".
        let p = plugin("routes = { r = { mode = \"detect\" }, other = { paranoia_level = 2 } }");
        let (result, field) = get(&p, &format!("/search?id={SQLI}")).await;
        assert!(result.is_ok());
        assert_eq!(field.unwrap()["action"], "detect");
        let p = plugin("routes = { other = { mode = \"detect\" } }");
        assert_eq!(
            get(&p, &format!("/search?id={SQLI}"))
                .await
                .0
                .unwrap_err()
                .status,
            403
        );
    }

    #[tokio::test]
    async fn bodies_that_cannot_be_inspected_follow_the_oversize_policy() {
        require_crs();
        let large = [("host", "shop.example.com"), ("content-length", "100000")];
        let chunked = [
            ("host", "shop.example.com"),
            ("transfer-encoding", "chunked"),
        ];
        let reject = plugin("");
        let pass = plugin("oversize = \"pass\"\nmax_body = 1024");
        for headers in [&large[..], &chunked[..]] {
            let req = testing::request("POST", "/upload", headers);
            let reply = testing::run(&reject, &req, "192.0.2.1")
                .await
                .0
                .unwrap_err();
            assert_eq!(reply.status, 413);
            assert!(testing::run(&pass, &req, "192.0.2.1").await.0.is_ok());
        }
        // A declared length over max_body, and a body longer than it declared: same policy.
        let small = plugin("max_body = 16");
        let form = "application/x-www-form-urlencoded";
        let (result, _) = post(&small, "/f", form, "a=0123456789abcdef").await;
        assert_eq!(result.unwrap_err().status, 413);
        let req = testing::request(
            "POST",
            "/f",
            &[
                ("host", "shop.example.com"),
                ("content-type", form),
                ("content-length", "4"),
            ],
        );
        let chain = Chain::new(vec![small.clone()]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let reply = chain
            .request_body(&req, Some(b"a=0123456789abcdef"), &mut state)
            .await
            .unwrap_err();
        assert_eq!(reply.status, 413);
        // Passed oversize bodies still have their headers inspected.
        let req = testing::request(
            "POST",
            &format!("/upload?id={SQLI}"),
            &[
                ("host", "shop.example.com"),
                ("transfer-encoding", "chunked"),
            ],
        );
        let chain = Chain::new(vec![pass.clone()]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let reply = chain
            .request_body(&req, None, &mut state)
            .await
            .unwrap_err();
        assert_eq!(reply.status, 403);
    }

    #[test]
    fn a_broken_rules_file_is_refused_with_the_engine_message() {
        require_crs();
        let path =
            std::env::temp_dir().join(format!("tidegate-waf-plugin-{}.conf", std::process::id()));
        std::fs::write(
            &path,
            "# mine\nSecRule ARGS \"@rx x\" \"id:5000,phase:2,deny,\n",
        )
        .unwrap();
        let error = testing::refusal(&format!(
            "type = \"waf\"\nrules_file = \"{}\"",
            path.display()
        ));
        std::fs::remove_file(&path).unwrap();
        assert!(
            error.starts_with("plugin \"p\": rules_file: Rules error."),
            "{error}"
        );
        assert!(
            error.contains(&format!("File: {}. Line: 3.", path.display())),
            "{error}"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for table in [
            "engine = \"fast\"",
            "engine = 1",
            "checks = [\"sqli\"]",
            "mode = \"log\"",
            "paranoia_level = 5",
            "paranoia_level = 0",
            "inbound_anomaly_threshold = 0",
            "max_body = 65537",
            "max_body = 0",
            "status = 200",
            "oversize = \"truncate\"",
            "crs_dir = \"/nonexistent\"",
            "rules_file = \"/nonexistent/waf.conf\"",
            "crs_setup = \"/nonexistent/setup.conf\"",
            "allowed_methods = [\"GET\", \"P\\\"OST\"]",
            "exclusions = [{ path = \"/a b\" }]",
            "exclusions = [{}]",
            "exclusions = [{ ids = [1], check = [\"sqli\"] }]",
            "routes = { r = { max_body = 10 } }",
            "routes = { r = { status = 302 } }",
            "routes = { r = { paranoia_level = 9 } }",
            "cheks = 1",
        ] {
            let error = testing::refusal(&format!("type = \"waf\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
        }
        // The lite engine keeps its own settings.
        assert!(testing::try_plugin(
            "type = \"waf\"\nengine = \"lite\"\nchecks = [\"sqli\"]",
            &testing::context("")
        )
        .is_ok());
    }

    #[test]
    fn the_body_is_known_from_the_headers() {
        let req = |method: &str, headers: &[(&str, &str)]| testing::request(method, "/", headers);
        assert_eq!(body_of(&req("GET", &[])), Body::None);
        assert_eq!(
            body_of(&req("POST", &[("content-length", "0")])),
            Body::None
        );
        assert_eq!(
            body_of(&req("POST", &[("content-length", "12")])),
            Body::Declared(12)
        );
        assert_eq!(
            body_of(&req("POST", &[("content-length", "x")])),
            Body::Unknown
        );
        assert_eq!(
            body_of(&req("POST", &[("transfer-encoding", "chunked")])),
            Body::Unknown
        );
        let mut h2 = req("POST", &[]);
        h2.set_version(http::Version::HTTP_2);
        assert_eq!(body_of(&h2), Body::Unknown);
        let mut h2 = req("GET", &[]);
        h2.set_version(http::Version::HTTP_2);
        assert_eq!(body_of(&h2), Body::None);
    }
}
