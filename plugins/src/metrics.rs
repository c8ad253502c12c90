//! Metrics of the built-in plugins; the gateway registers [`collectors`] in its registry.
//! Tenant labels are bounded: only keys named in a plugin's `overrides` appear by name, every
//! other key is counted as `other`.

use prometheus::core::Collector;
use prometheus::{IntCounterVec, IntGauge, Opts};
use std::sync::OnceLock;

pub struct PluginMetrics {
    pub limit_decisions: IntCounterVec,
    pub redis_up: IntGauge,
    pub redis_fallback: IntCounterVec,
    pub cc_bans: IntCounterVec,
    pub waf_matches: IntCounterVec,
    pub plugin_refusals: IntCounterVec,
}

static METRICS: OnceLock<PluginMetrics> = OnceLock::new();

pub fn get() -> &'static PluginMetrics {
    METRICS.get_or_init(|| PluginMetrics {
        limit_decisions: IntCounterVec::new(
            Opts::new(
                "tidegate_limit_decisions_total",
                "Limit decisions by plugin, tenant (configured tenants, else `other`) and decision",
            ),
            &["plugin", "tenant", "decision"],
        )
        .expect("valid metric"),
        redis_up: IntGauge::new(
            "tidegate_redis_up",
            "1 while Redis answers the cluster limits, 0 while they fall back to local limits",
        )
        .expect("valid metric"),
        redis_fallback: IntCounterVec::new(
            Opts::new(
                "tidegate_limit_redis_fallback_total",
                "Cluster limit checks decided locally because Redis failed or was slow",
            ),
            &["plugin"],
        )
        .expect("valid metric"),
        waf_matches: IntCounterVec::new(
            Opts::new(
                "tidegate_waf_matches_total",
                "Requests the WAF matched, by plugin, check (sqli, xss, traversal, cmdi, scanner, protocol) and action (blocked, detected)",
            ),
            &["plugin", "check", "action"],
        )
        .expect("valid metric"),
        plugin_refusals: IntCounterVec::new(
            Opts::new(
                "tidegate_plugin_refusals_total",
                "Requests a plugin answered itself instead of proxying (401, 403, 429, …), by plugin and status",
            ),
            &["plugin", "status"],
        )
        .expect("valid metric"),
        cc_bans: IntCounterVec::new(
            Opts::new(
                "tidegate_cc_bans_total",
                "Clients banned by flood protection",
            ),
            &["plugin"],
        )
        .expect("valid metric"),
    })
}

pub fn collectors() -> Vec<Box<dyn Collector>> {
    let m = get();
    vec![
        Box::new(m.limit_decisions.clone()),
        Box::new(m.redis_up.clone()),
        Box::new(m.redis_fallback.clone()),
        Box::new(m.cc_bans.clone()),
        Box::new(m.waf_matches.clone()),
        Box::new(m.plugin_refusals.clone()),
    ]
}
