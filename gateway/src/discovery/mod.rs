//! Discovered endpoints, whatever registry they come from: the last known list per watched
//! service, its version, where it came from, and how the registry has been answering. It
//! outlives snapshots, so a reload starts from what is known instead of from nothing; a
//! registry answer is pushed into the serving snapshot's services in place (no rebuild), and
//! a newly applied snapshot catches up with answers that arrived while it was built.

pub mod cache;
pub mod dns;
mod entry;
mod health;
pub mod kubernetes;

use crate::config::{NacosConfig, ServiceKey};
use crate::upstream::{EndpointSpec, EndpointStates, Service};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

/// Runs a start-up fetch (`what`: for the log) to completion on a runtime of its own, before
/// Pingora's runtimes exist: the registry and DNS prefetches, bounded by their callers.
pub fn before_serving(what: &str, fetch: impl std::future::Future<Output = ()>) {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(fetch),
        Err(e) => log::error!("{what}: no runtime for the start-up fetch: {e}"),
    }
}

#[derive(Default)]
pub struct Discovery {
    entries: Mutex<HashMap<ServiceKey, Entry>>,
    next_version: AtomicU64,
    settings: Mutex<Settings>,
    health: Mutex<Health>,
    /// Held while a change is recorded and pushed into the serving snapshot, and while a
    /// newly applied snapshot catches up: a change can never fall between the two.
    push_lock: Mutex<()>,
    /// Endpoints by DNS name: the last good addresses per name.
    pub dns: dns::Names,
    /// Endpoints from Kubernetes: the last known list per bound Service port.
    pub kubernetes: kubernetes::Pods,
}

#[derive(Default, Clone, PartialEq)]
struct Settings {
    cache_dir: Option<PathBuf>,
    namespace: String,
}

pub(crate) use entry::Entry;
pub(crate) use health::Health;

#[derive(Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Origin {
    Registry,
    Cache,
}

/// What `/readyz` and the admin API show about the registry.
#[derive(serde::Serialize)]
pub struct RegistryStatus {
    /// `up` (the last call answered), `down`, or `unused` (no `[nacos]`).
    pub state: &'static str,
    /// The registry API in use: `grpc`, `v3` (the HTTP client API of Nacos 3.x) or `v1`;
    /// `null` before the first answer (or without `[nacos]`).
    pub api: Option<&'static str>,
    pub last_success_ms_ago: Option<u64>,
    pub last_error: Option<String>,
    pub services: BTreeMap<String, ServiceStatus>,
}

#[derive(serde::Serialize)]
pub struct ServiceStatus {
    pub endpoints: usize,
    pub usable: usize,
    pub origin: &'static str,
    pub stale: Option<String>,
    pub changed_at: String,
}

impl ServiceStatus {
    pub(crate) fn of(
        endpoints: &[EndpointSpec],
        origin: Origin,
        stale: Option<String>,
        changed_at: SystemTime,
    ) -> ServiceStatus {
        ServiceStatus {
            endpoints: endpoints.len(),
            usable: endpoints.iter().filter(|x| x.weight > 0).count(),
            origin: match origin {
                Origin::Registry => "registry",
                Origin::Cache => "cache",
            },
            stale,
            changed_at: crate::time::rfc3339_millis(changed_at),
        }
    }
}

impl Discovery {
    /// Takes the cache directory and namespace of the config now serving.
    pub fn configure(&self, config: Option<&NacosConfig>) {
        let settings = Settings {
            cache_dir: config.and_then(|c| c.cache_dir.as_ref().map(PathBuf::from)),
            namespace: config
                .map(|c| c.namespace_id().to_string())
                .unwrap_or_default(),
        };
        let mut current = self.settings.lock();
        if current.namespace != settings.namespace {
            // Another namespace is another registry: nothing known carries over.
            self.entries.lock().clear();
        }
        *current = settings;
        self.health.lock().set_configured(config.is_some());
    }

    /// The last known instances of `key`: from memory, else from the cache directory of
    /// `config` (the config being built, which may not be serving yet).
    pub fn current(
        &self,
        key: &ServiceKey,
        config: Option<&NacosConfig>,
    ) -> Option<(u64, Arc<Vec<EndpointSpec>>)> {
        let config = config?;
        if self.settings.lock().namespace == config.namespace_id() {
            if let Some(e) = self.entries.lock().get(key) {
                return Some((e.version, e.endpoints.clone()));
            }
        }
        let dir = PathBuf::from(config.cache_dir.as_ref()?);
        let endpoints = Arc::new(cache::load_instances(&dir, config.namespace_id(), key)?);
        let version = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        if self.settings.lock().namespace == config.namespace_id() {
            self.entries
                .lock()
                .entry(key.clone())
                .or_insert_with(|| Entry::new(version, endpoints.clone(), Origin::Cache));
        }
        Some((version, endpoints))
    }

    /// Records an answer from the registry. Returns the new version and list when it
    /// differs from what is known (and saves it to the cache directory).
    pub fn record(
        &self,
        key: &ServiceKey,
        endpoints: Vec<EndpointSpec>,
    ) -> Option<(u64, Arc<Vec<EndpointSpec>>)> {
        let mut entries = self.entries.lock();
        let recorded = entry::record(&mut entries, &self.next_version, key, endpoints);
        publish_stale(&entries);
        drop(entries);
        let (version, endpoints) = recorded?;
        let settings = self.settings.lock().clone();
        if let Some(dir) = &settings.cache_dir {
            cache::save_instances(dir, &settings.namespace, key, &endpoints);
        }
        Some((version, endpoints))
    }

    /// The registry's answer was not taken (see the poller); the last known list stays.
    pub fn keep_last(&self, key: &ServiceKey, why: String) {
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get_mut(key) {
            e.kept_because = Some(why);
        }
        publish_stale(&entries);
    }

    /// Whether anything is known for `key` with at least one endpoint.
    pub fn has_endpoints(&self, key: &ServiceKey) -> bool {
        self.entries
            .lock()
            .get(key)
            .is_some_and(|e| !e.endpoints.is_empty())
    }

    pub fn note_success(&self) {
        self.health.lock().success();
        crate::metrics::get().nacos_up.set(1);
    }

    pub fn note_error(&self, error: String) {
        self.health.lock().error(error);
        crate::metrics::get().nacos_up.set(0);
    }

    /// Forgets services no config refers to any more.
    pub fn retain(&self, wanted: &std::collections::HashSet<ServiceKey>) {
        let mut entries = self.entries.lock();
        entries.retain(|k, _| wanted.contains(k));
        publish_stale(&entries);
    }

    /// A registry answer for `key`: when it differs from what is known, every service of
    /// `services` (the serving snapshot's) bound to `key` gets the new endpoints in place.
    /// Returns whether anything changed.
    pub fn push<'s>(
        &self,
        key: &ServiceKey,
        endpoints: Vec<EndpointSpec>,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) -> bool {
        let _in_order = self.push_lock.lock();
        let Some((version, endpoints)) = self.record(key, endpoints) else {
            return false;
        };
        for service in services {
            if service.nacos.as_ref() == Some(key) {
                service.replace_members(version, &endpoints, states);
            }
        }
        states.retain_used();
        log::info!(
            "{key}: {} endpoints ({} take traffic)",
            endpoints.len(),
            endpoints.iter().filter(|e| e.weight > 0).count()
        );
        true
    }

    /// After a swap: registry-bound services built from an older list than the latest known
    /// (an answer that arrived during the build) catch up.
    pub fn catch_up<'s>(
        &self,
        nacos: Option<&NacosConfig>,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) {
        let _in_order = self.push_lock.lock();
        self.configure(nacos);
        for service in services {
            let Some(key) = &service.nacos else { continue };
            if let Some((version, endpoints)) = self.current(key, nacos) {
                if service.members().version != version {
                    service.replace_members(version, &endpoints, states);
                }
            }
        }
    }

    pub fn cache_dir(&self) -> Option<(PathBuf, String)> {
        let s = self.settings.lock();
        s.cache_dir.clone().map(|d| (d, s.namespace.clone()))
    }

    pub fn status(&self) -> RegistryStatus {
        let health = self.health.lock();
        let state = health.state();
        let entries = self.entries.lock();
        let services = entries
            .iter()
            .map(|(key, e)| (key.to_string(), e.status()))
            .collect();
        RegistryStatus {
            state,
            api: if health.configured() {
                crate::nacos::api_in_use()
            } else {
                None
            },
            last_success_ms_ago: health.last_success_ms_ago(),
            last_error: health.last_error(),
            services,
        }
    }
}

/// `tidegate_nacos_stale_services`: services serving a kept list instead of the registry's
/// latest answer.
fn publish_stale(entries: &HashMap<ServiceKey, Entry>) {
    let stale = entries
        .values()
        .filter(|e| e.kept_because.is_some())
        .count();
    crate::metrics::get().nacos_stale_services.set(stale as i64);
}
