//! Pod discovery: services bound with `kubernetes = { namespace, service, port }` take their
//! endpoints from the Service's EndpointSlices, with the pods' labels, kept current by
//! watches of the API server (`watch.rs`) and turned into endpoints (`join.rs`) that are
//! swapped into the serving snapshot in place (`discovery::kubernetes`), as Nacos changes
//! are: no rebuild, no reload, no tunnel touched unless its own pod left.
//!
//! Where it runs: in every gateway, for the Services that gateway's config binds and nothing
//! else — a gateway watches EndpointSlices by `kubernetes.io/service-name` and pod metadata
//! per namespace in use, never the cluster's Ingresses or whole object sets. That keeps the
//! data plane's API-server load proportional to what it routes to and its RBAC to
//! `get/list/watch` of two resources.
//!
//! When the API server cannot be reached, what is known keeps serving (and, with
//! `cache_dir`, survives a restart); the watches retry with a backoff and catch up by relist.

pub mod bundle;
mod client;
pub mod config_secret;
pub mod join;

pub use client::client;
mod watch;

use crate::config::{KubeKey, KubernetesConfig};
use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use watch::{Watched, Watches};

/// How often the runner looks for bindings that a new config uses.
const SYNC: Duration = Duration::from_millis(100);

/// The Service ports the serving config binds.
fn bound(gateway: &Gateway) -> HashSet<KubeKey> {
    gateway
        .snapshot()
        .services
        .values()
        .flat_map(|s| s.kubernetes.iter().cloned())
        .collect()
}

/// The watches `keys` need.
fn watches_for(keys: &HashSet<KubeKey>, config: &KubernetesConfig) -> HashSet<Watched> {
    let mut wanted = HashSet::new();
    for key in keys {
        wanted.insert(Watched::Slices {
            namespace: key.namespace.clone(),
            service: key.service.clone(),
        });
        if config.pod_labels {
            wanted.insert(Watched::Pods {
                namespace: key.namespace.clone(),
            });
        }
    }
    wanted
}

/// Turns what the watches know into the endpoints of every key they have listed, and pushes
/// them into the gateway (a list that did not change is not pushed again).
fn publish(gateway: &Gateway, watches: &Watches, keys: &HashSet<KubeKey>, pod_labels: bool) {
    let store = &gateway.discovery().kubernetes;
    let mut computed = Vec::new();
    {
        let world = watches.shared.world.lock();
        match world.failing.iter().next() {
            Some((what, error)) => store.note_error(format!("watching {what}: {error}")),
            None => store.note_success(),
        }
        let no_pods = join::PodLabels::new();
        for key in keys {
            let Some(Some(slices)) = world
                .slices
                .get(&(key.namespace.clone(), key.service.clone()))
            else {
                continue; // not listed yet: the last known endpoints stay
            };
            let pods = match world.pods.get(&key.namespace) {
                Some(Some(pods)) => pods,
                _ if pod_labels => continue, // labels not listed yet: a split would be wrong
                _ => &no_pods,
            };
            computed.push((
                key.clone(),
                join::endpoints(slices.values(), &key.service, key.port.as_ref(), pods),
            ));
        }
    }
    for (key, endpoints) in computed {
        match endpoints {
            Ok(endpoints) => {
                gateway.kubernetes_discovered(&key, endpoints);
            }
            Err(why) => {
                log::error!("kubernetes {key}: {why}; the last known endpoints stay");
                store.keep_last(&key, why);
            }
        }
    }
}

/// Lists every bound Service once (at most `limit` in all) before the listeners open, so a
/// gateway serves its pods from its first request.
pub fn prefetch(gateway: &Arc<Gateway>, limit: Duration) {
    let snapshot = gateway.snapshot();
    let Some(config) = snapshot
        .config
        .kubernetes
        .as_ref()
        .map(|c| c.get_ref().clone())
    else {
        return;
    };
    drop(snapshot);
    let keys = bound(gateway);
    if keys.is_empty() {
        return;
    }
    crate::discovery::before_serving("kubernetes", async {
        let client = match client(&config) {
            Ok(c) => c,
            Err(e) => {
                log::error!("{e}");
                gateway.discovery().kubernetes.note_error(e);
                return;
            }
        };
        let mut watches = Watches::default();
        watches.sync(&client, &watches_for(&keys, &config));
        let listed = tokio::time::timeout(limit, async {
            while !watches.listed() {
                watches.shared.changed.notified().await;
            }
        })
        .await;
        if listed.is_err() {
            log::warn!("kubernetes: not every bound Service was listed within {limit:?} at start");
        }
        publish(gateway, &watches, &keys, config.pod_labels);
    });
}

/// The background service: keeps the watches the serving config needs and publishes what
/// they see.
pub struct KubernetesRunner {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for KubernetesRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut config: Option<KubernetesConfig> = None;
        let mut client: Option<kube::Client> = None;
        let mut watches = Watches::default();
        let mut ticker = tokio::time::interval(SYNC);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published_for: Option<HashSet<KubeKey>> = None;
        loop {
            let seen_change = tokio::select! {
                _ = shutdown.changed() => break,
                _ = ticker.tick() => false,
                _ = watches.shared.changed.notified() => true,
            };
            let snapshot = self.gateway.snapshot();
            let wanted_config = snapshot
                .config
                .kubernetes
                .as_ref()
                .map(|c| c.get_ref().clone());
            drop(snapshot);
            let keys = bound(&self.gateway);
            self.gateway.discovery().kubernetes.retain(&keys);
            if wanted_config != config {
                // Another API server (or none): new watches, which relist.
                watches.stop();
                client = None;
                published_for = None;
                if let Some(c) = &wanted_config {
                    match self::client(c) {
                        Ok(made) => client = Some(made),
                        Err(e) => {
                            log::error!("{e}");
                            self.gateway.discovery().kubernetes.note_error(e);
                        }
                    }
                }
                config = wanted_config;
            }
            let (Some(client), Some(config)) = (&client, &config) else {
                continue;
            };
            watches.sync(client, &watches_for(&keys, config));
            // Only a change the watches saw, or another set of bindings, has anything new.
            if seen_change || published_for.as_ref() != Some(&keys) {
                publish(&self.gateway, &watches, &keys, config.pod_labels);
                published_for = Some(keys);
            }
        }
        watches.stop();
    }
}
