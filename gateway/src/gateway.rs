//! The process-wide state: the current snapshot and everything that outlives snapshots
//! (endpoint state, discovered endpoints, plugin stores, open tunnels, the access log), and
//! the one pipeline every config change goes through, whatever its source.

use crate::access_log::AccessLog;
use crate::config::{ConfigError, ConfigErrors, Source};
use crate::discovery::Discovery;
use crate::readiness::Readiness;
use crate::snapshot::{content_hash, Lasting, Snapshot};
use crate::tunnel;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

/// Where a config change came from, as shown in the status endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    Startup,
    File,
    Signal,
    AdminApi,
    Nacos,
    /// The config Secret, followed through the Kubernetes API server.
    Kubernetes,
    /// A certificate, key, OCSP response or client CA file changed on disk (a renewal): the
    /// serving text is compiled again.
    Certificates,
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
    lasting: Lasting,
    tunnels: Arc<tunnel::Registry>,
    readiness: Readiness,
    access_log: AccessLog,
    /// One change at a time, so versions are applied in order.
    apply_lock: Mutex<()>,
    last_refusal: Mutex<Option<Refusal>>,
    /// The config file, when the config came from one (see `config_watch::persist`).
    config_path: OnceLock<std::path::PathBuf>,
}

impl Gateway {
    /// Builds the first snapshot; the process refuses to start on a bad config.
    pub fn start(source: Source) -> Result<Arc<Gateway>, ConfigErrors> {
        let lasting = Lasting::default();
        let snapshot = Snapshot::build(source, 1, &lasting)?;
        lasting
            .discovery
            .configure(snapshot.config.nacos.as_ref().map(toml::Spanned::get_ref));
        lasting.discovery.kubernetes.configure(
            snapshot
                .config
                .kubernetes
                .as_ref()
                .map(toml::Spanned::get_ref),
        );
        if let Err(e) = lasting.plugins.redis.configure(&snapshot.config.redis) {
            log::error!("{e}");
        }
        let access_log = AccessLog::start(&snapshot.config.access_log).map_err(|e| {
            ConfigErrors::single(
                snapshot.source.origin.clone(),
                ConfigError::whole(format!("cannot open access log: {e}")),
            )
        })?;
        let gateway = Gateway {
            current: ArcSwap::from_pointee(snapshot),
            current_source: Mutex::new(ChangeSource::Startup),
            lasting,
            tunnels: Arc::default(),
            readiness: Readiness::default(),
            access_log,
            apply_lock: Mutex::new(()),
            last_refusal: Mutex::new(None),
            config_path: OnceLock::new(),
        };
        gateway.published(&gateway.snapshot());
        Ok(Arc::new(gateway))
    }

    /// The snapshot to use for one request: one atomic load.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    pub fn current_source(&self) -> ChangeSource {
        *self.current_source.lock()
    }

    pub fn lasting(&self) -> &Lasting {
        &self.lasting
    }

    pub fn discovery(&self) -> &Discovery {
        &self.lasting.discovery
    }

    pub fn tunnels(&self) -> &Arc<tunnel::Registry> {
        &self.tunnels
    }

    pub fn access_log(&self) -> &AccessLog {
        &self.access_log
    }

    pub fn set_config_path(&self, path: std::path::PathBuf) {
        let _ = self.config_path.set(path);
    }

    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.get().map(std::path::PathBuf::as_path)
    }

    /// Whether this host should get traffic, and whether connections are let go.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub fn last_refusal(&self) -> Option<Refusal> {
        self.last_refusal.lock().clone()
    }

    /// A registry answer for `key`, pushed into the serving snapshot's services in place.
    /// Returns whether it changed anything.
    pub fn discovered(
        &self,
        key: &crate::config::ServiceKey,
        endpoints: Vec<crate::upstream::EndpointSpec>,
    ) -> bool {
        let snapshot = self.current.load_full();
        let states = &self.lasting.endpoints;
        let changed = self
            .discovery()
            .push(key, endpoints, snapshot.services.values(), states);
        if changed {
            snapshot.publish_endpoint_states();
            // An instance that left (deregistered before its deploy) has its tunnels closed
            // as their route says — drained over the window rather than cut all at once when
            // the instance stops. An unhealthy or disabled one is kept at weight 0 (no
            // drain on a flap), and an empty answer is confirmed before it gets here.
            tunnel::close_departed(&self.tunnels, &snapshot);
        }
        changed
    }

    /// The endpoints of a Kubernetes Service port as the watches see them, pushed into the
    /// serving snapshot's services in place. Tunnels to an endpoint that left (a pod that
    /// is terminating or gone) are closed as their route's `on_route_change` says, as a
    /// reload would. Returns whether it changed anything.
    pub fn kubernetes_discovered(
        &self,
        key: &crate::config::KubeKey,
        endpoints: Vec<crate::upstream::EndpointSpec>,
    ) -> bool {
        let snapshot = self.current.load_full();
        let states = &self.lasting.endpoints;
        let changed =
            self.discovery()
                .kubernetes
                .push(key, endpoints, snapshot.services.values(), states);
        if changed {
            snapshot.publish_endpoint_states();
            tunnel::close_departed(&self.tunnels, &snapshot);
        }
        changed
    }

    /// A good answer for the endpoint DNS name `name`, pushed into the serving snapshot's
    /// services in place; asked again at `next_at`. Returns whether it changed anything.
    pub fn resolved(
        &self,
        name: &str,
        addresses: Vec<std::net::IpAddr>,
        next_at: std::time::Instant,
    ) -> bool {
        let snapshot = self.current.load();
        let states = &self.lasting.endpoints;
        let changed =
            self.discovery()
                .dns
                .push(name, addresses, next_at, snapshot.services.values(), states);
        if changed {
            snapshot.publish_endpoint_states();
        }
        changed
    }

    /// The one way a config change gets in: build a complete snapshot beside the serving
    /// one, then swap. A refused change leaves the serving snapshot untouched.
    pub fn apply(&self, mut source: Source, from: ChangeSource) -> Result<Applied, ConfigErrors> {
        let _one_at_a_time = self.apply_lock.lock();
        let reloads = &crate::metrics::get().config_reloads;
        let old = self.current.load_full();
        if from == ChangeSource::AdminApi && source.overlay.is_none() {
            // An admin change (a quota override) to a shared config keeps its bootstrap.
            source.overlay.clone_from(&old.source.overlay);
        }
        if content_hash(&source.text) == old.hash && from != ChangeSource::Certificates {
            reloads.with_label_values(&["unchanged"]).inc();
            return Ok(Applied::Unchanged {
                version: old.version,
                hash: old.hash.clone(),
            });
        }
        let origin = source.origin.clone();
        let new = match Snapshot::build(source, old.version + 1, &self.lasting) {
            Ok(s) => Arc::new(s),
            Err(errors) => {
                reloads.with_label_values(&["refused"]).inc();
                log::error!(
                    "config change from {from:?} refused, still serving version {}:\n{errors}",
                    old.version
                );
                *self.last_refusal.lock() = Some(Refusal {
                    at: crate::time::rfc3339_millis(SystemTime::now()),
                    source: from,
                    origin,
                    errors: errors.errors.iter().map(ToString::to_string).collect(),
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
        if let Err(e) = self.lasting.plugins.redis.configure(&new.config.redis) {
            log::error!("{e}");
        }
        self.current.store(new.clone());
        self.lasting.discovery.catch_up(
            new.config.nacos.as_ref().map(toml::Spanned::get_ref),
            new.services.values(),
            &self.lasting.endpoints,
        );
        self.lasting
            .discovery
            .dns
            .catch_up(new.services.values(), &self.lasting.endpoints);
        self.lasting.discovery.kubernetes.catch_up(
            new.config.kubernetes.as_ref().map(toml::Spanned::get_ref),
            new.services.values(),
            &self.lasting.endpoints,
        );
        *self.current_source.lock() = from;
        self.lasting.endpoints.retain_used();
        tunnel::close_orphaned(&self.tunnels, &old, &new);
        self.published(&new);
        reloads.with_label_values(&["applied"]).inc();
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

    /// Metrics of a snapshot that now serves, every series it can produce declared at zero.
    fn published(&self, snapshot: &Snapshot) {
        snapshot.publish_metrics();
        tunnel::declare_metrics(snapshot);
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
