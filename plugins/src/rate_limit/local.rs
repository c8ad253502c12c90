//! Local counters on pingora-limits, kept per plugin name and window length outside any
//! snapshot: a reload that changes a count keeps what was counted.

use parking_lot::Mutex;
use pingora_limits::inflight::Inflight;
use pingora_limits::rate::Rate;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
pub struct LimitStore {
    rates: Mutex<HashMap<(String, Duration), Arc<Rate>>>,
    inflight: Mutex<HashMap<String, Arc<Inflight>>>,
}

impl LimitStore {
    pub fn rate(&self, plugin: &str, window: Duration) -> Arc<Rate> {
        self.rates
            .lock()
            .entry((plugin.to_string(), window))
            .or_insert_with(|| Arc::new(Rate::new(window)))
            .clone()
    }

    pub fn inflight(&self, plugin: &str) -> Arc<Inflight> {
        self.inflight
            .lock()
            .entry(plugin.to_string())
            .or_insert_with(|| Arc::new(Inflight::new()))
            .clone()
    }
}

/// Events counted so far in the current window, and the time until it ends.
pub fn peek(rate: &Rate, key: &str) -> (u64, Duration) {
    rate.rate_with(&key, |c| {
        let left = c
            .interval
            .mul_f64((1.0 - c.current_interval_fraction).clamp(0.0, 1.0));
        (c.curr_samples.max(0) as u64, left)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_shared_by_plugin_name_and_window_length() {
        let store = LimitStore::default();
        let minute = Duration::from_secs(60);
        let a = store.rate("p", minute);
        assert!(Arc::ptr_eq(&a, &store.rate("p", minute)));
        assert!(!Arc::ptr_eq(&a, &store.rate("p", Duration::from_secs(1))));
        assert!(!Arc::ptr_eq(&a, &store.rate("q", minute)));
        let inflight = store.inflight("p");
        assert!(Arc::ptr_eq(&inflight, &store.inflight("p")));
        assert!(!Arc::ptr_eq(&inflight, &store.inflight("q")));
    }

    #[test]
    fn peek_reports_the_current_count_and_time_left_without_counting() {
        let rate = Rate::new(Duration::from_secs(60));
        assert_eq!(peek(&rate, "k").0, 0);
        rate.observe(&"k", 3);
        let (count, left) = peek(&rate, "k");
        assert_eq!(count, 3);
        assert!(
            left > Duration::from_secs(55) && left <= Duration::from_secs(60),
            "{left:?}"
        );
        assert_eq!(peek(&rate, "k").0, 3);
        assert_eq!(peek(&rate, "other").0, 0);
    }
}
