//! Metrics of the built-in plugins; the gateway registers [`collectors`] in its registry.
//! Tenant labels are bounded: only keys named in a plugin's `overrides` appear by name, every
//! other key is counted as `other`.

use prometheus::core::Collector;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use std::sync::OnceLock;

pub struct PluginMetrics {
    pub limit_decisions: IntCounterVec,
    pub redis_up: IntGauge,
    pub redis_fallback: IntCounterVec,
    pub cc_bans: IntCounterVec,
    pub waf_matches: IntCounterVec,
    pub waf_overload: IntCounter,
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
        // Bounded: routes come from the config, rules from the loaded rule set (CRS rule
        // ids, `unknown` for a match whose id could not be attributed) or the lite engine's
        // check names.
        waf_matches: IntCounterVec::new(
            Opts::new(
                "tidegate_waf_matches_total",
                "WAF rule matches, by route, rule (CRS rule id; for engine = \"lite\" the check: sqli, xss, traversal, cmdi, scanner, protocol) and action (block: the request was refused; pass: matched below the anomaly threshold; detect: detect mode)",
            ),
            &["route", "rule", "action"],
        )
        .expect("valid metric"),
        waf_overload: IntCounter::new(
            "tidegate_waf_overload_total",
            "Requests the CRS WAF answered 503 because too many were already waiting for an inspection slot",
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
        Box::new(m.waf_overload.clone()),
        Box::new(m.plugin_refusals.clone()),
    ]
}

/// One request a plugin answered itself.
pub fn count_refusal(plugin: &str, status: u16) {
    get()
        .plugin_refusals
        .with_label_values(&[plugin, &status.to_string()])
        .inc();
}

/// Declares `tidegate_plugin_refusals_total` at zero for the statuses `plugin` may answer.
pub fn declare_refusals(plugin: &str, statuses: &[u16]) {
    for status in statuses {
        get()
            .plugin_refusals
            .with_label_values(&[plugin, &status.to_string()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Encoder, Registry, TextEncoder};

    /// The text exposition of every plugin metric, as a registry of the gateway renders it.
    fn exposition() -> String {
        let registry = Registry::new();
        for collector in collectors() {
            registry.register(collector).unwrap();
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn declared_refusals_appear_at_zero() {
        declare_refusals("metrics-test-declared", &[401, 403]);
        let text = exposition();
        for status in ["401", "403"] {
            let series = format!(
                "tidegate_plugin_refusals_total{{plugin=\"metrics-test-declared\",status=\"{status}\"}} 0"
            );
            assert!(text.contains(&series), "{series} missing from:\n{text}");
        }
        assert!(!text.contains("plugin=\"metrics-test-declared\",status=\"429\""));
    }

    #[test]
    fn a_counted_refusal_increments_its_series() {
        let series = || {
            get()
                .plugin_refusals
                .with_label_values(&["metrics-test-counted", "429"])
                .get()
        };
        assert_eq!(series(), 0);
        count_refusal("metrics-test-counted", 429);
        count_refusal("metrics-test-counted", 429);
        assert_eq!(series(), 2);
        assert!(exposition().contains(
            "tidegate_plugin_refusals_total{plugin=\"metrics-test-counted\",status=\"429\"} 2"
        ));
    }

    #[test]
    fn the_collectors_are_the_metrics_of_the_one_instance() {
        assert!(std::ptr::eq(get(), get()));
        let collectors = collectors();
        let names: Vec<&str> = collectors
            .iter()
            .flat_map(|c| c.desc())
            .map(|d| d.fq_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "tidegate_limit_decisions_total",
                "tidegate_redis_up",
                "tidegate_limit_redis_fallback_total",
                "tidegate_cc_bans_total",
                "tidegate_waf_matches_total",
                "tidegate_waf_overload_total",
                "tidegate_plugin_refusals_total",
            ]
        );
        // The gauge and the overload counter have no labels, so they are always exposed.
        let text = exposition();
        assert!(text.contains("# TYPE tidegate_redis_up gauge"));
        assert!(text.contains("# TYPE tidegate_waf_overload_total counter"));
    }
}
