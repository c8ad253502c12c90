//! Per-endpoint state that must outlive snapshots (active requests today; health later),
//! keyed by service name and address so that a reload hands the same state to the new
//! snapshot's endpoints.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct EndpointState {
    /// Requests and tunnels currently using this endpoint (for least_conn).
    pub active: AtomicU32,
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
        self.map
            .lock()
            .retain(|_, state| Arc::strong_count(state) > 1);
    }
}
