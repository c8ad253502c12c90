//! One route's series of the per-request metrics, resolved once. Looking a series up by its
//! label values hashes every value and takes the family's lock, on every request; a route
//! knows its name and service for life, so it keeps its series here, created on first use.

use super::{get, status_class};
use crate::config::METHODS;
use prometheus::{Histogram, IntCounter};
use std::sync::OnceLock;

/// The status classes of `status_class`, in its order.
const CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
/// The standard methods, then `OTHER`.
const METHOD_LABELS: usize = METHODS.len() + 1;

#[derive(Default)]
pub struct RouteSeries {
    requests: [[OnceLock<IntCounter>; CLASSES.len()]; METHOD_LABELS],
    duration: OnceLock<Histogram>,
}

impl std::fmt::Debug for RouteSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouteSeries")
    }
}

impl RouteSeries {
    /// The series of requests no route took (route and service labels empty).
    pub fn unrouted() -> &'static RouteSeries {
        static UNROUTED: OnceLock<RouteSeries> = OnceLock::new();
        UNROUTED.get_or_init(RouteSeries::default)
    }

    /// `tidegate_requests_total{route, method, status, service}` and the route's
    /// `tidegate_request_duration_seconds`.
    pub fn request_done(
        &self,
        route: &str,
        service: &str,
        method: &http::Method,
        status: u16,
        seconds: f64,
    ) {
        let m = method_index(method);
        let class = status_class(status);
        let c = CLASSES
            .iter()
            .position(|k| *k == class)
            .unwrap_or(CLASSES.len() - 1);
        self.requests[m][c]
            .get_or_init(|| {
                let method = METHODS.get(m).copied().unwrap_or("OTHER");
                get()
                    .requests
                    .with_label_values(&[route, method, class, service])
            })
            .inc();
        self.duration
            .get_or_init(|| get().request_duration.with_label_values(&[route]))
            .observe(seconds);
    }
}

fn method_index(method: &http::Method) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method.as_str())
        .unwrap_or(METHODS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_same_series_as_the_labels_name() {
        let series = RouteSeries::default();
        let labels = ["rs-test", "GET", "2xx", "svc"];
        let before = get().requests.with_label_values(&labels).get();
        series.request_done("rs-test", "svc", &http::Method::GET, 204, 0.001);
        series.request_done("rs-test", "svc", &http::Method::GET, 200, 0.001);
        assert_eq!(get().requests.with_label_values(&labels).get(), before + 2);
        let other = http::Method::from_bytes(b"PURGE").unwrap();
        series.request_done("rs-test", "svc", &other, 0, 0.001);
        let other_labels = ["rs-test", "OTHER", "none", "svc"];
        assert_eq!(get().requests.with_label_values(&other_labels).get(), 1);
        let h = get().request_duration.with_label_values(&["rs-test"]);
        assert_eq!(h.get_sample_count(), 3);
    }
}
