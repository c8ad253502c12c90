//! The fleet view: which gateways exist (configured, or registered in Nacos), what config each
//! applies, and live figures computed from two consecutive scrapes of each one's /metrics.
//! The console only reads the gateways' admin listeners; a gateway that does not answer is
//! shown as down and keeps serving regardless.

use crate::config::{FleetConfig, StoreConfig};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Default)]
pub struct GatewayView {
    pub name: String,
    pub admin: String,
    pub up: bool,
    pub ready: bool,
    pub version: Option<u64>,
    pub hash: Option<String>,
    pub stale: bool,
    pub registry: Option<String>,
    pub rps: f64,
    pub error_ratio: f64,
    pub p99_ms: Option<f64>,
    pub websockets: f64,
    pub top_tenants: Vec<TenantRate>,
    pub top_rejected: Vec<TenantRate>,
    /// Live requests/s by route and label subset (blue/green shares).
    pub subsets: Vec<SubsetRate>,
    /// The WAF rules that matched most since the gateway started.
    pub waf_rules: Vec<WafRule>,
    /// The Ingress controller's report beside this gateway's config (what of the cluster's
    /// Ingresses and Gateway API routes was left out or differs), when it runs on one.
    pub translation: Option<serde_json::Value>,
    pub error: Option<String>,
    /// Endpoints of each service as this gateway sees them.
    #[serde(skip)]
    pub services: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubsetRate {
    pub route: String,
    pub subset: String,
    pub rps: f64,
}

/// A WAF rule (CRS rule id, or a lite check name) on a route, with what was done.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WafRule {
    pub rule: String,
    pub route: String,
    pub action: String,
    /// Matches since the gateway started.
    pub total: f64,
    /// Matches per second over the last scrape interval.
    pub rps: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TenantRate {
    pub tenant: String,
    pub rps: f64,
}

/// One scrape's counters, for rates.
#[derive(Clone, Default)]
struct Sample {
    at: Option<Instant>,
    requests: f64,
    errors: f64,
    buckets: Vec<(f64, f64)>,
    tenants: HashMap<(String, String), f64>,
    subsets: HashMap<(String, String), f64>,
    /// `tidegate_waf_matches_total` by (rule, route, action).
    waf: HashMap<(String, String, String), f64>,
}

/// A gateway to scrape: name, admin URL, its own token (if any).
type Member = (String, String, Option<String>);

pub struct Fleet {
    config: FleetConfig,
    token: Option<String>,
    /// The configured gateways, with their tokens resolved once.
    configured: Vec<Member>,
    nacos: Option<tidegate::nacos::client::Client>,
    http: reqwest::Client,
    views: Mutex<Vec<GatewayView>>,
    samples: Mutex<HashMap<String, Sample>>,
}

/// One Prometheus text line: name, labels, value.
pub fn parse_line(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let (name, labels) = match head.find('{') {
        None => (head, BTreeMap::new()),
        Some(i) => {
            let body = head[i + 1..].strip_suffix('}')?;
            let mut labels = BTreeMap::new();
            let mut rest = body;
            while !rest.is_empty() {
                let (k, after) = rest.split_once("=\"")?;
                let mut value = String::new();
                let mut chars = after.char_indices();
                let mut end = None;
                while let Some((j, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                value.push(if n == 'n' { '\n' } else { n });
                            }
                        }
                        '"' => {
                            end = Some(j);
                            break;
                        }
                        c => value.push(c),
                    }
                }
                let end = end?;
                labels.insert(k.trim_start_matches(',').to_string(), value);
                rest = after[end + 1..].trim_start_matches(',');
            }
            (&head[..i], labels)
        }
    };
    Some((name, labels, value))
}

fn sample(text: &str) -> (Sample, f64) {
    let mut s = Sample {
        at: Some(Instant::now()),
        ..Default::default()
    };
    let mut buckets: BTreeMap<String, f64> = BTreeMap::new();
    let mut websockets = 0.0;
    for line in text.lines() {
        let Some((name, labels, value)) = parse_line(line) else {
            continue;
        };
        match name {
            "tidegate_requests_total" => {
                s.requests += value;
                if labels.get("status_class").is_some_and(|c| c == "5xx") {
                    s.errors += value;
                }
            }
            "tidegate_request_duration_seconds_bucket" => {
                if let Some(le) = labels.get("le") {
                    *buckets.entry(le.clone()).or_default() += value;
                }
            }
            "tidegate_websocket_tunnels_open" => websockets += value,
            "tidegate_subset_requests_total" => {
                if let (Some(route), Some(subset)) = (labels.get("route"), labels.get("subset")) {
                    *s.subsets
                        .entry((route.clone(), subset.clone()))
                        .or_default() += value;
                }
            }
            "tidegate_limit_decisions_total" => {
                if let (Some(t), Some(d)) = (labels.get("tenant"), labels.get("decision")) {
                    *s.tenants.entry((t.clone(), d.clone())).or_default() += value;
                }
            }
            "tidegate_waf_matches_total" if value > 0.0 => {
                if let (Some(rule), Some(route), Some(action)) = (
                    labels.get("rule"),
                    labels.get("route"),
                    labels.get("action"),
                ) {
                    *s.waf
                        .entry((rule.clone(), route.clone(), action.clone()))
                        .or_default() += value;
                }
            }
            _ => {}
        }
    }
    s.buckets = buckets
        .into_iter()
        .map(|(le, v)| {
            (
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap_or(f64::INFINITY)
                },
                v,
            )
        })
        .collect();
    s.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (s, websockets)
}

/// p99 (ms) of the requests between two samples, interpolated inside its bucket.
fn p99(prev: &Sample, cur: &Sample) -> Option<f64> {
    let delta: Vec<(f64, f64)> = cur
        .buckets
        .iter()
        .map(|(le, v)| {
            let before = prev
                .buckets
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, p)| *p);
            (*le, (v - before).max(0.0))
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = total * 0.99;
    let mut lower = (0.0, 0.0);
    for (le, count) in delta {
        if count >= want {
            if le.is_infinite() {
                return Some(lower.0 * 1000.0);
            }
            let share = if count > lower.1 {
                (want - lower.1) / (count - lower.1)
            } else {
                1.0
            };
            return Some((lower.0 + (le - lower.0) * share) * 1000.0);
        }
        lower = (le, count);
    }
    None
}

/// The ten WAF rules with most matches since start, with their rate since `prev` (none
/// before the second scrape).
fn top_waf_rules(prev: Option<&Sample>, cur: &Sample, dt: f64) -> Vec<WafRule> {
    let mut list: Vec<WafRule> = cur
        .waf
        .iter()
        .map(|((rule, route, action), total)| {
            let before = prev.and_then(|p| {
                p.waf
                    .get(&(rule.clone(), route.clone(), action.clone()))
                    .copied()
            });
            let rps = match before {
                Some(b) if dt > 0.0 => (total - b).max(0.0) / dt,
                _ => 0.0,
            };
            WafRule {
                rule: rule.clone(),
                route: route.clone(),
                action: action.clone(),
                total: *total,
                rps,
            }
        })
        .collect();
    list.sort_by(|a, b| b.total.total_cmp(&a.total).then(a.rule.cmp(&b.rule)));
    list.truncate(10);
    list
}

fn top(prev: &Sample, cur: &Sample, dt: f64, decision: Option<&str>) -> Vec<TenantRate> {
    let mut by_tenant: HashMap<String, f64> = HashMap::new();
    for ((tenant, d), v) in &cur.tenants {
        if decision.is_some_and(|want| want != d) {
            continue;
        }
        let before = prev
            .tenants
            .get(&(tenant.clone(), d.clone()))
            .copied()
            .unwrap_or(0.0);
        *by_tenant.entry(tenant.clone()).or_default() += (v - before).max(0.0) / dt;
    }
    let mut list: Vec<TenantRate> = by_tenant
        .into_iter()
        .filter(|(_, r)| *r > 0.0)
        .map(|(tenant, rps)| TenantRate { tenant, rps })
        .collect();
    list.sort_by(|a, b| b.rps.total_cmp(&a.rps));
    list.truncate(5);
    list
}

impl Fleet {
    pub fn new(config: FleetConfig, store: &StoreConfig) -> Result<Fleet, String> {
        let token = match &config.token {
            Some(t) => Some(tidegate_plugins::consumers::secret(t)?),
            None => None,
        };
        let nacos = match (store, &config.nacos_service) {
            (StoreConfig::Nacos { nacos, .. }, Some(_)) => {
                Some(tidegate::nacos::client::Client::new(nacos)?)
            }
            _ => None,
        };
        let configured = config
            .gateways
            .iter()
            .map(|g| {
                let token = g
                    .token
                    .as_ref()
                    .and_then(|t| tidegate_plugins::consumers::secret(t).ok());
                (
                    g.name.clone(),
                    g.admin.trim_end_matches('/').to_string(),
                    token,
                )
            })
            .collect();
        Ok(Fleet {
            configured,
            http: reqwest::Client::builder()
                .timeout(Duration::from_millis(1500))
                .build()
                .map_err(|e| e.to_string())?,
            config,
            token,
            nacos,
            views: Mutex::default(),
            samples: Mutex::default(),
        })
    }

    pub fn views(&self) -> Vec<GatewayView> {
        self.views.lock().clone()
    }

    /// Configured gateways plus those registered in Nacos.
    async fn members(&self) -> Vec<Member> {
        let mut out = self.configured.clone();
        if let (Some(client), Some(service)) = (&self.nacos, &self.config.nacos_service) {
            let answer = client
                .call(
                    tidegate::nacos::client::Method::Get,
                    "/nacos/v1/ns/instance/list",
                    &[
                        ("serviceName", service),
                        ("namespaceId", &client.namespace),
                        ("healthyOnly", "false"),
                    ],
                    None,
                    &[],
                )
                .await;
            if let Ok(answer) = answer {
                let list: serde_json::Value =
                    serde_json::from_str(&answer.body).unwrap_or_default();
                for host in list["hosts"].as_array().into_iter().flatten() {
                    if let Some(admin) = host["metadata"]["admin"].as_str() {
                        let url = format!("http://{admin}");
                        if !out.iter().any(|(_, a, _)| *a == url) {
                            out.push((admin.to_string(), url, None));
                        }
                    }
                }
            }
        }
        out
    }

    async fn scrape(
        &self,
        name: String,
        admin: String,
        token: Option<String>,
        current_hash: &str,
    ) -> GatewayView {
        let token = token.or_else(|| self.token.clone());
        let get = |path: &str, auth: bool| {
            let mut req = self.http.get(format!("{admin}{path}"));
            if let (true, Some(t)) = (auth, &token) {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let mut view = GatewayView {
            name: name.clone(),
            admin: admin.clone(),
            ..Default::default()
        };
        let metrics = match get("/metrics", false).await {
            Ok(resp) => resp.text().await.unwrap_or_default(),
            Err(e) => {
                view.error = Some(e.to_string());
                return view;
            }
        };
        view.up = true;
        if let Ok(resp) = get("/readyz", false).await {
            view.ready = resp.status().is_success();
            let body: serde_json::Value = resp.json_or_null().await;
            view.registry = body["registry"]["state"].as_str().map(str::to_string);
        }
        if let Ok(resp) = get("/api/config/status", true).await {
            let ok = resp.status().is_success();
            let body: serde_json::Value = resp.json_or_null().await;
            if ok {
                view.version = body["version"].as_u64();
                view.hash = body["hash"].as_str().map(str::to_string);
                view.stale = view.hash.as_deref().is_some_and(|h| h != current_hash);
                view.translation =
                    Some(body["translation"].clone()).filter(serde_json::Value::is_object);
            } else {
                view.error = Some("the admin token was refused".into());
            }
        }
        if let Ok(resp) = get("/api/services", true).await {
            view.services = resp.json_or_null().await;
        }
        let (cur, websockets) = sample(&metrics);
        view.websockets = websockets;
        let prev = self.samples.lock().insert(admin.clone(), cur.clone());
        let dt = prev.as_ref().map_or(0.0, |p| {
            cur.at
                .zip(p.at)
                .map_or(0.0, |(c, p)| c.duration_since(p).as_secs_f64())
        });
        view.waf_rules = top_waf_rules(prev.as_ref(), &cur, dt);
        if let Some(prev) = prev {
            let dt = cur
                .at
                .zip(prev.at)
                .map_or(0.0, |(c, p)| c.duration_since(p).as_secs_f64());
            if dt > 0.0 {
                let requests = (cur.requests - prev.requests).max(0.0);
                view.rps = requests / dt;
                view.error_ratio = if requests > 0.0 {
                    (cur.errors - prev.errors).max(0.0) / requests
                } else {
                    0.0
                };
                view.p99_ms = p99(&prev, &cur);
                view.top_tenants = top(&prev, &cur, dt, None);
                view.top_rejected = top(&prev, &cur, dt, Some("rejected"));
                view.subsets = cur
                    .subsets
                    .iter()
                    .map(|((route, subset), v)| {
                        let before = prev
                            .subsets
                            .get(&(route.clone(), subset.clone()))
                            .copied()
                            .unwrap_or(0.0);
                        SubsetRate {
                            route: route.clone(),
                            subset: subset.clone(),
                            rps: (v - before).max(0.0) / dt,
                        }
                    })
                    .collect();
            }
        }
        view
    }

    /// Scrapes every gateway forever, every `scrape_interval_ms`.
    pub async fn run(self: Arc<Self>, current_hash: Arc<Mutex<String>>) {
        let every = Duration::from_millis(self.config.scrape_interval_ms.max(200));
        loop {
            let hash = current_hash.lock().clone();
            let members = self.members().await;
            let scrapes = members
                .into_iter()
                .map(|(name, admin, token)| self.scrape(name, admin, token, &hash));
            let views = futures_util::future::join_all(scrapes).await;
            *self.views.lock() = views;
            tokio::time::sleep(every).await;
        }
    }
}

trait JsonOrNull {
    async fn json_or_null(self) -> serde_json::Value;
}

impl JsonOrNull for reqwest::Response {
    async fn json_or_null(self) -> serde_json::Value {
        let text = self.text().await.unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_lines_and_computes_p99() {
        let (name, labels, value) =
            parse_line(r#"tidegate_requests_total{method="GET",route="a,b",status_class="5xx"} 7"#)
                .unwrap();
        assert_eq!(name, "tidegate_requests_total");
        assert_eq!(labels["route"], "a,b");
        assert_eq!(labels["status_class"], "5xx");
        assert_eq!(value, 7.0);
        assert!(parse_line("# HELP x y").is_none());
        let prev = sample("tidegate_request_duration_seconds_bucket{le=\"0.001\",route=\"r\"} 0\ntidegate_request_duration_seconds_bucket{le=\"0.01\",route=\"r\"} 0\ntidegate_request_duration_seconds_bucket{le=\"+Inf\",route=\"r\"} 0\n").0;
        let cur = sample("tidegate_request_duration_seconds_bucket{le=\"0.001\",route=\"r\"} 90\ntidegate_request_duration_seconds_bucket{le=\"0.01\",route=\"r\"} 100\ntidegate_request_duration_seconds_bucket{le=\"+Inf\",route=\"r\"} 100\n").0;
        let p = p99(&prev, &cur).unwrap();
        assert!((p - 9.1).abs() < 0.01, "{p}");
    }

    #[test]
    fn top_waf_rules_rank_by_matches_since_start_with_their_rate() {
        let line = |rule: &str, n: u32| {
            format!("tidegate_waf_matches_total{{action=\"block\",route=\"api\",rule=\"{rule}\"}} {n}\n")
        };
        let prev = sample(&(line("942100", 10) + &line("941100", 3))).0;
        let cur = sample(&(line("942100", 12) + &line("941100", 30) + &line("913100", 0))).0;
        let rules = top_waf_rules(Some(&prev), &cur, 2.0);
        let ids: Vec<&str> = rules.iter().map(|r| r.rule.as_str()).collect();
        assert_eq!(ids, ["941100", "942100"], "a rule at zero is not listed");
        assert_eq!(rules[0].total, 30.0);
        assert_eq!(rules[0].rps, 13.5);
        assert_eq!(rules[1].rps, 1.0);
        assert_eq!(rules[0].route, "api");
        assert_eq!(rules[0].action, "block");
        assert_eq!(top_waf_rules(None, &cur, 0.0)[0].rps, 0.0);
    }
}
