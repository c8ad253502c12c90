//! Passive health: real requests' outcomes eject an endpoint after enough failures in a row
//! (`passive = { failures, eject_ms, count_5xx }`). The counts live in the endpoint's state,
//! which outlives snapshots.

use super::{EndpointState, Service};

impl Service {
    /// A connect to `state`'s endpoint failed (always a failure, whatever `count_5xx` says).
    pub fn connect_failed(&self, state: &EndpointState, endpoint: &dyn std::fmt::Display) {
        let passive = &self.passive;
        if passive.failures > 0 && state.record_failure(passive.failures, passive.eject_ms) {
            log::warn!(
                "endpoint {endpoint} of service {} ejected for {} ms after {} connect failures",
                self.name,
                passive.eject_ms,
                passive.failures
            );
        }
    }

    /// The endpoint answered with `status`: a 5xx is a failure when `count_5xx` is set,
    /// anything else resets the count.
    pub fn responded(&self, state: &EndpointState, status: http::StatusCode) {
        let passive = &self.passive;
        if passive.count_5xx && status.is_server_error() {
            if passive.failures > 0 {
                state.record_failure(passive.failures, passive.eject_ms);
            }
        } else {
            state.record_success();
        }
    }
}
