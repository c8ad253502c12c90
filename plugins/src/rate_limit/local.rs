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
