//! `protocol = "grpc"`: one connection at a time, with failover over `[nacos] servers` and an
//! exponential backoff (100 ms → 5 s) between attempts. On every (re)connect everything is
//! redone: every watched service subscribed (its ServiceInfo applied), this gateway
//! registered (an ephemeral instance bound to the connection), the shared config listened to
//! with the md5 we hold (and queried when it differs). Then:
//!
//! - pushes: NotifySubscriberRequest → endpoints, through the same judgement as a poll
//!   ([`take`]: the empty-list protection); ConfigChangeNotifyRequest → ConfigQueryRequest →
//!   the same apply pipeline as HTTP (`config_source::Follower`);
//! - every `resync_interval_ms`, a full resync (ServiceQueryRequest per service, the config
//!   listen again), because pushes can be lost;
//! - the watched set follows the serving snapshot (the runner sends it within 100 ms of a
//!   change): new services subscribed, dropped ones unsubscribed.
//!
//! A subscription is per service (group, name) and for every cluster: a binding's clusters
//! are filtered here. A ServiceInfo older (`lastRefTime`) than the newest applied for its
//! service is ignored (a push overtaken by a resync answer).

use super::connection::{Connection, Push, RpcError, Server};
use super::messages::{self, ServiceInfo, CONFIG_NOT_FOUND, NO_RIGHT};
use crate::config::nacos::grpc_address;
use crate::config::ConfigSourceConfig;
use crate::gateway::Gateway;
use crate::nacos::client::Client;
use crate::nacos::config_source::{self, Follower};
use crate::nacos::register::Registration;
use crate::nacos::{failed, take, Api, NacosConfig, Naming, ServiceKey};
use crate::upstream::EndpointSpec;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A connection that lasted this long resets the backoff.
const STABLE: Duration = Duration::from_secs(10);
/// A server's ConnectResetRequest on a connection at least this old is followed at once
/// (rebalancing, a server going down gracefully); sooner, the backoff applies (a server
/// that resets every connection it takes must not be asked in a loop).
const RESET_AT_ONCE: Duration = Duration::from_secs(1);
/// Pushes waiting for the session (the reader waits, and acks later, when it is full).
const PUSH_QUEUE: usize = 1024;
/// ServiceListRequest page size, and how many pages an existence check reads at most.
const PAGE: u32 = 500;
const MAX_PAGES: u32 = 200;
/// ConfigQueryRequest attempts (Java answers a config being written with a conflict).
const QUERY_TRIES: u32 = 3;
/// How long a stopping gateway waits for its deregistration.
const STOP_WAIT: Duration = Duration::from_secs(3);

/// What the gateway wants from the registry now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    pub services: BTreeSet<ServiceKey>,
    /// The shared config's data id, when `[config] source = "nacos"`.
    pub config: Option<ConfigSourceConfig>,
}

/// The running gRPC client, as the runner holds it. Dropping it aborts the client (the
/// server then drops the connection's registration and subscriptions).
pub struct Handle {
    wanted: watch::Sender<Wanted>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Handle {
    pub fn start(
        gateway: Arc<Gateway>,
        http: Arc<Client>,
        config: &NacosConfig,
        registration: Option<Arc<Registration>>,
        wanted: Wanted,
    ) -> Result<Handle, String> {
        let (wanted_tx, wanted_rx) = watch::channel(wanted);
        let worker = Worker::new(gateway, http, config, registration, wanted_rx)?;
        let (stop, stop_rx) = oneshot::channel();
        Ok(Handle {
            wanted: wanted_tx,
            stop: Some(stop),
            task: tokio::spawn(worker.run(stop_rx)),
        })
    }

    /// The watched set and config now (a no-op when unchanged).
    pub fn want(&self, wanted: Wanted) {
        self.wanted.send_if_modified(|current| {
            if *current == wanted {
                false
            } else {
                *current = wanted;
                true
            }
        });
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Deregisters (bounded wait), then stops.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(STOP_WAIT, &mut self.task).await;
    }
}

/// The gRPC addresses of `[nacos] servers`, in order.
pub fn servers(config: &NacosConfig) -> Result<Vec<Server>, String> {
    let offset = *config.grpc_port_offset.get_ref();
    config
        .servers
        .iter()
        .enumerate()
        .map(|(index, url)| {
            let (host, port) = grpc_address(url.get_ref().trim_end_matches('/'), offset)?;
            Ok(Server {
                index: Some(index),
                host,
                port,
            })
        })
        .collect()
}

/// Test hooks, from the environment (never set in production):
/// `TIDEGATE_TEST_NACOS_IGNORE_PUSHES=naming|config|all` acks pushes but ignores them (a
/// lost push: only the resync repairs it); `TIDEGATE_TEST_NACOS_RECONNECT_EVERY_MS=N` drops
/// the connection N ms after each connect (reconnect, re-registration, re-subscription).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Hooks {
    ignore_naming: bool,
    ignore_config: bool,
    reconnect_every: Option<Duration>,
}

impl Hooks {
    fn from_env() -> Hooks {
        let ignore = std::env::var("TIDEGATE_TEST_NACOS_IGNORE_PUSHES").unwrap_or_default();
        let hooks = Hooks {
            ignore_naming: matches!(ignore.as_str(), "naming" | "all"),
            ignore_config: matches!(ignore.as_str(), "config" | "all"),
            reconnect_every: std::env::var("TIDEGATE_TEST_NACOS_RECONNECT_EVERY_MS")
                .ok()
                .and_then(|ms| ms.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        };
        if hooks != Hooks::default() {
            log::warn!("nacos gRPC test hooks on: {hooks:?}");
        }
        hooks
    }
}

/// What outlives connections.
struct Worker {
    gateway: Arc<Gateway>,
    http: Arc<Client>,
    servers: Vec<Server>,
    grpc_port_offset: u16,
    /// Naming namespace: "public" for the default one.
    namespace: String,
    /// Config tenant: "" for the default one.
    tenant: String,
    timeout: Duration,
    resync_every: Duration,
    registration: Option<Arc<Registration>>,
    wanted: watch::Receiver<Wanted>,
    /// The shared config seen last, and which data id that was.
    follower: Follower,
    followed: Option<ConfigSourceConfig>,
    hooks: Hooks,
}

enum End {
    /// The gateway stops.
    Stop,
    Down(String),
    /// The server asked for a reconnect (to this server, when it named one).
    Reset(Option<Server>),
}

impl Worker {
    fn new(
        gateway: Arc<Gateway>,
        http: Arc<Client>,
        config: &NacosConfig,
        registration: Option<Arc<Registration>>,
        wanted: watch::Receiver<Wanted>,
    ) -> Result<Worker, String> {
        let servers = servers(config)?;
        if servers.is_empty() {
            return Err("no nacos server configured".into());
        }
        Ok(Worker {
            namespace: http.namespace_or_public().to_string(),
            tenant: http.namespace.clone(),
            gateway,
            http,
            servers,
            grpc_port_offset: *config.grpc_port_offset.get_ref(),
            timeout: Duration::from_millis(config.timeout_ms),
            resync_every: Duration::from_millis(*config.resync_interval_ms.get_ref()),
            registration,
            wanted,
            follower: Follower::default(),
            followed: None,
            hooks: Hooks::from_env(),
        })
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut backoff = BACKOFF_MIN;
        let mut next = 0;
        let mut redirect = None;
        loop {
            let (pushes, pushed) = mpsc::channel(PUSH_QUEUE);
            let opened = tokio::select! {
                _ = &mut stop => return,
                opened = self.connect(next, redirect.take(), pushes) => opened,
            };
            let connection = match opened {
                Ok(connection) => connection,
                Err(e) => {
                    log::warn!("nacos: no gRPC connection ({e}); next attempt in {backoff:?}");
                    self.outage(&e);
                    tokio::select! {
                        _ = &mut stop => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            if let Some(index) = connection.server.index {
                next = index;
            }
            log::info!(
                "nacos: gRPC connection {} to {}",
                connection.id,
                connection.server
            );
            crate::nacos::set_api_in_use(Some(Api::Grpc));
            self.gateway.discovery().note_success();
            let started = Instant::now();
            let mut session = Session::new(connection);
            let mut at_once = false;
            match session.run(&mut self, pushed, &mut stop).await {
                End::Stop => {
                    session.deregister(&self).await;
                    return;
                }
                End::Down(why) => {
                    let e = format!("nacos {}: {why}", session.connection.server);
                    log::warn!("{e}; reconnecting");
                    self.outage(&e);
                    // Failover: the next server first.
                    next = (next + 1) % self.servers.len();
                }
                End::Reset(to) => {
                    redirect = to;
                    at_once = started.elapsed() >= RESET_AT_ONCE;
                }
            }
            drop(session);
            if started.elapsed() >= STABLE {
                backoff = BACKOFF_MIN;
            }
            if at_once {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// A connection to the first server that takes one: `redirect` first, then the servers
    /// from `next` on.
    async fn connect(
        &self,
        next: usize,
        redirect: Option<Server>,
        pushes: mpsc::Sender<Push>,
    ) -> Result<Connection, String> {
        let n = self.servers.len();
        let candidates = redirect
            .into_iter()
            .chain((0..n).map(|k| self.servers[(next + k) % n].clone()));
        let mut errors = Vec::new();
        let requests = &crate::metrics::get().nacos_requests;
        for server in candidates {
            let address = server.to_string();
            match Connection::open(server, &self.namespace, self.timeout, pushes.clone()).await {
                Ok(connection) => {
                    requests.with_label_values(&["ok"]).inc();
                    return Ok(connection);
                }
                Err(e) => errors.push(format!("{address}: {e}")),
            }
        }
        // One failed round over every server, as one failed HTTP call is (the
        // registry-unreachable alert looks at the errors).
        requests.with_label_values(&["error"]).inc();
        Err(errors.join("; "))
    }

    /// No connection: the last known lists stay, marked stale.
    fn outage(&self, error: &str) {
        let keys = self.wanted.borrow().services.clone();
        if keys.is_empty() {
            self.gateway.discovery().note_error(error.to_string());
        }
        for key in &keys {
            failed(&self.gateway, key, error.to_string());
        }
    }

    /// The watched keys of one service.
    fn keys_of(&self, group: &str, service: &str) -> Vec<ServiceKey> {
        self.wanted
            .borrow()
            .services
            .iter()
            .filter(|k| k.group == group && k.service == service)
            .cloned()
            .collect()
    }
}

/// What one connection holds.
struct Session {
    connection: Connection,
    /// Subscribed services (group, name) → `lastRefTime` of the newest ServiceInfo applied.
    subscribed: BTreeMap<(String, String), i64>,
    /// The data id listened to on this connection.
    listening: Option<ConfigSourceConfig>,
    registered: bool,
}

impl Session {
    fn new(connection: Connection) -> Session {
        Session {
            connection,
            subscribed: BTreeMap::new(),
            listening: None,
            registered: false,
        }
    }

    async fn run(
        &mut self,
        w: &mut Worker,
        mut pushes: mpsc::Receiver<Push>,
        stop: &mut oneshot::Receiver<()>,
    ) -> End {
        let wanted = w.wanted.borrow_and_update().clone();
        self.sync_services(w, &wanted.services).await;
        self.register(w).await;
        self.sync_config(w, wanted.config.as_ref()).await;

        let first = tokio::time::Instant::now() + w.resync_every;
        let mut resync = tokio::time::interval_at(first, w.resync_every);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let drop_at = w
            .hooks
            .reconnect_every
            .map(|every| tokio::time::Instant::now() + every);
        loop {
            if let Some(why) = self.connection.down_reason() {
                return End::Down(why);
            }
            tokio::select! {
                _ = &mut *stop => return End::Stop,
                why = self.connection.closed() => return End::Down(why),
                push = pushes.recv() => match push {
                    Some(push) => {
                        if let Some(end) = self.on_push(w, push).await {
                            return end;
                        }
                    }
                    None => return End::Down("the push channel closed".into()),
                },
                changed = w.wanted.changed() => {
                    if changed.is_err() {
                        return End::Stop;
                    }
                    let wanted = w.wanted.borrow_and_update().clone();
                    self.sync_services(w, &wanted.services).await;
                    self.sync_config(w, wanted.config.as_ref()).await;
                }
                _ = resync.tick() => self.resync(w).await,
                () = sleep_until(drop_at) => {
                    self.connection.close("test hook: reconnect".into());
                }
            }
        }
    }

    /// One request with the access token; a refusal for want of rights logs in again and
    /// retries once.
    async fn call(&self, w: &Worker, kind: &str, body: &Value) -> Result<Value, RpcError> {
        let token = login(w, false).await?;
        match self.connection.request(kind, body, token.as_deref()).await {
            Err(RpcError::Refused { code: NO_RIGHT, .. }) if token.is_some() => {
                let token = login(w, true).await?;
                self.connection.request(kind, body, token.as_deref()).await
            }
            other => other,
        }
    }

    /// Subscribes the services of `keys` not subscribed yet (applying their ServiceInfo) and
    /// unsubscribes the others.
    async fn sync_services(&mut self, w: &Worker, keys: &BTreeSet<ServiceKey>) {
        let wanted: BTreeSet<(String, String)> = keys
            .iter()
            .map(|k| (k.group.clone(), k.service.clone()))
            .collect();
        let dropped: Vec<(String, String)> = self
            .subscribed
            .keys()
            .filter(|s| !wanted.contains(*s))
            .cloned()
            .collect();
        for (group, service) in dropped {
            self.subscribed.remove(&(group.clone(), service.clone()));
            let body = messages::subscribe(&w.namespace, &group, &service, false);
            if let Err(e) = self.call(w, "SubscribeServiceRequest", &body).await {
                log::debug!("nacos: unsubscribe {group}@@{service}: {e}");
            }
        }
        let added: Vec<(String, String)> = wanted
            .into_iter()
            .filter(|s| !self.subscribed.contains_key(s))
            .collect();
        if added.is_empty() {
            return;
        }
        let this = &*self;
        let calls = added.iter().map(|(group, service)| async move {
            let body = messages::subscribe(&w.namespace, group, service, true);
            (
                group,
                service,
                this.call(w, "SubscribeServiceRequest", &body).await,
            )
        });
        let answers = futures_util::future::join_all(calls).await;
        for (group, service, answer) in answers {
            match answer {
                Ok(answer) => {
                    self.subscribed.insert((group.clone(), service.clone()), 0);
                    self.apply(w, &answer["serviceInfo"]).await;
                }
                Err(e) => {
                    let e = format!("subscribe {group}@@{service}: {e}");
                    log::warn!("nacos: {e}");
                    for key in w.keys_of(group, service) {
                        failed(&w.gateway, &key, e.clone());
                    }
                }
            }
        }
    }

    /// A ServiceInfo (pushed, or answered) for the bindings of its service. Returns the
    /// bindings whose endpoints it changed.
    async fn apply(&mut self, w: &Worker, info: &Value) -> Vec<ServiceKey> {
        let info = match ServiceInfo::parse(info) {
            Ok(info) => info,
            Err(e) => {
                log::warn!("nacos: {e}");
                return Vec::new();
            }
        };
        let Some((group, service)) = info.group_and_service() else {
            log::warn!("nacos: a service info without a service name");
            return Vec::new();
        };
        // Not (or no longer) watched: a late push.
        let Some(newest) = self.subscribed.get_mut(&(group.clone(), service.clone())) else {
            return Vec::new();
        };
        let built = info.last_ref_time();
        if built > 0 && built < *newest {
            log::debug!("nacos: {group}@@{service}: an older service info ignored");
            return Vec::new();
        }
        *newest = built.max(*newest);
        let naming = GrpcNaming { session: self, w };
        let mut changed = Vec::new();
        for key in w.keys_of(&group, &service) {
            match info.endpoints(&key) {
                Ok(endpoints) => {
                    if take(&w.gateway, &naming, &key, endpoints).await {
                        changed.push(key);
                    }
                }
                Err(e) => {
                    let e = format!("{key}: {e}");
                    log::warn!("nacos: {e}");
                    failed(&w.gateway, &key, e);
                }
            }
        }
        changed
    }

    /// Whether the registry knows the service: ServiceListRequest pages of its group.
    async fn service_exists(&self, w: &Worker, group: &str, service: &str) -> Result<bool, String> {
        for page in 1..=MAX_PAGES {
            let body = messages::service_list(&w.namespace, group, page, PAGE);
            let answer = self
                .call(w, "ServiceListRequest", &body)
                .await
                .map_err(|e| format!("service list: {e}"))?;
            let (found, count) = messages::service_listed(&answer, group, service);
            if found {
                return Ok(true);
            }
            if u64::from(page) * u64::from(PAGE) >= count {
                return Ok(false);
            }
        }
        Err(format!(
            "more than {} services in group {group}",
            MAX_PAGES * PAGE
        ))
    }

    /// ServiceQueryRequest for every subscribed service, answers applied. `resync`: a
    /// change found is one that no push brought (said in the log and a metric).
    async fn query_all(&mut self, w: &Worker, resync: bool) {
        let services: Vec<(String, String)> = self.subscribed.keys().cloned().collect();
        let this = &*self;
        let queries = services.iter().map(|(group, service)| async move {
            let body = messages::service_query(&w.namespace, group, service);
            (
                group,
                service,
                this.call(w, "ServiceQueryRequest", &body).await,
            )
        });
        let answers = futures_util::future::join_all(queries).await;
        for (group, service, answer) in answers {
            match answer {
                Ok(answer) => {
                    let changed = self.apply(w, &answer["serviceInfo"]).await;
                    if resync {
                        for key in changed {
                            log::info!(
                                "nacos: the resync repaired {key}: it had changed without a push"
                            );
                            crate::metrics::get()
                                .nacos_resync_repairs
                                .with_label_values(&["naming"])
                                .inc();
                        }
                    }
                }
                Err(e) => {
                    let e = format!("service query {group}@@{service}: {e}");
                    log::warn!("nacos: {e}");
                    for key in w.keys_of(group, service) {
                        failed(&w.gateway, &key, e.clone());
                    }
                }
            }
        }
    }

    /// The periodic full resync: what pushes may have missed.
    async fn resync(&mut self, w: &mut Worker) {
        let wanted = w.wanted.borrow_and_update().clone();
        self.sync_services(w, &wanted.services).await;
        self.query_all(w, true).await;
        if !self.registered {
            self.register(w).await;
        }
        match wanted.config.as_ref() {
            Some(config) if self.listening.as_ref() == Some(config) => {
                self.listen(w, config, true).await;
            }
            other => self.sync_config(w, other).await,
        }
    }

    async fn register(&mut self, w: &Worker) {
        let Some(registration) = &w.registration else {
            return;
        };
        let body = messages::instance(
            &w.namespace,
            &registration.group,
            &registration.service,
            true,
            registration.instance_json(),
        );
        match self.call(w, "InstanceRequest", &body).await {
            Ok(_) => {
                log::info!(
                    "registered in nacos as {}@@{} {}:{} (gRPC connection {})",
                    registration.group,
                    registration.service,
                    registration.ip,
                    registration.port,
                    self.connection.id
                );
                self.registered = true;
            }
            Err(e) => {
                log::warn!("nacos self-registration: {e}");
                self.registered = false;
            }
        }
    }

    async fn deregister(&self, w: &Worker) {
        let Some(registration) = &w.registration else {
            return;
        };
        if !self.registered {
            return;
        }
        let body = messages::instance(
            &w.namespace,
            &registration.group,
            &registration.service,
            false,
            registration.instance_json(),
        );
        // Closing the connection removes the instance too; this only makes it prompt.
        if let Err(e) = self.call(w, "InstanceRequest", &body).await {
            log::debug!("nacos deregistration: {e}");
        }
    }

    /// Listens to the wanted data id (and no other).
    async fn sync_config(&mut self, w: &mut Worker, wanted: Option<&ConfigSourceConfig>) {
        if self.listening.as_ref() == wanted {
            return;
        }
        if let Some(old) = self.listening.take() {
            let body = messages::config_listen(false, &old.data_id, &old.group, &w.tenant, "");
            if let Err(e) = self.call(w, "ConfigBatchListenRequest", &body).await {
                log::debug!(
                    "nacos: stop listening to {}/{}: {e}",
                    old.group,
                    old.data_id
                );
            }
        }
        let Some(config) = wanted else {
            return;
        };
        if w.followed.as_ref() != Some(config) {
            w.follower.reset();
            w.followed = Some(config.clone());
        }
        self.listen(w, config, false).await;
    }

    /// ConfigBatchListenRequest with the md5 we hold; a query when the server says it differs
    /// (or nothing was seen yet). `resync`: a difference is one no push brought.
    async fn listen(&mut self, w: &mut Worker, config: &ConfigSourceConfig, resync: bool) {
        let body = messages::config_listen(
            true,
            &config.data_id,
            &config.group,
            &w.tenant,
            w.follower.md5(),
        );
        match self.call(w, "ConfigBatchListenRequest", &body).await {
            Ok(answer) => {
                self.listening = Some(config.clone());
                let changed = messages::config_changed(&answer);
                if changed && resync && w.follower.seen_anything() {
                    log::info!(
                        "nacos: the resync repaired config {}/{}: it had changed without a push",
                        config.group,
                        config.data_id
                    );
                    crate::metrics::get()
                        .nacos_resync_repairs
                        .with_label_values(&["config"])
                        .inc();
                }
                if changed || !w.follower.seen_anything() {
                    self.query_config(w, config).await;
                }
            }
            Err(e) => {
                // Not listening: the next resync tries again.
                let e = format!("config listen {}/{}: {e}", config.group, config.data_id);
                log::warn!("nacos {e}");
                w.gateway.discovery().note_error(e);
            }
        }
    }

    /// ConfigQueryRequest, the answer through the apply pipeline. False when no answer came
    /// (the text, or "not found").
    async fn query_config(&self, w: &mut Worker, config: &ConfigSourceConfig) -> bool {
        let body = messages::config_query(&config.data_id, &config.group, &w.tenant);
        let mut last = String::new();
        for attempt in 0..QUERY_TRIES {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            match self.call(w, "ConfigQueryRequest", &body).await {
                Ok(answer) => {
                    let text = answer["content"].as_str().unwrap_or("").to_string();
                    w.follower.take(&w.gateway, config, Some(text));
                    return true;
                }
                Err(RpcError::Refused {
                    code: CONFIG_NOT_FOUND,
                    ..
                }) => {
                    w.follower.take(&w.gateway, config, None);
                    return true;
                }
                Err(e @ RpcError::Down(_)) => {
                    last = e.to_string();
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let e = format!("config query {}/{}: {last}", config.group, config.data_id);
        log::warn!("nacos {e}");
        w.gateway.discovery().note_error(e);
        false
    }

    /// A push, acked already. `Some` ends the session.
    async fn on_push(&mut self, w: &mut Worker, push: Push) -> Option<End> {
        match push {
            Push::Service(info) => {
                if w.hooks.ignore_naming {
                    log::info!("nacos: naming push ignored (test hook)");
                } else {
                    self.apply(w, &info).await;
                }
            }
            Push::ConfigChanged { data_id, group } => {
                let config = self.listening.clone()?;
                if w.hooks.ignore_config {
                    log::info!("nacos: config push ignored (test hook)");
                } else if config.data_id == data_id && config.group == group {
                    self.query_config(w, &config).await;
                }
            }
            Push::Reset { host, port } => {
                let to = host.map(|host| {
                    // The server names its HTTP port, as in `[nacos] servers`.
                    let port = port
                        .and_then(|p| p.checked_add(w.grpc_port_offset))
                        .unwrap_or(self.connection.server.port);
                    w.servers
                        .iter()
                        .find(|s| s.host == host && s.port == port)
                        .cloned()
                        .unwrap_or(Server {
                            index: None,
                            host,
                            port,
                        })
                });
                log::info!(
                    "nacos: {} asked for a reconnect{}",
                    self.connection.server,
                    to.as_ref().map(|s| format!(" to {s}")).unwrap_or_default()
                );
                return Some(End::Reset(to));
            }
        }
        None
    }
}

/// The access token for a call (`None` without credentials). A failed login is a failed
/// call (counted as one, as over HTTP: the registry-unreachable alert looks at the errors).
async fn login(w: &Worker, renew: bool) -> Result<Option<String>, RpcError> {
    w.http.access_token(renew).await.map_err(|e| {
        crate::metrics::get()
            .nacos_requests
            .with_label_values(&["error"])
            .inc();
        RpcError::Login(e)
    })
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The registry as [`take`] asks it, over this connection.
struct GrpcNaming<'a> {
    session: &'a Session,
    w: &'a Worker,
}

#[async_trait::async_trait]
impl<'a> Naming for GrpcNaming<'a> {
    async fn list(&self, key: &ServiceKey) -> Result<Vec<EndpointSpec>, String> {
        let body = messages::service_query(&self.w.namespace, &key.group, &key.service);
        let answer = self
            .session
            .call(self.w, "ServiceQueryRequest", &body)
            .await
            .map_err(|e| format!("service query {key}: {e}"))?;
        ServiceInfo::parse(&answer["serviceInfo"])?.endpoints(key)
    }

    async fn exists(&self, key: &ServiceKey) -> Result<bool, String> {
        self.session
            .service_exists(self.w, &key.group, &key.service)
            .await
    }
}

/// Before serving: the shared config (from Nacos, else the cache) and one ServiceQuery per
/// watched service, over a connection of its own (the prefetch has a runtime of its own,
/// which ends with it). `watched` gives the services the snapshot binds once the shared
/// config is applied.
pub async fn prefetch(
    gateway: Arc<Gateway>,
    http: Arc<Client>,
    config: &NacosConfig,
    source: Option<ConfigSourceConfig>,
    watched: impl Fn(&Gateway) -> BTreeSet<ServiceKey>,
) {
    let (wanted, wanted_rx) = watch::channel(Wanted {
        services: watched(&gateway),
        config: source.clone(),
    });
    let mut worker = match Worker::new(gateway.clone(), http, config, None, wanted_rx) {
        Ok(worker) => worker,
        Err(e) => {
            log::error!("nacos: {e}");
            return;
        }
    };
    // Nobody takes pushes: they are dropped.
    let (pushes, _) = mpsc::channel(1);
    let connection = match worker.connect(0, None, pushes).await {
        Ok(connection) => connection,
        Err(e) => {
            log::warn!("nacos unreachable at startup ({e}); trying the cached config");
            if let Some(source) = &source {
                cached_config(&gateway, source);
            }
            return;
        }
    };
    crate::nacos::set_api_in_use(Some(Api::Grpc));
    let mut session = Session::new(connection);
    if let Some(source) = &source {
        if !session.query_config(&mut worker, source).await {
            cached_config(&gateway, source);
        }
    }
    // The shared config may bind other services.
    let services = watched(&gateway);
    session.subscribed = services
        .iter()
        .map(|k| ((k.group.clone(), k.service.clone()), 0))
        .collect();
    wanted.send_replace(Wanted {
        services,
        config: source,
    });
    session.query_all(&worker, false).await;
}

fn cached_config(gateway: &Gateway, source: &ConfigSourceConfig) {
    if let Some(text) = config_source::load_cached(gateway, source) {
        config_source::apply_text(gateway, source, text, true);
    }
}
