//! Prometheus metrics, all named `tidegate_*` in base units. One registry per process;
//! label sets are bounded (routes and services come from config, methods are folded to the
//! standard ones, statuses to classes).

mod route_series;

pub use route_series::RouteSeries;

use prometheus::core::{Collector, Desc};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::{Arc, OnceLock};

/// A collector registered in the registry and also kept by [`Metrics`].
struct Shared(Arc<dyn Collector>);

impl Collector for Shared {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }
    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.0.collect()
    }
}

pub struct Metrics {
    pub registry: Registry,
    /// Every family, also kept here to list the ones without a series yet.
    collectors: Vec<Arc<dyn Collector>>,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub tunnels_open: IntGaugeVec,
    pub tunnels_closed: IntCounterVec,
    pub config_version: IntGauge,
    pub config_info: IntGaugeVec,
    pub config_reloads: IntCounterVec,
    pub draining: IntGauge,
    pub handing_over: IntGauge,
    pub access_log_dropped: prometheus::IntCounter,
    pub upstream_duration: HistogramVec,
    pub connections_open: IntGauge,
    pub connections_total: prometheus::IntCounter,
    pub connections_refused: IntCounterVec,
    pub requests_refused: IntCounterVec,
    pub endpoints: IntGaugeVec,
    pub nacos_up: IntGauge,
    pub kubernetes_up: IntGauge,
    pub translation_unsupported: IntGauge,
    pub kubernetes_events: IntCounterVec,
    pub nacos_requests: IntCounterVec,
    pub nacos_stale_services: IntGauge,
    pub nacos_resync_repairs: IntCounterVec,
    pub subset_requests: IntCounterVec,
    pub tls_expiry: IntGaugeVec,
    pub tls_tickets: IntCounterVec,
    pub dns_resolutions: IntCounterVec,
    pub dns_addresses: IntGaugeVec,
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
            "1 while /readyz says 503: a graceful stop (SIGTERM) or an operator's drain",
        )
        .expect("valid metric");
        let handing_over = IntGauge::new(
            "tidegate_upgrade_handing_over",
            "1 on the old process of a binary upgrade, from the listener hand-off until it exits (the host stays ready)",
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
        let connections_refused = IntCounterVec::new(
            Opts::new(
                "tidegate_connections_refused_total",
                "Client connections closed at accept by a cap (max_connections, max_connections_per_ip)",
            ),
            &["reason"],
        )
        .expect("valid metric");
        for reason in ["max_connections", "max_connections_per_ip"] {
            connections_refused.with_label_values(&[reason]);
        }
        let requests_refused = IntCounterVec::new(
            Opts::new(
                "tidegate_requests_refused_total",
                "Requests the edge answered itself before routing (bad framing, head too large or too slow, …), by reason",
            ),
            &["reason"],
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
        let kubernetes_up = IntGauge::new(
            "tidegate_kubernetes_up",
            "1 when every watch of the Kubernetes API server is current, 0 while one is failing (or no [kubernetes])",
        )
        .expect("valid metric");
        let translation_unsupported = IntGauge::new(
            "tidegate_translation_unsupported",
            "What the Ingress controller's report beside the config lists as not translated (annotations and fields of Ingresses and Gateway API routes); 0 without a report",
        )
        .expect("valid metric");
        let kubernetes_events = IntCounterVec::new(
            Opts::new(
                "tidegate_kubernetes_watch_events_total",
                "What the Kubernetes watches received, by kind (endpointslices, pods) and event: applied, deleted, relisted (a full list: at start and after 410 Gone), error",
            ),
            &["kind", "event"],
        )
        .expect("valid metric");
        for kind in ["endpointslices", "pods"] {
            for event in ["applied", "deleted", "relisted", "error"] {
                kubernetes_events.with_label_values(&[kind, event]);
            }
        }
        let nacos_requests = IntCounterVec::new(
            Opts::new(
                "tidegate_nacos_requests_total",
                "Calls to the Nacos registry (HTTP requests; gRPC requests and connection attempts) by result: ok (answered), error (no answer after trying every server, or a gRPC call or connection that failed)",
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
        let nacos_resync_repairs = IntCounterVec::new(
            Opts::new(
                "tidegate_nacos_resync_repairs_total",
                "gRPC: changes found by the periodic resync that no push had brought (lost or late pushes), by kind (naming, config)",
            ),
            &["kind"],
        )
        .expect("valid metric");
        for kind in ["naming", "config"] {
            nacos_resync_repairs.with_label_values(&[kind]);
        }
        let subset_requests = IntCounterVec::new(
            Opts::new(
                "tidegate_subset_requests_total",
                "Requests by route and the label subset they were sent to (split, subset or tester header; `override` for ad-hoc labels)",
            ),
            &["route", "subset"],
        )
        .expect("valid metric");
        let tls_expiry = IntGaugeVec::new(
            Opts::new(
                "tidegate_tls_certificate_expiry_seconds",
                "When each served certificate expires (Unix time of its notAfter), by its first name",
            ),
            &["name"],
        )
        .expect("valid metric");
        let tls_tickets = IntCounterVec::new(
            Opts::new(
                "tidegate_tls_tickets_total",
                "Session tickets of the TLS listeners by result: issued, decrypted (current key), decrypted_old_key (a kept previous key; the client gets a new ticket), unknown_key (too old or from another process: a full handshake)",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["issued", "decrypted", "decrypted_old_key", "unknown_key"] {
            tls_tickets.with_label_values(&[result]);
        }
        let dns_resolutions = IntCounterVec::new(
            Opts::new(
                "tidegate_dns_resolutions_total",
                "Resolutions of endpoint DNS names by name and result: ok, error (timeout, refused, server failure), empty (no address or no such name); a failed one keeps the last addresses",
            ),
            &["name", "result"],
        )
        .expect("valid metric");
        let dns_addresses = IntGaugeVec::new(
            Opts::new(
                "tidegate_dns_addresses",
                "Addresses an endpoint DNS name is serving now (the last good answer)",
            ),
            &["name"],
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
        let mut collectors: Vec<Box<dyn Collector>> = vec![
            Box::new(requests.clone()),
            Box::new(request_duration.clone()),
            Box::new(tunnels_open.clone()),
            Box::new(tunnels_closed.clone()),
            Box::new(config_version.clone()),
            Box::new(config_info.clone()),
            Box::new(config_reloads.clone()),
            Box::new(draining.clone()),
            Box::new(handing_over.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(upstream_duration.clone()),
            Box::new(connections_open.clone()),
            Box::new(connections_total.clone()),
            Box::new(connections_refused.clone()),
            Box::new(requests_refused.clone()),
            Box::new(endpoints.clone()),
            Box::new(nacos_up.clone()),
            Box::new(kubernetes_up.clone()),
            Box::new(translation_unsupported.clone()),
            Box::new(kubernetes_events.clone()),
            Box::new(nacos_requests.clone()),
            Box::new(nacos_stale_services.clone()),
            Box::new(nacos_resync_repairs.clone()),
            Box::new(subset_requests.clone()),
            Box::new(tls_expiry.clone()),
            Box::new(tls_tickets.clone()),
            Box::new(dns_resolutions.clone()),
            Box::new(dns_addresses.clone()),
            Box::new(build_info),
        ];
        collectors.extend(tidegate_plugins::metrics::collectors());
        let collectors: Vec<Arc<dyn Collector>> = collectors.into_iter().map(Arc::from).collect();
        for c in &collectors {
            registry
                .register(Box::new(Shared(c.clone())))
                .expect("metric registered once");
        }
        Metrics {
            registry,
            collectors,
            requests,
            request_duration,
            tunnels_open,
            tunnels_closed,
            config_version,
            config_info,
            config_reloads,
            draining,
            handing_over,
            access_log_dropped,
            upstream_duration,
            connections_open,
            connections_total,
            connections_refused,
            requests_refused,
            endpoints,
            nacos_up,
            kubernetes_up,
            translation_unsupported,
            kubernetes_events,
            nacos_requests,
            nacos_stale_services,
            nacos_resync_repairs,
            subset_requests,
            tls_expiry,
            tls_tickets,
            dns_resolutions,
            dns_addresses,
        }
    }

    /// `tidegate_requests_total` and `tidegate_request_duration_seconds` of a route at zero
    /// (status class `2xx`, method `GET`), so its dashboards rows exist before traffic.
    pub fn declare_route(&self, route: &str, service: Option<&str>) {
        self.requests
            .with_label_values(&[route, "GET", "2xx", service.unwrap_or("")]);
        self.request_duration.with_label_values(&[route]);
        if let Some(service) = service {
            self.upstream_duration.with_label_values(&[service]);
        }
    }

    /// The text exposition. Families without a series yet (a WAF metric on a gateway whose
    /// config has no WAF) are listed by their HELP and TYPE lines, so every name the
    /// dashboards and alerts use exists on every gateway from its first scrape.
    pub fn render(&self) -> Vec<u8> {
        use std::io::Write;
        let mut out = Vec::with_capacity(16 * 1024);
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        for collector in &self.collectors {
            for family in collector.collect() {
                if family.get_metric().is_empty() {
                    let kind = format!("{:?}", family.get_field_type()).to_lowercase();
                    let help = family.help().replace('\\', "\\\\").replace('\n', "\\n");
                    let _ = writeln!(out, "# HELP {} {help}", family.name());
                    let _ = writeln!(out, "# TYPE {} {kind}", family.name());
                }
            }
        }
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

/// One request of `route` sent to the label subset `subset` (a blue/green split's live share).
pub fn count_subset(route: &str, subset: &str) {
    get()
        .subset_requests
        .with_label_values(&[route, subset])
        .inc();
}
