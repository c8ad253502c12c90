//! `type = "key-rate-limit"`: per-key (tenant) request rates over several windows and
//! in-flight concurrency, locally (pingora-limits) or across the fleet (Redis), with
//! per-key overrides. Limited requests get 429 with `Retry-After` and `RateLimit-*`
//! headers; allowed ones carry the `RateLimit-*` headers too.

mod local;
mod window;

pub use local::LimitStore;
pub use window::{Per, Window};

use crate::key::KeySource;
use crate::{metrics, order, parse_config, Ctx, Plugin, Reply, Stores};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_limits::inflight::{Guard, Inflight};
use pingora_limits::rate::Rate;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    key: String,
    #[serde(default)]
    limits: Vec<Window>,
    concurrency: Option<u32>,
    #[serde(default)]
    overrides: BTreeMap<String, OverrideConfig>,
    #[serde(default)]
    scope: Scope,
    #[serde(default = "default_missing")]
    missing_key: String,
}

/// A tenant's own limits; what it leaves out comes from the plugin's defaults.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    pub limits: Option<Vec<Window>>,
    pub concurrency: Option<u32>,
}

fn default_missing() -> String {
    "reject".into()
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    Local,
    Cluster,
}

enum Missing {
    Reject,
    Allow,
    LimitAs(String),
}

/// An admitted request's tightest window: (limit, remaining, time to reset).
type Headroom = Option<(u64, u64, Duration)>;
/// A refused request: the window that refused, and when it resets.
type Refusal = (Window, Duration);

struct Limits {
    windows: Vec<(Window, Arc<Rate>)>,
    concurrency: Option<u32>,
}

pub struct KeyRateLimit {
    name: String,
    key: KeySource,
    defaults: Limits,
    overrides: HashMap<String, Limits>,
    scope: Scope,
    missing: Missing,
    inflight: Arc<Inflight>,
    stores: Arc<Stores>,
    /// Decision counters per tenant label, resolved once here rather than per request:
    /// (allowed, rejected).
    decisions: HashMap<String, (prometheus::IntCounter, prometheus::IntCounter)>,
}

/// What an allowed request remembers until its response and its end.
struct Admitted {
    headers: Option<[(HeaderName, HeaderValue); 3]>,
    _concurrency: Option<Guard>,
}

/// The usage of one key, for the quota API.
#[derive(Debug, serde::Serialize)]
pub struct Usage {
    pub key: String,
    pub overridden: bool,
    pub windows: Vec<WindowUsage>,
    pub concurrency: Option<u32>,
    pub in_flight: i64,
}

#[derive(Debug, serde::Serialize)]
pub struct WindowUsage {
    pub per: Per,
    pub count: u64,
    pub used: u64,
    pub reset_seconds: u64,
}

impl KeyRateLimit {
    pub fn build(
        name: &str,
        table: toml::Table,
        stores: &Arc<Stores>,
    ) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let key = KeySource::parse(&config.key).map_err(|e| format!("plugin {name:?}: {e}"))?;
        if config.limits.is_empty() && config.concurrency.is_none() {
            return Err(format!(
                "plugin {name:?} sets neither `limits` nor `concurrency`"
            ));
        }
        let limits = |windows: &[Window], concurrency: Option<u32>| -> Result<Limits, String> {
            let mut seen = Vec::new();
            let mut out = Vec::new();
            for w in windows {
                if seen.contains(&w.per) {
                    return Err(format!(
                        "plugin {name:?} has two limits per {}",
                        w.per.as_str()
                    ));
                }
                seen.push(w.per);
                out.push((*w, stores.limits.rate(name, w.per.duration())));
            }
            Ok(Limits {
                windows: out,
                concurrency,
            })
        };
        let defaults = limits(&config.limits, config.concurrency)?;
        let mut overrides = HashMap::new();
        for (tenant, o) in &config.overrides {
            let windows = o.limits.as_deref().unwrap_or(&config.limits);
            overrides.insert(
                tenant.clone(),
                limits(windows, o.concurrency.or(config.concurrency))?,
            );
        }
        let missing = match config.missing_key.as_str() {
            "reject" => Missing::Reject,
            "allow" => Missing::Allow,
            other => match other.strip_prefix("limit-as:") {
                Some(k) if !k.is_empty() => Missing::LimitAs(k.to_string()),
                _ => {
                    return Err(format!(
                        "plugin {name:?}: missing_key must be reject, allow or limit-as:KEY"
                    ))
                }
            },
        };
        let decisions = overrides
            .keys()
            .map(String::as_str)
            .chain(["other", "missing"])
            .map(|tenant| {
                let vec = &metrics::get().limit_decisions;
                let pair = (
                    vec.with_label_values(&[name, tenant, "allowed"]),
                    vec.with_label_values(&[name, tenant, "rejected"]),
                );
                (tenant.to_string(), pair)
            })
            .collect();
        Ok(Arc::new(KeyRateLimit {
            decisions,
            name: name.to_string(),
            key,
            defaults,
            overrides,
            scope: config.scope,
            missing,
            inflight: stores.limits.inflight(name),
            stores: stores.clone(),
        }))
    }

    fn limits_for(&self, key: &str) -> &Limits {
        self.overrides.get(key).unwrap_or(&self.defaults)
    }

    fn count(&self, tenant_label: &str, allowed: bool) {
        if let Some((yes, no)) = self.decisions.get(tenant_label) {
            if allowed {
                yes.inc();
            } else {
                no.inc();
            }
        }
    }

    fn tenant_label<'a>(&self, key: &'a str) -> &'a str {
        if self.overrides.contains_key(key) {
            key
        } else {
            "other"
        }
    }

    /// Counts this request against every window, if all have room. Returns the binding
    /// window's (limit, remaining, reset) or the window that refused.
    async fn admit(&self, key: &str, limits: &Limits) -> Result<Headroom, Refusal> {
        if limits.windows.is_empty() {
            return Ok(None);
        }
        if self.scope == Scope::Cluster {
            if let Some(redis) = self.stores.redis.get() {
                if let Some(answer) = self.admit_cluster(&redis, key, limits).await {
                    return answer;
                }
                metrics::get()
                    .redis_fallback
                    .with_label_values(&[&self.name])
                    .inc();
                return self.admit_local(key, limits, redis.fleet_size() as u64);
            }
        }
        self.admit_local(key, limits, 1)
    }

    /// Counts first, then checks, and takes the count back when refused: concurrent
    /// requests can never push a window past its limit, and refused requests count nowhere.
    fn admit_local(&self, key: &str, limits: &Limits, divide: u64) -> Result<Headroom, Refusal> {
        // (limit, remaining, window index) of the window with the least room left.
        let mut tightest: Option<(u64, u64, usize)> = None;
        for (i, (w, rate)) in limits.windows.iter().enumerate() {
            let limit = w.count.div_ceil(divide);
            let now = rate.observe(&key, 1).max(0) as u64;
            if now > limit {
                for (_, counted) in &limits.windows[..=i] {
                    counted.observe(&key, -1);
                }
                return Err((*w, local::peek(rate, key).1));
            }
            let remaining = limit - now;
            if tightest.is_none_or(|(_, r, _)| remaining < r) {
                tightest = Some((limit, remaining, i));
            }
        }
        // The reset time only of the window whose headers are sent.
        Ok(tightest.map(|(limit, remaining, i)| {
            (limit, remaining, local::peek(&limits.windows[i].1, key).1)
        }))
    }

    /// `None` when Redis cannot answer in time.
    async fn admit_cluster(
        &self,
        redis: &crate::redis_client::RedisClient,
        key: &str,
        limits: &Limits,
    ) -> Option<Result<Headroom, Refusal>> {
        static SCRIPT: OnceLock<redis::Script> = OnceLock::new();
        // All windows or none: a request refused by one window is counted by no window.
        let script = SCRIPT.get_or_init(|| {
            redis::Script::new(
                r"for i, key in ipairs(KEYS) do
                    local c = tonumber(redis.call('GET', key) or '0')
                    if c >= tonumber(ARGV[i * 2 - 1]) then return {0, i} end
                  end
                  local out = {1}
                  for i, key in ipairs(KEYS) do
                    local c = redis.call('INCR', key)
                    if c == 1 then redis.call('PEXPIRE', key, ARGV[i * 2]) end
                    out[#out + 1] = c
                  end
                  return out",
            )
        });
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis() as u64;
        let mut keys = Vec::with_capacity(limits.windows.len());
        let mut args = Vec::with_capacity(limits.windows.len() * 2);
        let mut resets = Vec::with_capacity(limits.windows.len());
        for (w, _) in &limits.windows {
            let len = w.per.duration().as_millis() as u64;
            // Windows aligned to the clock, so every gateway counts into the same key.
            keys.push(format!(
                "tidegate:limit:{}:{}:{}:{}",
                self.name,
                w.per.as_str(),
                now_ms / len,
                key
            ));
            args.push(w.count);
            args.push(len + 1000);
            resets.push(Duration::from_millis(len - now_ms % len));
        }
        let answer = redis.eval(script, &keys, &args).await?;
        if answer.first() == Some(&0) {
            let i = (*answer.get(1)? as usize).checked_sub(1)?;
            return Some(Err((limits.windows.get(i)?.0, resets[i])));
        }
        let mut tightest: Headroom = None;
        for (i, (w, _)) in limits.windows.iter().enumerate() {
            let used = *answer.get(i + 1)? as u64;
            let remaining = w.count.saturating_sub(used);
            if tightest.is_none_or(|(_, r, _)| remaining < r) {
                tightest = Some((w.count, remaining, resets[i]));
            }
        }
        Some(Ok(tightest))
    }

    /// The usage of one key (the quota API).
    pub fn usage(&self, key: &str) -> Usage {
        let limits = self.limits_for(key);
        Usage {
            key: key.to_string(),
            overridden: self.overrides.contains_key(key),
            windows: limits
                .windows
                .iter()
                .map(|(w, rate)| {
                    let (used, reset) = local::peek(rate, key);
                    WindowUsage {
                        per: w.per,
                        count: w.count,
                        used,
                        reset_seconds: reset.as_secs(),
                    }
                })
                .collect(),
            concurrency: limits.concurrency,
            in_flight: self.inflight.incr(key, 0).1 as i64,
        }
    }
}

fn header_triplet(limit: u64, remaining: u64, reset: Duration) -> [(HeaderName, HeaderValue); 3] {
    let secs = reset.as_secs_f64().ceil().max(1.0) as u64;
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(limit),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(remaining),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(secs),
        ),
    ]
}

#[async_trait]
impl Plugin for KeyRateLimit {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::LIMITS
    }

    fn declare_metrics(&self) {
        // Decision counters are resolved (so declared) when the plugin is built.
        crate::metrics::declare_refusals(&self.name, &[400, 401, 429]);
        if self.scope == Scope::Cluster {
            crate::metrics::get()
                .redis_fallback
                .with_label_values(&[&self.name]);
        }
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let key: String = match (self.key.extract(req, cx), &self.missing) {
            (Some(k), _) => k.into_owned(),
            (None, Missing::Allow) => return Ok(()),
            (None, Missing::LimitAs(k)) => k.clone(),
            (None, Missing::Reject) => {
                self.count("missing", false);
                // No identity from authentication is a 401; a missing header, query or
                // cookie the client should have sent is a bad request.
                let (status, error) = match self.key {
                    KeySource::Consumer | KeySource::Tenant | KeySource::JwtClaim(_) => {
                        (401, "Unauthorized")
                    }
                    _ => (400, "Bad Request"),
                };
                return Err(Reply::json(
                    status,
                    error,
                    &format!(
                        "this route is limited per key and the request carries none ({})",
                        self.name
                    ),
                ));
            }
        };
        let limits = self.limits_for(&key);
        let tenant = self.tenant_label(&key);
        let guard = match limits.concurrency {
            Some(max) => {
                let (guard, now) = self.inflight.incr(key.as_str(), 1);
                if now > max as isize {
                    drop(guard);
                    self.count(tenant, false);
                    let mut reply = Reply::json(
                        429,
                        "Too Many Requests",
                        &format!(
                            "more than {max} concurrent requests for key {key:?} ({})",
                            self.name
                        ),
                    );
                    reply
                        .headers
                        .push((http::header::RETRY_AFTER, HeaderValue::from_static("1")));
                    return Err(reply);
                }
                Some(guard)
            }
            None => None,
        };
        match self.admit(&key, limits).await {
            Ok(tightest) => {
                self.count(tenant, true);
                cx.keep(Admitted {
                    headers: tightest.map(|(l, r, reset)| header_triplet(l, r, reset)),
                    _concurrency: guard,
                });
                Ok(())
            }
            Err((window, reset)) => {
                self.count(tenant, false);
                let body = serde_json::json!({
                    "error": "Too Many Requests",
                    "message": format!("rate limit of {} per {} exceeded for key {key:?}", window.count, window.per.as_str()),
                    "limit": { "plugin": self.name, "per": window.per.as_str(), "count": window.count },
                });
                let mut headers = vec![(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )];
                let [limit, _, reset_h] = header_triplet(window.count, 0, reset);
                headers.push((http::header::RETRY_AFTER, reset_h.1.clone()));
                headers.push(limit);
                headers.push((
                    HeaderName::from_static("ratelimit-remaining"),
                    HeaderValue::from(0u64),
                ));
                headers.push(reset_h);
                Err(Reply {
                    status: 429,
                    headers,
                    body: body.to_string().into(),
                })
            }
        }
    }

    fn on_response(&self, resp: &mut ResponseHeader, cx: &mut Ctx<'_>) {
        let Some(admitted) = cx.kept::<Admitted>() else {
            return;
        };
        if let Some(headers) = &admitted.headers {
            for (name, value) in headers {
                let _ = resp.insert_header(name.clone(), value.clone());
            }
        }
    }
}

/// The quota API's view of a plugin, if it is a key-rate-limit.
pub fn as_rate_limit(plugin: &dyn Plugin) -> Option<&KeyRateLimit> {
    (plugin as &dyn std::any::Any).downcast_ref::<KeyRateLimit>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{testing, Chain};

    const TWO_A_MINUTE: &str = "type = \"key-rate-limit\"\nkey = \"header:x-tenant\"\nlimits = [{ per = \"minute\", count = 2 }]";

    fn tenant(t: &str) -> RequestHeader {
        testing::request("GET", "/", &[("x-tenant", t)])
    }

    async fn status(p: &Arc<dyn Plugin>, req: &RequestHeader) -> Option<u16> {
        testing::run(p, req, "192.0.2.1")
            .await
            .0
            .err()
            .map(|reply| reply.status)
    }

    /// The response headers of `req` if the plugin admits it.
    async fn admitted(p: &Arc<dyn Plugin>, req: &RequestHeader) -> ResponseHeader {
        let chain = Chain::new(vec![p.clone()]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(req, &mut state).await.unwrap();
        let mut resp = ResponseHeader::build(200u16, None).unwrap();
        chain.response(&mut resp, &mut state);
        resp
    }

    fn get<'a>(resp: &'a ResponseHeader, name: &str) -> Option<&'a str> {
        resp.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn a_key_gets_its_limit_then_429_with_retry_after_and_ratelimit_headers() {
        let p = testing::plugin(TWO_A_MINUTE);
        let first = admitted(&p, &tenant("a")).await;
        assert_eq!(get(&first, "ratelimit-limit"), Some("2"));
        assert_eq!(get(&first, "ratelimit-remaining"), Some("1"));
        let reset: u64 = get(&first, "ratelimit-reset").unwrap().parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
        let second = admitted(&p, &tenant("a")).await;
        assert_eq!(get(&second, "ratelimit-remaining"), Some("0"));

        let reply = testing::run(&p, &tenant("a"), "192.0.2.1")
            .await
            .0
            .unwrap_err();
        assert_eq!(reply.status, 429);
        let retry: u64 = testing::header(&reply, "retry-after")
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(testing::header(&reply, "ratelimit-limit"), Some("2"));
        assert_eq!(testing::header(&reply, "ratelimit-remaining"), Some("0"));
        assert!(testing::header(&reply, "ratelimit-reset").is_some());
        assert_eq!(
            testing::header(&reply, "content-type"),
            Some("application/json")
        );
        let body = testing::body(&reply);
        assert_eq!(body["error"], "Too Many Requests");
        assert_eq!(body["limit"]["per"], "minute");
        assert_eq!(body["limit"]["count"], 2);
        assert_eq!(body["limit"]["plugin"], "p");
    }

    #[tokio::test]
    async fn another_key_is_not_affected() {
        let p = testing::plugin(TWO_A_MINUTE);
        for _ in 0..2 {
            assert_eq!(status(&p, &tenant("a")).await, None);
        }
        assert_eq!(status(&p, &tenant("a")).await, Some(429));
        assert_eq!(status(&p, &tenant("b")).await, None);
        assert_eq!(status(&p, &tenant("b")).await, None);
        assert_eq!(status(&p, &tenant("b")).await, Some(429));
    }

    #[tokio::test]
    async fn refused_requests_are_not_counted() {
        let p = testing::plugin(TWO_A_MINUTE);
        for _ in 0..5 {
            let _ = status(&p, &tenant("a")).await;
        }
        let usage = as_rate_limit(p.as_ref()).unwrap().usage("a");
        assert_eq!(usage.windows.len(), 1);
        assert_eq!(usage.windows[0].used, 2);
        assert_eq!(usage.windows[0].count, 2);
        assert!(!usage.overridden);
    }

    #[tokio::test]
    async fn every_window_must_have_room() {
        let p = testing::plugin(
            "type = \"key-rate-limit\"\nkey = \"header:x-tenant\"\nlimits = [{ per = \"minute\", count = 3 }, { per = \"hour\", count = 1 }]",
        );
        let resp = admitted(&p, &tenant("a")).await;
        // The tightest window's headers are sent.
        assert_eq!(get(&resp, "ratelimit-limit"), Some("1"));
        assert_eq!(get(&resp, "ratelimit-remaining"), Some("0"));
        let reply = testing::run(&p, &tenant("a"), "192.0.2.1")
            .await
            .0
            .unwrap_err();
        assert_eq!(testing::body(&reply)["limit"]["per"], "hour");
        // The minute window took its count back.
        let usage = as_rate_limit(p.as_ref()).unwrap().usage("a");
        assert_eq!(usage.windows[0].used, 1);
    }

    #[tokio::test]
    async fn a_request_without_the_key_is_400_by_default() {
        let p = testing::plugin(TWO_A_MINUTE);
        let req = testing::request("GET", "/", &[]);
        let reply = testing::run(&p, &req, "192.0.2.1").await.0.unwrap_err();
        assert_eq!(reply.status, 400);
        assert_eq!(testing::body(&reply)["error"], "Bad Request");
    }

    #[tokio::test]
    async fn a_missing_identity_key_is_401() {
        let p = testing::plugin(
            "type = \"key-rate-limit\"\nkey = \"consumer\"\nlimits = [{ per = \"minute\", count = 2 }]",
        );
        let req = testing::request("GET", "/", &[]);
        assert_eq!(status(&p, &req).await, Some(401));
    }

    #[tokio::test]
    async fn missing_keys_may_be_allowed_or_limited_as_one_key() {
        let allow = testing::plugin(&format!("{TWO_A_MINUTE}\nmissing_key = \"allow\""));
        let none = testing::request("GET", "/", &[]);
        for _ in 0..4 {
            assert_eq!(status(&allow, &none).await, None);
        }
        let shared = testing::plugin(&format!(
            "{TWO_A_MINUTE}\nmissing_key = \"limit-as:anonymous\""
        ));
        assert_eq!(status(&shared, &none).await, None);
        assert_eq!(status(&shared, &tenant("anonymous")).await, None);
        assert_eq!(status(&shared, &none).await, Some(429));
    }

    #[tokio::test]
    async fn an_override_gives_a_key_its_own_limits() {
        let p = testing::plugin(&format!(
            "{TWO_A_MINUTE}\noverrides = {{ vip = {{ limits = [{{ per = \"minute\", count = 3 }}] }} }}"
        ));
        for _ in 0..3 {
            assert_eq!(status(&p, &tenant("vip")).await, None);
        }
        assert_eq!(status(&p, &tenant("vip")).await, Some(429));
        let usage = as_rate_limit(p.as_ref()).unwrap().usage("vip");
        assert!(usage.overridden);
        assert_eq!(usage.windows[0].count, 3);
    }

    #[tokio::test]
    async fn concurrency_is_released_when_the_request_state_is_dropped() {
        let p = testing::plugin(
            "type = \"key-rate-limit\"\nkey = \"header:x-tenant\"\nconcurrency = 1",
        );
        let (first, in_flight) = testing::run(&p, &tenant("a"), "192.0.2.1").await;
        first.unwrap();
        assert_eq!(as_rate_limit(p.as_ref()).unwrap().usage("a").in_flight, 1);
        let reply = testing::run(&p, &tenant("a"), "192.0.2.1")
            .await
            .0
            .unwrap_err();
        assert_eq!(reply.status, 429);
        assert_eq!(testing::header(&reply, "retry-after"), Some("1"));
        assert_eq!(status(&p, &tenant("b")).await, None);
        drop(in_flight);
        assert_eq!(as_rate_limit(p.as_ref()).unwrap().usage("a").in_flight, 0);
        assert_eq!(status(&p, &tenant("a")).await, None);
    }

    #[tokio::test]
    async fn a_concurrency_only_limit_sends_no_ratelimit_headers() {
        let p = testing::plugin(
            "type = \"key-rate-limit\"\nkey = \"header:x-tenant\"\nconcurrency = 5",
        );
        let resp = admitted(&p, &tenant("a")).await;
        assert_eq!(get(&resp, "ratelimit-limit"), None);
    }

    #[test]
    fn bad_settings_are_refused_naming_the_plugin() {
        for (table, says) in [
            ("key = \"header:x-tenant\"", "neither"),
            (
                "key = \"header:x-tenant\"\nlimits = [{ per = \"minute\", count = 1 }, { per = \"minute\", count = 2 }]",
                "two limits per minute",
            ),
            ("key = \"body:x\"\nconcurrency = 1", "bad key"),
            ("key = \"client_ip\"\nconcurrency = 1\nmissing_key = \"limit-as:\"", "missing_key"),
            ("key = \"client_ip\"\nconcurrency = 1\nscope = \"global\"", ""),
        ] {
            let error = testing::refusal(&format!("type = \"key-rate-limit\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
            assert!(error.contains(says), "{table}: {error}");
        }
    }

    #[test]
    fn the_header_triplet_rounds_the_reset_up_to_a_second() {
        let [limit, remaining, reset] = header_triplet(10, 4, Duration::from_millis(1500));
        assert_eq!(
            (limit.0.as_str(), limit.1.to_str().unwrap()),
            ("ratelimit-limit", "10")
        );
        assert_eq!(remaining.1.to_str().unwrap(), "4");
        assert_eq!(reset.1.to_str().unwrap(), "2");
        let [_, _, reset] = header_triplet(10, 4, Duration::ZERO);
        assert_eq!(reset.1.to_str().unwrap(), "1");
    }
}
