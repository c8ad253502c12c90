//! Prometheus metrics, all named `tidegate_*` in base units. One registry per process;
//! label sets are bounded (routes and services come from config, methods are folded to the
//! standard ones, statuses to classes).

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::OnceLock;

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub tunnels_open: IntGaugeVec,
    pub tunnels_closed: IntCounterVec,
    pub config_version: IntGauge,
    pub config_info: IntGaugeVec,
    pub config_reloads: IntCounterVec,
    pub draining: IntGauge,
    pub access_log_dropped: prometheus::IntCounter,
    pub upstream_duration: HistogramVec,
    pub connections_open: IntGauge,
    pub connections_total: prometheus::IntCounter,
    pub endpoints: IntGaugeVec,
    pub nacos_up: IntGauge,
    pub nacos_requests: IntCounterVec,
    pub nacos_stale_services: IntGauge,
    pub subset_requests: IntCounterVec,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "tidegate_requests_total",
                "Requests by route, method, status class and upstream service",
            ),
            &["route", "method", "status_class", "service"],
        )
        .expect("valid metric");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "tidegate_request_duration_seconds",
                "Time from request to logged response, by route",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let tunnels_open = IntGaugeVec::new(
            Opts::new(
                "tidegate_websocket_tunnels_open",
                "Open WebSocket tunnels by route",
            ),
            &["route"],
        )
        .expect("valid metric");
        let tunnels_closed = IntCounterVec::new(
            Opts::new(
                "tidegate_websocket_tunnels_closed_total",
                "Closed WebSocket tunnels by route and reason",
            ),
            &["route", "reason"],
        )
        .expect("valid metric");
        let config_version = IntGauge::new(
            "tidegate_config_version",
            "Version of the applied config snapshot",
        )
        .expect("valid metric");
        let config_info = IntGaugeVec::new(
            Opts::new("tidegate_config_info", "1 for the content hash of the applied config (equal on every gateway serving the same text)"),
            &["hash"],
        )
        .expect("valid metric");
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "tidegate_config_reloads_total",
                "Config apply attempts by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let draining = IntGauge::new(
            "tidegate_draining",
            "1 while the process drains for an upgrade or stop",
        )
        .expect("valid metric");
        let access_log_dropped = prometheus::IntCounter::new(
            "tidegate_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind",
        )
        .expect("valid metric");
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "tidegate_upstream_response_duration_seconds",
                "Time from sending the request upstream to its response header, by service",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service"],
        )
        .expect("valid metric");
        let connections_open = IntGauge::new(
            "tidegate_downstream_connections_open",
            "Open client connections on the proxy listeners (WebSocket tunnels count until their upgrade)",
        )
        .expect("valid metric");
        let connections_total = prometheus::IntCounter::new(
            "tidegate_downstream_connections_total",
            "Client connections accepted on the proxy listeners",
        )
        .expect("valid metric");
        let endpoints = IntGaugeVec::new(
            Opts::new(
                "tidegate_service_endpoints",
                "Endpoints per service by state: usable, unhealthy (active checks), ejected (passive checks), weight_zero",
            ),
            &["service", "state"],
        )
        .expect("valid metric");
        let nacos_up = IntGauge::new(
            "tidegate_nacos_up",
            "1 when the last call to the Nacos registry was answered, 0 when it failed (or no [nacos])",
        )
        .expect("valid metric");
        let nacos_requests = IntCounterVec::new(
            Opts::new(
                "tidegate_nacos_requests_total",
                "Calls to the Nacos Open API by result (ok, error after trying every server)",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["ok", "error"] {
            nacos_requests.with_label_values(&[result]);
        }
        let nacos_stale_services = IntGauge::new(
            "tidegate_nacos_stale_services",
            "Registry-bound services routing on last known instances (registry down, or an empty or garbled answer refused)",
        )
        .expect("valid metric");
        let subset_requests = IntCounterVec::new(
            Opts::new(
                "tidegate_subset_requests_total",
                "Requests by route and the label subset they were sent to (split, subset or tester header; `override` for ad-hoc labels)",
            ),
            &["route", "subset"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("tidegate_build_info", "Build information"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_duration.clone()),
            Box::new(tunnels_open.clone()),
            Box::new(tunnels_closed.clone()),
            Box::new(config_version.clone()),
            Box::new(config_info.clone()),
            Box::new(config_reloads.clone()),
            Box::new(draining.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_total.clone()),
            Box::new(endpoints.clone()),
            Box::new(nacos_up.clone()),
            Box::new(nacos_requests.clone()),
            Box::new(nacos_stale_services.clone()),
            Box::new(subset_requests.clone()),
            Box::new(build_info),
        ] {
            registry.register(c).expect("metric registered once");
        }
        for c in tidegate_plugins::metrics::collectors() {
            registry.register(c).expect("plugin metric registered once");
        }
        Metrics {
            registry,
            requests,
            request_duration,
            tunnels_open,
            tunnels_closed,
            config_version,
            config_info,
            config_reloads,
            draining,
            access_log_dropped,
            upstream_duration,
            connections_open,
            connections_total,
            endpoints,
            nacos_up,
            nacos_requests,
            nacos_stale_services,
            subset_requests,
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

pub fn method_label(method: &http::Method) -> &'static str {
    crate::router::METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("OTHER")
}

/// One request of `route` sent to the label subset `subset` (a blue/green split's live share).
pub fn count_subset(route: &str, subset: &str) {
    get()
        .subset_requests
        .with_label_values(&[route, subset])
        .inc();
}

/// Publishes a newly applied snapshot: its version and hash, and its endpoint counts
/// (services that left are reset).
pub fn publish_snapshot(snapshot: &crate::snapshot::Snapshot) {
    let m = get();
    m.config_version.set(snapshot.version as i64);
    m.config_info.reset();
    m.config_info.with_label_values(&[&snapshot.hash]).set(1);
    publish_endpoint_states(snapshot);
}

/// Endpoints per service by state: `usable` (may take traffic), `unhealthy` (active
/// checks), `ejected` (passive checks), `weight_zero` (configured to take none).
pub fn publish_endpoint_states(snapshot: &crate::snapshot::Snapshot) {
    let m = get();
    m.endpoints.reset();
    for (name, service) in &snapshot.services {
        let mut counts = [0i64; 4];
        for e in &service.members().endpoints {
            let i = if e.weight == 0 {
                3
            } else if !e.state.is_healthy() {
                1
            } else if e.state.is_ejected() {
                2
            } else {
                0
            };
            counts[i] += 1;
        }
        for (state, n) in ["usable", "unhealthy", "ejected", "weight_zero"]
            .iter()
            .zip(counts)
        {
            m.endpoints
                .with_label_values(&[name.as_str(), state])
                .set(n);
        }
    }
}
