//! The Nacos background service: keeps one poller per watched service, the config watch and
//! the self-registration in step with the serving config, and does the blocking first fetch
//! at startup so a gateway serves discovered endpoints from its first request.

use super::client::{Client, Method};
use super::config_source;
use super::register::Registration;
use super::{instances, NacosConfig, ServiceKey};
use crate::config::ConfigSourceKind;
use crate::gateway::Gateway;
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::{HashMap, HashSet};
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
    pollers: HashMap<ServiceKey, JoinHandle<()>>,
    config_watch: Option<JoinHandle<()>>,
    register: Option<(Arc<Registration>, JoinHandle<()>)>,
    register_tried: bool,
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
        self.gateway.discovery().retain(&wanted);

        let source = snapshot.config.config.get_ref();
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
                )));
            }
            (ConfigSourceKind::File, true) => {
                if let Some(task) = tasks.config_watch.take() {
                    task.abort();
                }
            }
            _ => {}
        }

        if !tasks.register_tried {
            tasks.register_tried = true;
            if let Some(register) = &config.register {
                match Registration::new(register, snapshot.config.admin.listen.get_ref()) {
                    Ok(registration) => {
                        let registration = Arc::new(registration);
                        let (r, c) = (registration.clone(), client.clone());
                        let task = tokio::spawn(async move { r.keep_alive(&c).await });
                        tasks.register = Some((registration, task));
                    }
                    // Not retried until the config changes.
                    Err(e) => log::error!("nacos self-registration off: {e}"),
                }
            }
        }
    }
}

/// The registry services the serving snapshot binds to.
fn watched(snapshot: &crate::snapshot::Snapshot) -> HashSet<ServiceKey> {
    snapshot
        .services
        .values()
        .filter_map(|s| s.nacos.clone())
        .collect()
}

/// Asks Nacos once for the instances of `key`.
async fn list_instances(
    client: &Client,
    key: &ServiceKey,
) -> Result<Vec<crate::upstream::EndpointSpec>, String> {
    let answer = client
        .call(
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
            None,
            &[],
        )
        .await?;
    if answer.status != 200 {
        return Err(format!(
            "instance list of {key} answered {}: {}",
            answer.status,
            answer.body.trim()
        ));
    }
    instances::parse(&answer.body)
}

/// Whether the registry knows the service at all. An empty list from a registry that has
/// lost its data (restarted empty, another cluster) must not empty a service; an empty list
/// for a service the registry still has is a real deregistration of every instance.
async fn service_exists(client: &Client, key: &ServiceKey) -> Result<bool, String> {
    let answer = client
        .call(
            Method::Get,
            "/nacos/v1/ns/service",
            &[
                ("serviceName", &key.service),
                ("groupName", &key.group),
                ("namespaceId", &client.namespace),
            ],
            None,
            &[],
        )
        .await?;
    Ok(answer.status == 200)
}

/// One round for one service: ask, judge the answer, and hand a change to the gateway.
async fn poll_once(gateway: &Gateway, client: &Client, key: &ServiceKey) {
    let discovery = gateway.discovery();
    match list_instances(client, key).await {
        Ok(endpoints) => {
            discovery.note_success();
            if endpoints.is_empty() && discovery.has_endpoints(key) {
                match service_exists(client, key).await {
                    Ok(true) => {}
                    Ok(false) => {
                        discovery.keep_last(
                            key,
                            "registry answered no instances and does not know the service; last known kept".into(),
                        );
                        return;
                    }
                    Err(e) => {
                        discovery.keep_last(key, format!("empty answer not confirmed: {e}"));
                        return;
                    }
                }
            }
            gateway.discovered(key, endpoints);
        }
        Err(e) => {
            log::warn!("nacos: {e}");
            discovery.note_error(e.clone());
            discovery.keep_last(key, e);
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
        Ok(c) => c,
        Err(e) => {
            log::error!("nacos: {e}");
            return;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            log::error!("nacos prefetch: {e}");
            return;
        }
    };
    runtime.block_on(async {
        let _ = tokio::time::timeout(deadline, async {
            let source = snapshot.config.config.get_ref().clone();
            if source.source == ConfigSourceKind::Nacos {
                match config_source::fetch(&client, &source).await {
                    Ok(Some(text)) => {
                        config_source::apply_text(gateway, &source, text, false);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::warn!("nacos unreachable at startup ({e}); trying the cached config");
                        if let Some(text) = config_source::load_cached(gateway, &source) {
                            config_source::apply_text(gateway, &source, text, true);
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
