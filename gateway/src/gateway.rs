//! The process-wide state: the current snapshot and everything that outlives snapshots
//! (endpoint state, open tunnels, the access log), plus the one pipeline every config change
//! goes through, whatever its source.

use crate::access_log::AccessLog;
use crate::config::{ConfigErrors, Source};
use crate::router::TunnelPolicy;
use crate::snapshot::{content_hash, Snapshot};
use crate::tunnel::{self, Command};
use crate::upstream::EndpointStates;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where a config change came from, as shown in the status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    Startup,
    File,
    Signal,
    AdminApi,
    Nacos,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Refusal {
    pub at: String,
    pub source: ChangeSource,
    pub origin: String,
    pub errors: Vec<String>,
}

#[derive(Debug)]
pub enum Applied {
    /// A new snapshot is serving.
    New {
        version: u64,
        hash: String,
        restart_needed: Vec<String>,
    },
    /// The text equals what is serving; nothing changed.
    Unchanged { version: u64, hash: String },
}

pub struct Gateway {
    current: ArcSwap<Snapshot>,
    current_source: Mutex<ChangeSource>,
    endpoint_states: EndpointStates,
    discovery: crate::nacos::Discovery,
    plugin_stores: Arc<tidegate_plugins::Stores>,
    tunnels: Arc<tunnel::Registry>,
    draining: AtomicBool,
    access_log: AccessLog,
    /// One change at a time, so versions are applied in order.
    apply_lock: Mutex<()>,
    last_refusal: Mutex<Option<Refusal>>,
    /// The config file, when the config came from one (changes made through the admin API
    /// that must survive restarts are written back to it).
    config_path: std::sync::OnceLock<std::path::PathBuf>,
}

impl Gateway {
    /// Builds the first snapshot; the process refuses to start on a bad config.
    pub fn start(source: Source) -> Result<Arc<Gateway>, ConfigErrors> {
        let endpoint_states = EndpointStates::default();
        let plugin_stores = Arc::new(tidegate_plugins::Stores::default());
        let discovery = crate::nacos::Discovery::default();
        let snapshot = Snapshot::build(source, 1, &endpoint_states, &plugin_stores, &discovery)?;
        discovery.configure(snapshot.config.nacos.as_ref().map(|n| n.get_ref()));
        if let Err(e) = plugin_stores.redis.configure(&snapshot.config.redis) {
            log::error!("{e}");
        }
        let access_log = AccessLog::start(&snapshot.config.access_log).map_err(|e| {
            ConfigErrors::single(
                snapshot.source.origin.clone(),
                crate::config::ConfigError::whole(format!("cannot open access log: {e}")),
            )
        })?;
        crate::metrics::publish_snapshot(&snapshot);
        Ok(Arc::new(Gateway {
            current: ArcSwap::from_pointee(snapshot),
            current_source: Mutex::new(ChangeSource::Startup),
            endpoint_states,
            discovery,
            plugin_stores,
            tunnels: Arc::default(),
            draining: AtomicBool::new(false),
            access_log,
            apply_lock: Mutex::new(()),
            last_refusal: Mutex::new(None),
            config_path: std::sync::OnceLock::new(),
        }))
    }

    pub fn set_config_path(&self, path: std::path::PathBuf) {
        let _ = self.config_path.set(path);
    }

    /// Writes `text` to the config file atomically (write, then rename). Returns whether it
    /// was written; without a file (embedded default) there is nothing to write to.
    pub fn persist(&self, text: &str) -> bool {
        let Some(path) = self.config_path.get() else {
            return false;
        };
        if self.current.load().source.overlay.is_some() {
            // The file is the bootstrap; the serving text is the shared one from Nacos.
            log::warn!(
                "config comes from nacos: this change lasts until the next publication there"
            );
            return false;
        }
        let tmp = path.with_extension("toml.tidegate-tmp");
        let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = &written {
            log::error!("could not write {}: {e}", path.display());
        }
        written.is_ok()
    }

    /// The snapshot to use for one request: one atomic load.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn current_source(&self) -> ChangeSource {
        *self.current_source.lock()
    }

    /// State of an endpoint, shared with the snapshots that list it.
    pub fn endpoint_state(
        &self,
        service: &str,
        addr: std::net::SocketAddr,
    ) -> Arc<crate::upstream::EndpointState> {
        self.endpoint_states.get(service, addr)
    }

    pub fn discovery(&self) -> &crate::nacos::Discovery {
        &self.discovery
    }

    /// A registry answer for `key`: when it differs from what is known, every service of the
    /// serving snapshot bound to `key` gets the new endpoints in place — no snapshot rebuild.
    pub fn discovered(
        &self,
        key: &crate::nacos::ServiceKey,
        endpoints: Vec<crate::upstream::EndpointSpec>,
    ) {
        let _in_order = self.discovery.push_lock.lock();
        let Some((version, endpoints)) = self.discovery.record(key, endpoints) else {
            return;
        };
        let snapshot = self.current.load();
        for service in snapshot.services.values() {
            if service.nacos.as_ref() == Some(key) {
                service.replace_members(version, &endpoints, &self.endpoint_states);
            }
        }
        self.endpoint_states.retain_used();
        crate::metrics::publish_endpoint_states(&snapshot);
        log::info!(
            "{key}: {} endpoints ({} take traffic)",
            endpoints.len(),
            endpoints.iter().filter(|e| e.weight > 0).count()
        );
    }

    /// After a swap: registry-bound services built from an older list than the registry's
    /// latest (a change that arrived during the build) catch up.
    fn catch_up_discovery(&self, snapshot: &Snapshot) {
        let _in_order = self.discovery.push_lock.lock();
        let nacos = snapshot.config.nacos.as_ref().map(|n| n.get_ref());
        self.discovery.configure(nacos);
        for service in snapshot.services.values() {
            let Some(key) = &service.nacos else { continue };
            if let Some((version, endpoints)) = self.discovery.current(key, nacos) {
                if service.members().version != version {
                    service.replace_members(version, &endpoints, &self.endpoint_states);
                }
            }
        }
    }

    pub fn tunnels(&self) -> &Arc<tunnel::Registry> {
        &self.tunnels
    }

    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
        crate::metrics::get().draining.set(1);
    }

    pub fn last_refusal(&self) -> Option<Refusal> {
        self.last_refusal.lock().clone()
    }

    /// Checks a config as `apply` would, without applying it.
    pub fn validate(&self, source: &Source) -> Result<(), ConfigErrors> {
        let scratch = Arc::new(tidegate_plugins::Stores::default());
        Snapshot::build(
            source.clone(),
            0,
            &self.endpoint_states,
            &scratch,
            &self.discovery,
        )
        .map(|_| ())
    }

    /// The one way a config change gets in: build a complete snapshot beside the serving
    /// one, then swap. A refused change leaves the serving snapshot untouched.
    pub fn apply(&self, mut source: Source, from: ChangeSource) -> Result<Applied, ConfigErrors> {
        let _one_at_a_time = self.apply_lock.lock();
        let metrics = crate::metrics::get();
        let old = self.current.load_full();
        if from == ChangeSource::AdminApi && source.overlay.is_none() {
            // An admin change (a quota override) to a shared config keeps its bootstrap.
            source.overlay = old.source.overlay.clone();
        }
        if content_hash(&source.text) == old.hash {
            metrics
                .config_reloads
                .with_label_values(&["unchanged"])
                .inc();
            return Ok(Applied::Unchanged {
                version: old.version,
                hash: old.hash.clone(),
            });
        }
        let origin = source.origin.clone();
        let new = match Snapshot::build(
            source,
            old.version + 1,
            &self.endpoint_states,
            &self.plugin_stores,
            &self.discovery,
        ) {
            Ok(s) => Arc::new(s),
            Err(errors) => {
                metrics.config_reloads.with_label_values(&["refused"]).inc();
                log::error!(
                    "config change from {from:?} refused, still serving version {}:\n{errors}",
                    old.version
                );
                *self.last_refusal.lock() = Some(Refusal {
                    at: crate::access_log::rfc3339_millis(SystemTime::now()),
                    source: from,
                    origin,
                    errors: errors.errors.iter().map(|e| e.to_string()).collect(),
                });
                return Err(errors);
            }
        };
        let restart_needed = restart_needed(&old, &new);
        for what in &restart_needed {
            log::warn!(
                "config change to {what} takes effect only after a restart or binary upgrade"
            );
        }
        if let Err(e) = self.plugin_stores.redis.configure(&new.config.redis) {
            log::error!("{e}");
        }
        self.current.store(new.clone());
        self.catch_up_discovery(&new);
        *self.current_source.lock() = from;
        self.endpoint_states.retain_used();
        self.close_orphaned_tunnels(&old, &new);
        crate::metrics::publish_snapshot(&new);
        metrics.config_reloads.with_label_values(&["applied"]).inc();
        log::info!(
            "config version {} ({}) applied from {from:?}",
            new.version,
            new.hash
        );
        Ok(Applied::New {
            version: new.version,
            hash: new.hash.clone(),
            restart_needed,
        })
    }

    /// A tunnel is closed only when its route is gone or its endpoint left the route's
    /// service, and then as that route's policy says. Nothing else closes a tunnel.
    fn close_orphaned_tunnels(&self, old: &Snapshot, new: &Snapshot) {
        let mut drains: Vec<(Duration, Vec<u64>)> = Vec::new();
        for (id, info) in self.tunnels.list() {
            let (orphaned, policy, window) = match new.router.get(&info.route) {
                Some(route) => {
                    let kept = route.service().is_some_and(|s| {
                        s.members()
                            .endpoints
                            .iter()
                            .any(|e| e.addr == info.endpoint)
                    });
                    (!kept, route.on_route_change, route.drain_window)
                }
                None => match old.router.get(&info.route) {
                    Some(route) => (true, route.on_route_change, route.drain_window),
                    None => (true, TunnelPolicy::default(), Duration::from_secs(30)),
                },
            };
            if !orphaned {
                continue;
            }
            match policy {
                TunnelPolicy::Keep => {}
                TunnelPolicy::Close => {
                    self.tunnels.send(id, Command::Close(1001));
                }
                TunnelPolicy::Drain => match drains.iter_mut().find(|(w, _)| *w == window) {
                    Some((_, ids)) => ids.push(id),
                    None => drains.push((window, vec![id])),
                },
            }
        }
        for (window, ids) in drains {
            spread_closes(self.tunnels.clone(), ids, window);
        }
    }
}

/// Closes the tunnels one by one at even intervals over `window`, so their clients come
/// back gradually instead of all at once.
pub fn spread_closes(registry: Arc<tunnel::Registry>, ids: Vec<u64>, window: Duration) {
    if ids.is_empty() {
        return;
    }
    let step = window / ids.len() as u32;
    let task = async move {
        let start = tokio::time::Instant::now();
        for (i, id) in ids.into_iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            registry.send(id, Command::Close(1001));
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map(|rt| rt.block_on(task))
            });
        }
    }
}

/// Sections a running process cannot change: listeners, threads and the admin address.
fn restart_needed(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if old.config.server.needs_restart_for(&new.config.server) {
        out.push("[server]".to_string());
    }
    if old.config.admin.listen != new.config.admin.listen {
        out.push("admin.listen".to_string());
    }
    if old.config.access_log != new.config.access_log {
        out.push("[access_log]".to_string());
    }
    out
}
