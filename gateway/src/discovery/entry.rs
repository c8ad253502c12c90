//! One watched list as a registry store keeps it — the Nacos store (keyed by Nacos service)
//! and the Kubernetes store (keyed by Service port) alike: its endpoints, their version, where
//! they came from, and why a newer answer was not taken.

use super::{Origin, ServiceStatus};
use crate::upstream::EndpointSpec;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

pub(crate) struct Entry {
    pub version: u64,
    pub endpoints: Arc<Vec<EndpointSpec>>,
    pub origin: Origin,
    /// Why the registry's latest answer was not taken (the last known list is kept).
    pub kept_because: Option<String>,
    pub changed_at: SystemTime,
}

impl Entry {
    pub fn new(version: u64, endpoints: Arc<Vec<EndpointSpec>>, origin: Origin) -> Entry {
        Entry {
            version,
            endpoints,
            origin,
            kept_because: None,
            changed_at: SystemTime::now(),
        }
    }

    pub fn status(&self) -> ServiceStatus {
        ServiceStatus::of(
            &self.endpoints,
            self.origin,
            self.kept_because.clone(),
            self.changed_at,
        )
    }
}

/// The registry answered `endpoints` for `key`: the answer is taken (the entry is current
/// again, from the registry). Returns the new version and list when they differ from what
/// was known, None when the same list was already known.
pub(crate) fn record<K: Eq + Hash + Clone>(
    entries: &mut HashMap<K, Entry>,
    next_version: &AtomicU64,
    key: &K,
    endpoints: Vec<EndpointSpec>,
) -> Option<(u64, Arc<Vec<EndpointSpec>>)> {
    if let Some(e) = entries.get_mut(key) {
        e.kept_because = None;
        if *e.endpoints == endpoints {
            e.origin = Origin::Registry;
            return None;
        }
    }
    let endpoints = Arc::new(endpoints);
    let version = next_version.fetch_add(1, Ordering::Relaxed) + 1;
    entries.insert(
        key.clone(),
        Entry::new(version, endpoints.clone(), Origin::Registry),
    );
    Some((version, endpoints))
}
