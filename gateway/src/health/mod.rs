//! Active health checks for every service that asks for them (`health_check = { … }`), and
//! the endpoint-state gauges. Check results land in the endpoints' state, which outlives
//! snapshots, so a reload neither forgets an unhealthy endpoint nor restarts its thresholds.

use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod probe;

use probe::probe;

const TICK: Duration = Duration::from_millis(100);

pub struct HealthChecks {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for HealthChecks {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_due: HashMap<(String, SocketAddr), Instant> = HashMap::new();
        let mut last_gauges = Instant::now();
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => {}
            }
            let snapshot = self.gateway.snapshot();
            let now = Instant::now();
            for (name, service) in &snapshot.services {
                let Some(check) = &service.health_check else {
                    continue;
                };
                for endpoint in &service.members().endpoints {
                    let due = next_due.entry((name.clone(), endpoint.addr)).or_insert(now);
                    if *due > now {
                        continue;
                    }
                    *due = now + Duration::from_millis(check.interval_ms);
                    let (check, state, addr, service) = (
                        check.clone(),
                        endpoint.state.clone(),
                        endpoint.addr,
                        name.clone(),
                    );
                    tokio::spawn(async move {
                        let ok = probe(&check, addr).await;
                        if let Some(flipped) = state.record_check(
                            ok,
                            check.healthy_threshold,
                            check.unhealthy_threshold,
                        ) {
                            let word = if flipped { "healthy" } else { "unhealthy" };
                            log::warn!("endpoint {addr} of service {service} is now {word}");
                        }
                    });
                }
            }
            if last_gauges.elapsed() >= Duration::from_secs(1) {
                last_gauges = Instant::now();
                snapshot.publish_endpoint_states();
                next_due.retain(|(s, a), _| {
                    snapshot
                        .services
                        .get(s)
                        .is_some_and(|svc| svc.members().endpoints.iter().any(|e| e.addr == *a))
                });
            }
        }
    }
}
