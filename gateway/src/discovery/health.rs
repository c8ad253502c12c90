//! How a registry (Nacos, the Kubernetes API server) has been answering: what `/readyz`,
//! `/api/config/status` and the `*_up` gauges show. Trouble here degrades (the last known
//! endpoints keep serving); it never takes the gateway out of its load balancer.

use std::time::Instant;

#[derive(Default)]
pub struct Health {
    configured: bool,
    last_success: Option<Instant>,
    last_error: Option<(Instant, String)>,
}

impl Health {
    /// Whether the config serving uses this registry at all.
    pub fn set_configured(&mut self, configured: bool) {
        self.configured = configured;
    }

    pub fn configured(&self) -> bool {
        self.configured
    }

    pub fn success(&mut self) {
        self.last_success = Some(Instant::now());
    }

    pub fn error(&mut self, error: String) {
        self.last_error = Some((Instant::now(), error));
    }

    /// `up` (the latest outcome was an answer), `down`, or `unused`.
    pub fn state(&self) -> &'static str {
        let up = match (&self.last_success, &self.last_error) {
            (Some(ok), Some((err, _))) => ok > err,
            (Some(_), None) => true,
            _ => false,
        };
        match (self.configured, up) {
            (false, _) => "unused",
            (true, true) => "up",
            (true, false) => "down",
        }
    }

    pub fn last_success_ms_ago(&self) -> Option<u64> {
        self.last_success.map(|t| t.elapsed().as_millis() as u64)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.as_ref().map(|(_, e)| e.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_outcome_decides_and_an_unused_registry_is_neither() {
        let mut h = Health::default();
        assert_eq!(h.state(), "unused");
        h.set_configured(true);
        assert_eq!(h.state(), "down");
        h.success();
        assert_eq!(h.state(), "up");
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.error("refused".into());
        assert_eq!(
            (h.state(), h.last_error().as_deref()),
            ("down", Some("refused"))
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        h.success();
        assert_eq!(h.state(), "up");
    }
}
