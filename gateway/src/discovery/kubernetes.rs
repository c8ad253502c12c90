//! Endpoints from Kubernetes: the last known list per bound Service port, pushed into the
//! serving snapshot's services in place — the registry model of [`super::Discovery`] with a
//! [`KubeKey`] in the place of a Nacos service, and the API server in the place of Nacos.
//!
//! A store of its own rather than Nacos entries because the two differ in what makes an
//! entry the same (a namespace there is a registry setting, here part of every key) and in
//! how they are fed (answers to polls and pushes there, a list kept current by watches
//! here). What they share — the cache files, the in-place swap and the catch-up after a
//! snapshot swap — is the same code ([`super::cache`], `Service::replace_members`).

use super::{cache, entry, Entry, Health, Origin, ServiceStatus};
use crate::config::{KubeKey, KubernetesConfig};
use crate::upstream::{EndpointSpec, EndpointStates, Service};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Default)]
pub struct Pods {
    entries: Mutex<HashMap<KubeKey, Entry>>,
    next_version: AtomicU64,
    cache_dir: Mutex<Option<PathBuf>>,
    health: Mutex<Health>,
    /// Held while a change is recorded and pushed, and while a new snapshot catches up.
    push_lock: Mutex<()>,
}

/// What `/readyz` and the admin API show about the API server.
#[derive(serde::Serialize)]
pub struct KubernetesStatus {
    /// `up` (the watches are current), `down`, or `unused` (no `[kubernetes]`).
    pub state: &'static str,
    pub last_success_ms_ago: Option<u64>,
    pub last_error: Option<String>,
    pub services: BTreeMap<String, ServiceStatus>,
}

fn cache_path(dir: &Path, key: &KubeKey) -> PathBuf {
    let port = key
        .port
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    dir.join(cache::file_name("pods", &[&key.namespace, &key.service, &port]) + ".json")
}

impl Pods {
    /// Takes the cache directory of the config now serving.
    pub fn configure(&self, config: Option<&KubernetesConfig>) {
        *self.cache_dir.lock() = config.and_then(|c| c.cache_dir.as_ref().map(PathBuf::from));
        self.health.lock().set_configured(config.is_some());
    }

    /// The last known endpoints of `key`: from memory, else from the cache directory of
    /// `config` (the config being built, which may not be serving yet).
    pub fn current(
        &self,
        key: &KubeKey,
        config: Option<&KubernetesConfig>,
    ) -> Option<(u64, Arc<Vec<EndpointSpec>>)> {
        if let Some(e) = self.entries.lock().get(key) {
            return Some((e.version, e.endpoints.clone()));
        }
        let dir = PathBuf::from(config?.cache_dir.as_ref()?);
        let endpoints = Arc::new(cache::load_endpoints(
            &cache_path(&dir, key),
            &key.to_string(),
        )?);
        let version = self.next_version.fetch_add(1, Ordering::Relaxed) + 1;
        let mut entries = self.entries.lock();
        let entry = entries
            .entry(key.clone())
            .or_insert_with(|| Entry::new(version, endpoints, Origin::Cache));
        Some((entry.version, entry.endpoints.clone()))
    }

    /// The endpoints of a service bound to `keys` (several Kubernetes Services together):
    /// the lists known of each, one after the other, under the sum of their versions (which
    /// grows with a change of any of them). None when nothing is known of any.
    pub fn current_of(
        &self,
        keys: &[KubeKey],
        config: Option<&KubernetesConfig>,
    ) -> Option<(u64, Arc<Vec<EndpointSpec>>)> {
        if let [key] = keys {
            return self.current(key, config);
        }
        let known: Vec<(u64, Arc<Vec<EndpointSpec>>)> = keys
            .iter()
            .filter_map(|k| self.current(k, config))
            .collect();
        if known.is_empty() {
            return None;
        }
        let version = known.iter().map(|(v, _)| v).sum();
        let endpoints = known.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
        Some((version, Arc::new(endpoints)))
    }

    /// The API server's state of `key`: when it differs from what is known, every service of
    /// `services` (the serving snapshot's) bound to `key` gets the new endpoints in place,
    /// and the list is saved to the cache directory. Returns whether anything changed.
    pub fn push<'s>(
        &self,
        key: &KubeKey,
        endpoints: Vec<EndpointSpec>,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) -> bool {
        let _in_order = self.push_lock.lock();
        let recorded = entry::record(&mut self.entries.lock(), &self.next_version, key, endpoints);
        let Some((_, endpoints)) = recorded else {
            return false;
        };
        if let Some(dir) = self.cache_dir.lock().clone() {
            cache::save_endpoints(&cache_path(&dir, key), &key.to_string(), &endpoints);
        }
        for service in services {
            if service.kubernetes.contains(key) {
                if let Some((version, all)) = self.current_of(&service.kubernetes, None) {
                    service.replace_members(version, &all, states);
                }
            }
        }
        states.retain_used();
        log::info!(
            "kubernetes {key}: {} endpoints ({} ready)",
            endpoints.len(),
            endpoints.iter().filter(|e| e.weight > 0).count()
        );
        true
    }

    /// The state of `key` could not be made into endpoints (a Service port that needs a
    /// name): the last list stays, and says why.
    pub fn keep_last(&self, key: &KubeKey, why: String) {
        if let Some(e) = self.entries.lock().get_mut(key) {
            e.kept_because = Some(why);
        }
    }

    /// After a swap: services built from an older list than the latest known catch up.
    pub fn catch_up<'s>(
        &self,
        config: Option<&KubernetesConfig>,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) {
        let _in_order = self.push_lock.lock();
        self.configure(config);
        for service in services {
            if service.kubernetes.is_empty() {
                continue;
            }
            if let Some((version, endpoints)) = self.current_of(&service.kubernetes, config) {
                if service.members().version != version {
                    service.replace_members(version, &endpoints, states);
                }
            }
        }
    }

    /// Forgets Service ports no config is bound to any more.
    pub fn retain(&self, wanted: &HashSet<KubeKey>) {
        self.entries.lock().retain(|k, _| wanted.contains(k));
    }

    pub fn note_success(&self) {
        self.health.lock().success();
        crate::metrics::get().kubernetes_up.set(1);
    }

    pub fn note_error(&self, error: String) {
        self.health.lock().error(error);
        crate::metrics::get().kubernetes_up.set(0);
    }

    pub fn status(&self) -> KubernetesStatus {
        let health = self.health.lock();
        let services = self
            .entries
            .lock()
            .iter()
            .map(|(key, e)| (key.to_string(), e.status()))
            .collect();
        KubernetesStatus {
            state: health.state(),
            last_success_ms_ago: health.last_success_ms_ago(),
            last_error: health.last_error(),
            services,
        }
    }
}
