//! The Nacos background service: keeps discovery, the config watch and the self-registration
//! in step with the serving config, and does the blocking first fetch at startup so a
//! gateway serves discovered endpoints from its first request.
//!
//! `protocol = "grpc"`: one gRPC client ([`grpc::Handle`]) told the watched set. `protocol =
//! "http"`: one poller per watched service, the config long poll (or poll, for the v3 client
//! API) and the heartbeat registration.

use super::client::{Client, Method, Request};
use super::register::Registration;
use super::{config_source, failed, grpc, http_v3, instances, take};
use super::{Api, NacosConfig, Naming, Protocol, ServiceKey};
use crate::config::ConfigSourceKind;
use crate::gateway::Gateway;
use crate::upstream::EndpointSpec;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often the runner looks for services that a new config references.
const SYNC: Duration = Duration::from_millis(100);

pub struct NacosRunner {
    pub gateway: Arc<Gateway>,
}

#[derive(Default)]
struct Tasks {
    config: Option<NacosConfig>,
    client: Option<Arc<Client>>,
    /// HTTP: one poller per watched service.
    pollers: HashMap<ServiceKey, JoinHandle<()>>,
    config_watch: Option<JoinHandle<()>>,
    register: Option<(Arc<Registration>, JoinHandle<()>)>,
    register_tried: bool,
    /// gRPC: the client, and who it registers.
    grpc: Option<grpc::Handle>,
    /// The client could not start (a bad server address): not retried until the config changes.
    grpc_refused: bool,
    registration: Option<Arc<Registration>>,
}

impl Tasks {
    fn stop_all(&mut self) {
        for (_, task) in self.pollers.drain() {
            task.abort();
        }
        if let Some(task) = self.config_watch.take() {
            task.abort();
        }
        if let Some((_, task)) = self.register.take() {
            task.abort();
        }
        // Dropping the handle aborts the client; the server forgets the connection's
        // registration with it.
        self.grpc = None;
        self.grpc_refused = false;
        self.registration = None;
        self.register_tried = false;
    }
}

#[async_trait]
impl BackgroundService for NacosRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tasks = Tasks::default();
        let mut ticker = tokio::time::interval(SYNC);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = ticker.tick() => {}
            }
            self.sync(&mut tasks);
        }
        if let Some(handle) = tasks.grpc.take() {
            handle.shutdown().await;
        }
        if let (Some(client), Some((registration, _))) = (&tasks.client, &tasks.register) {
            registration.deregister(client).await;
        }
        tasks.stop_all();
    }
}

impl NacosRunner {
    /// Starts what the serving config needs and stops what it no longer does.
    fn sync(&self, tasks: &mut Tasks) {
        let snapshot = self.gateway.snapshot();
        let config = snapshot.config.nacos.as_ref().map(|c| c.get_ref().clone());
        if config != tasks.config {
            // Another registry (or none): its API is not known yet. Not at the first sync,
            // which takes over from the startup fetch (whose answers said which API).
            if tasks.config.is_some() {
                super::set_api_in_use(None);
            }
            tasks.stop_all();
            tasks.client = config.as_ref().and_then(|c| match Client::new(c) {
                Ok(client) => Some(Arc::new(client)),
                Err(e) => {
                    log::error!("nacos: {e}");
                    None
                }
            });
            tasks.config = config;
        }
        let (Some(client), Some(config)) = (tasks.client.clone(), tasks.config.clone()) else {
            return;
        };
        let wanted: HashSet<ServiceKey> = watched(&snapshot);
        self.gateway.discovery().retain(&wanted);
        let source = snapshot.config.config.get_ref();

        if !tasks.register_tried {
            tasks.register_tried = true;
            if let Some(register) = &config.register {
                match Registration::new(register, snapshot.config.admin.listen.get_ref()) {
                    Ok(registration) => tasks.registration = Some(Arc::new(registration)),
                    // Not retried until the config changes.
                    Err(e) => log::error!("nacos self-registration off: {e}"),
                }
            }
        }

        if config.protocol == Protocol::Grpc {
            let want = grpc::Wanted {
                services: wanted.into_iter().collect(),
                config: (source.source == ConfigSourceKind::Nacos).then(|| source.clone()),
            };
            if let Some(handle) = tasks.grpc.as_ref().filter(|h| !h.is_finished()) {
                handle.want(want);
                return;
            }
            if tasks.grpc_refused {
                return;
            }
            match grpc::Handle::start(
                self.gateway.clone(),
                client,
                &config,
                tasks.registration.clone(),
                want,
            ) {
                Ok(handle) => tasks.grpc = Some(handle),
                Err(e) => {
                    log::error!("nacos: {e}");
                    tasks.grpc = None;
                    tasks.grpc_refused = true;
                }
            }
            return;
        }

        tasks.pollers.retain(|key, task| {
            let keep = wanted.contains(key) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for key in &wanted {
            if !tasks.pollers.contains_key(key) {
                let task = tokio::spawn(poll(
                    self.gateway.clone(),
                    client.clone(),
                    key.clone(),
                    Duration::from_millis(config.poll_interval_ms),
                ));
                tasks.pollers.insert(key.clone(), task);
            }
        }

        let watching = tasks
            .config_watch
            .as_ref()
            .is_some_and(|t| !t.is_finished());
        match (source.source, watching) {
            (ConfigSourceKind::Nacos, false) => {
                tasks.config_watch = Some(tokio::spawn(config_source::watch(
                    self.gateway.clone(),
                    client.clone(),
                    source.clone(),
                    Duration::from_millis(config.poll_interval_ms),
                )));
            }
            (ConfigSourceKind::File, true) => {
                if let Some(task) = tasks.config_watch.take() {
                    task.abort();
                }
            }
            _ => {}
        }

        if tasks.register.is_none() {
            if let Some(registration) = tasks.registration.clone() {
                let (r, c) = (registration.clone(), client.clone());
                let task = tokio::spawn(async move { r.keep_alive(&c).await });
                tasks.register = Some((registration, task));
            }
        }
    }
}

/// The registry services the serving snapshot binds to.
pub(super) fn watched(snapshot: &crate::snapshot::Snapshot) -> HashSet<ServiceKey> {
    snapshot
        .services
        .values()
        .filter_map(|s| s.nacos.clone())
        .collect()
}

/// The registry over HTTP: the v3 client API when the server offers it, v1 otherwise.
struct HttpNaming<'a> {
    client: &'a Client,
}

#[async_trait]
impl<'a> Naming for HttpNaming<'a> {
    async fn list(&self, key: &ServiceKey) -> Result<Vec<EndpointSpec>, String> {
        list_instances(self.client, key).await
    }

    async fn exists(&self, key: &ServiceKey) -> Result<bool, String> {
        service_exists(self.client, key).await
    }
}

/// Said once: the v3 client API lists the DEFAULT cluster only when no cluster is named.
static V3_ALL_CLUSTERS_WARNED: AtomicBool = AtomicBool::new(false);

/// Asks Nacos once for the instances of `key`.
async fn list_instances(client: &Client, key: &ServiceKey) -> Result<Vec<EndpointSpec>, String> {
    let make = |api: Api| match api {
        Api::V3 => Request {
            method: Method::Get,
            path: http_v3::INSTANCE_LIST.to_string(),
            params: http_v3::list_params(client, key),
        },
        _ => Request::new(
            Method::Get,
            "/nacos/v1/ns/instance/list",
            &[
                ("serviceName", &key.service),
                ("groupName", &key.group),
                ("namespaceId", &client.namespace),
                ("clusters", &key.clusters),
                // Unhealthy instances are wanted too: they stay listed with no traffic.
                ("healthyOnly", "false"),
            ],
        ),
    };
    let (api, answer) = client.call_api(&make, None, &[]).await?;
    if api == Api::V3 {
        if key.clusters.is_empty() && !V3_ALL_CLUSTERS_WARNED.swap(true, Ordering::Relaxed) {
            log::warn!(
                "nacos v3 client API: {key} names no cluster, so only the DEFAULT cluster is listed (name the clusters, or use protocol = \"grpc\")"
            );
        }
        return http_v3::parse_instances(&answer, &key.clusters)
            .map_err(|e| format!("instance list of {key}: {e}"));
    }
    if answer.status != 200 {
        return Err(format!(
            "instance list of {key} answered {}: {}",
            answer.status,
            answer.body.trim()
        ));
    }
    instances::parse(&answer.body)
}

/// Whether the registry knows the service at all (see [`take`]).
async fn service_exists(client: &Client, key: &ServiceKey) -> Result<bool, String> {
    let make = |api: Api| match api {
        Api::V3 => Request::new(
            Method::Get,
            http_v3::SERVICE,
            &[
                ("serviceName", &key.service),
                ("groupName", &key.group),
                ("namespaceId", client.namespace_or_public()),
            ],
        ),
        _ => Request::new(
            Method::Get,
            "/nacos/v1/ns/service",
            &[
                ("serviceName", &key.service),
                ("groupName", &key.group),
                ("namespaceId", &client.namespace),
            ],
        ),
    };
    let (api, answer) = client.call_api(&make, None, &[]).await?;
    if api == Api::V3 {
        return http_v3::parse_exists(&answer);
    }
    Ok(answer.status == 200)
}

/// One round for one service: ask, judge the answer, and hand a change to the gateway.
async fn poll_once(gateway: &Gateway, client: &Client, key: &ServiceKey) {
    let naming = HttpNaming { client };
    match naming.list(key).await {
        Ok(endpoints) => {
            take(gateway, &naming, key, endpoints).await;
        }
        Err(e) => {
            log::warn!("nacos: {e}");
            failed(gateway, key, e);
        }
    }
}

async fn poll(gateway: Arc<Gateway>, client: Arc<Client>, key: ServiceKey, every: Duration) {
    loop {
        poll_once(&gateway, &client, &key).await;
        tokio::time::sleep(every).await;
    }
}

/// Before serving: the shared config (from Nacos, else the cache) and one instance list per
/// watched service, all within `deadline`. Whatever does not answer in time is left to the
/// background service.
pub fn prefetch(gateway: &Arc<Gateway>, deadline: Duration) {
    let snapshot = gateway.snapshot();
    let Some(config) = snapshot.config.nacos.as_ref().map(|c| c.get_ref().clone()) else {
        return;
    };
    let client = match Client::new(&config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            log::error!("nacos: {e}");
            return;
        }
    };
    let source = snapshot.config.config.get_ref().clone();
    let shared = (source.source == ConfigSourceKind::Nacos).then_some(source);
    crate::discovery::before_serving("nacos prefetch", async {
        let _ = tokio::time::timeout(deadline, async {
            if config.protocol == Protocol::Grpc {
                let watched_now = |g: &Gateway| -> BTreeSet<ServiceKey> {
                    watched(&g.snapshot()).into_iter().collect()
                };
                grpc::prefetch(
                    gateway.clone(),
                    client.clone(),
                    &config,
                    shared,
                    watched_now,
                )
                .await;
                return;
            }
            if let Some(source) = &shared {
                match config_source::fetch(&client, source).await {
                    Ok(Some(text)) => {
                        config_source::apply_text(gateway, source, text, false);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("nacos unreachable at startup ({e}); trying the cached config");
                        if let Some(text) = config_source::load_cached(gateway, source) {
                            config_source::apply_text(gateway, source, text, true);
                        }
                    }
                }
            }
            let keys = watched(&gateway.snapshot());
            let rounds = keys.iter().map(|key| poll_once(gateway, &client, key));
            futures_util::future::join_all(rounds).await;
        })
        .await;
    });
}
