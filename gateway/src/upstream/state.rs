//! Per-endpoint state that must outlive snapshots (active requests, health), keyed by
//! service name and address so that a reload hands the same state to the new snapshot's
//! endpoints.

use super::pool::IdlePool;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

#[derive(Debug)]
pub struct EndpointState {
    /// Requests and tunnels currently using this endpoint (for least_conn).
    pub active: AtomicU32,
    /// Set by active health checks (healthy until a check says otherwise).
    healthy: AtomicBool,
    /// Consecutive check results in the current direction, for the thresholds.
    streak: AtomicU32,
    /// Passive: consecutive failures of real requests, and the ejection end (ms on the
    /// process clock, 0 when not ejected).
    failures: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Idle keep-alive connections to this endpoint.
    pub idle: IdlePool,
}

impl Default for EndpointState {
    fn default() -> Self {
        EndpointState {
            active: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            streak: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            idle: IdlePool::default(),
        }
    }
}

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl EndpointState {
    /// May take traffic: healthy by the active checks and not ejected by passive ones.
    pub fn available(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms()
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn is_ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms()
    }

    /// An active check's result; the state flips after `threshold` results in a row.
    pub fn record_check(&self, ok: bool, healthy_after: u32, unhealthy_after: u32) -> Option<bool> {
        let healthy = self.healthy.load(Ordering::Relaxed);
        if ok == healthy {
            self.streak.store(0, Ordering::Relaxed);
            return None;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        let needed = if ok { healthy_after } else { unhealthy_after };
        if streak >= needed.max(1) {
            self.healthy.store(ok, Ordering::Relaxed);
            self.streak.store(0, Ordering::Relaxed);
            return Some(ok);
        }
        None
    }

    /// A real request failed (connect failure, or a 5xx when configured to count). Returns
    /// true when this failure ejected the endpoint.
    pub fn record_failure(&self, threshold: u32, eject_ms: u64) -> bool {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= threshold.max(1) {
            self.failures.store(0, Ordering::Relaxed);
            self.ejected_until_ms
                .store(now_ms() + eject_ms, Ordering::Relaxed);
            return true;
        }
        false
    }

    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
pub struct EndpointStates {
    map: Mutex<HashMap<(String, SocketAddr), Arc<EndpointState>>>,
}

impl EndpointStates {
    pub fn get(&self, service: &str, addr: SocketAddr) -> Arc<EndpointState> {
        self.map
            .lock()
            .entry((service.to_string(), addr))
            .or_default()
            .clone()
    }

    /// Forgets endpoints no live snapshot refers to (their state is held by whoever still
    /// uses it, so in-flight requests are unaffected).
    pub fn retain_used(&self) {
        // (A forgotten endpoint's idle connections close with its state.)
        self.map
            .lock()
            .retain(|_, state| Arc::strong_count(state) > 1);
    }

    /// Closes idle upstream connections that have reached their idle timeout.
    pub fn sweep_idle(&self) {
        let states: Vec<Arc<EndpointState>> = self.map.lock().values().cloned().collect();
        for state in states {
            state.idle.sweep();
        }
    }
}
