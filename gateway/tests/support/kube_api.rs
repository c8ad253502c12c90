//! A stand-in for the Kubernetes API server on 127.0.0.1 (no kube-apiserver is installable
//! here): the part of its HTTP protocol that list+watch clients use, for EndpointSlices and
//! pods (full objects, and the metadata-only form clients ask for with
//! `Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`).
//!
//! What it speaks, as the API server does: lists with `metadata.resourceVersion`
//! (`labelSelector` equality terms, `limit` ignored: one page); `watch=true` from a
//! `resourceVersion` as a chunked stream of `{"type","object"}` lines — ADDED / MODIFIED /
//! DELETED replayed from its history after that version, then live, with BOOKMARK events
//! when asked (`allowWatchBookmarks`); a version older than the history's start (after
//! [`KubeApi::compact`]) answers an ERROR event with a 410 Expired Status, which makes a
//! client relist. [`KubeApi::down`] drops the listener and every connection (an outage);
//! [`KubeApi::up`] serves again on the same port, with the same objects.

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Kind {
    EndpointSlice,
    Pod,
    Service,
    Ingress,
    IngressClass,
    ConfigMap,
    Lease,
    Event,
    GatewayClass,
    Gateway,
    HTTPRoute,
    GRPCRoute,
    ReferenceGrant,
    Secret,
    /// `events.k8s.io/v1` Events (what controllers publish; `Event` is the core/v1 kind).
    EventV1,
}

/// Each kind as the API serves it: `(kind, apiVersion, path prefix, plural, namespaced)`.
const KINDS: [(Kind, &str, &str, &str, &str, bool); 15] = [
    (
        Kind::EndpointSlice,
        "EndpointSlice",
        "discovery.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "endpointslices",
        true,
    ),
    (Kind::Pod, "Pod", "v1", "api/v1", "pods", true),
    (Kind::Service, "Service", "v1", "api/v1", "services", true),
    (
        Kind::Ingress,
        "Ingress",
        "networking.k8s.io/v1",
        "apis/networking.k8s.io/v1",
        "ingresses",
        true,
    ),
    (
        Kind::IngressClass,
        "IngressClass",
        "networking.k8s.io/v1",
        "apis/networking.k8s.io/v1",
        "ingressclasses",
        false,
    ),
    (
        Kind::ConfigMap,
        "ConfigMap",
        "v1",
        "api/v1",
        "configmaps",
        true,
    ),
    (
        Kind::Lease,
        "Lease",
        "coordination.k8s.io/v1",
        "apis/coordination.k8s.io/v1",
        "leases",
        true,
    ),
    (Kind::Event, "Event", "v1", "api/v1", "events", true),
    (Kind::Secret, "Secret", "v1", "api/v1", "secrets", true),
    (
        Kind::EventV1,
        "Event",
        "events.k8s.io/v1",
        "apis/events.k8s.io/v1",
        "events",
        true,
    ),
    (
        Kind::GatewayClass,
        "GatewayClass",
        GATEWAY_API,
        "apis/gateway.networking.k8s.io/v1",
        "gatewayclasses",
        false,
    ),
    (
        Kind::Gateway,
        "Gateway",
        GATEWAY_API,
        "apis/gateway.networking.k8s.io/v1",
        "gateways",
        true,
    ),
    (
        Kind::HTTPRoute,
        "HTTPRoute",
        GATEWAY_API,
        "apis/gateway.networking.k8s.io/v1",
        "httproutes",
        true,
    ),
    (
        Kind::GRPCRoute,
        "GRPCRoute",
        GATEWAY_API,
        "apis/gateway.networking.k8s.io/v1",
        "grpcroutes",
        true,
    ),
    // Served as v1beta1, as by the Gateway API's CRDs before ReferenceGrant reached v1.
    (
        Kind::ReferenceGrant,
        "ReferenceGrant",
        "gateway.networking.k8s.io/v1beta1",
        "apis/gateway.networking.k8s.io/v1beta1",
        "referencegrants",
        true,
    ),
];

const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

impl Kind {
    fn row(
        self,
    ) -> &'static (
        Kind,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        bool,
    ) {
        KINDS.iter().find(|r| r.0 == self).unwrap()
    }
    fn api_version(self) -> &'static str {
        self.row().2
    }
    fn name(self) -> &'static str {
        self.row().1
    }
    fn namespaced(self) -> bool {
        self.row().5
    }
}

#[derive(Clone)]
struct Event {
    version: u64,
    kind: Kind,
    namespace: String,
    r#type: &'static str,
    object: Value,
}

#[derive(Default)]
struct State {
    version: u64,
    objects: BTreeMap<(Kind, String, String), Value>,
    history: Vec<Event>,
    /// Watches from before this version get 410 Gone.
    oldest: u64,
    /// Requests seen, as `METHOD path?query`, for assertions.
    requests: Vec<String>,
    /// Watches answered 410 Gone.
    gone: usize,
    /// Whether the Gateway API's CRDs are "installed" (its group is served).
    gateway_api: bool,
}

pub struct KubeApi {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl KubeApi {
    pub async fn start() -> KubeApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let api = KubeApi {
            addr,
            state: Arc::default(),
            events: broadcast::channel(1024).0,
            server: Mutex::new(None),
        };
        api.serve(listener);
        api
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&self, listener: TcpListener) {
        let (state, events) = (self.state.clone(), self.events.clone());
        let task = tokio::spawn(async move {
            // Dropped with this task: an outage ends every connection with it.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                connections.spawn(connection(stream, state.clone(), events.clone()));
            }
        });
        *self.server.lock() = Some(task);
    }

    /// An outage: the port closes and every open request and watch is cut.
    pub fn down(&self) {
        if let Some(task) = self.server.lock().take() {
            task.abort();
        }
    }

    /// Back on the same port.
    pub async fn up(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    /// Forgets the history: a watch from an older version gets 410 Gone and must relist.
    pub fn compact(&self) {
        let mut state = self.state.lock();
        state.oldest = state.version + 1;
        state.history.clear();
    }

    /// Serves the Gateway API's group (its CRDs installed) or not (404, as a cluster
    /// without them). Off at start.
    pub fn set_gateway_api(&self, installed: bool) {
        self.state.lock().gateway_api = installed;
    }

    /// How many watches were answered 410 Gone.
    pub fn gone_answers(&self) -> usize {
        self.state.lock().gone
    }

    /// How many requests matched `needle` (in `METHOD path?query`).
    pub fn requests_matching(&self, needle: &str) -> usize {
        self.state
            .lock()
            .requests
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }

    /// Creates or replaces the EndpointSlice `name` of `service`: `endpoints` are
    /// `(ip, pod, ready, terminating)`, on one port `port_name` = `port`.
    pub fn put_slice(
        &self,
        namespace: &str,
        name: &str,
        service: &str,
        port: (&str, u16),
        endpoints: &[(&str, &str, bool, bool)],
    ) {
        let endpoints: Vec<Value> = endpoints
            .iter()
            .map(|(ip, pod, ready, terminating)| {
                json!({
                    "addresses": [ip],
                    "conditions": {"ready": ready, "serving": *ready || *terminating, "terminating": terminating},
                    "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
                })
            })
            .collect();
        self.put(
            Kind::EndpointSlice,
            namespace,
            json!({
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {"kubernetes.io/service-name": service}},
                "addressType": "IPv4",
                "ports": [{"name": port.0, "port": port.1, "protocol": "TCP"}],
                "endpoints": endpoints,
            }),
        );
    }

    /// One ready pod `SERVICE-1` (labelled `app: SERVICE`) behind the Service `service`, on
    /// 127.0.0.1 at `port` named `port_name`: the set-up most tests start from.
    pub fn serve_pod(&self, namespace: &str, service: &str, port_name: &str, port: u16) {
        let pod = format!("{service}-1");
        self.put_pod(namespace, &pod, json!({ "app": service }));
        self.put_slice(
            namespace,
            &format!("{service}-abc"),
            service,
            (port_name, port),
            &[("127.0.0.1", &pod, true, false)],
        );
    }

    pub fn put_pod(&self, namespace: &str, name: &str, labels: Value) {
        self.put(
            Kind::Pod,
            namespace,
            json!({
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {"containers": [{"name": "app", "image": "example/app"}]},
            }),
        );
    }

    pub fn delete(&self, kind: Kind, namespace: &str, name: &str) {
        remove(&self.state, &self.events, kind, namespace, name);
    }

    /// Creates or replaces an object of any kind (`namespace` "" for cluster-scoped ones).
    pub fn put(&self, kind: Kind, namespace: &str, object: Value) {
        store(
            &self.state,
            &self.events,
            kind,
            namespace,
            object,
            Write::Upsert,
        )
        .unwrap();
    }

    /// The stored object, with its resourceVersion.
    /// Every stored object of `kind` in `namespace`.
    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Value> {
        self.state
            .lock()
            .objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && ns == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        self.state
            .lock()
            .objects
            .get(&(kind, namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// How a write treats an object that exists: as the API's POST (409), PUT (404 when missing,
/// 409 when the resourceVersion it read is not the stored one), or a test's set-up.
#[derive(PartialEq)]
enum Write {
    Create,
    Replace,
    Upsert,
}

fn store(
    state: &Mutex<State>,
    events: &broadcast::Sender<Event>,
    kind: Kind,
    namespace: &str,
    mut object: Value,
    write: Write,
) -> Result<Value, (u16, String)> {
    let mut state = state.lock();
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return Err((422, "metadata.name is required".into()));
    }
    let key = (kind, namespace.to_string(), name.clone());
    let existing = state.objects.get(&key);
    match (&write, existing) {
        (Write::Create, Some(_)) => {
            return Err((409, format!("{} {name:?} already exists", kind.name())))
        }
        (Write::Replace, None) => return Err((404, format!("{} {name:?} not found", kind.name()))),
        (Write::Replace, Some(old)) => {
            let sent = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if !sent.is_empty()
                && sent
                    != old["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
            {
                return Err((
                    409,
                    format!("the object has been modified; {sent} is not the latest"),
                ));
            }
        }
        _ => {}
    }
    let r#type = if existing.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    state.version += 1;
    object["apiVersion"] = json!(kind.api_version());
    object["kind"] = json!(kind.name());
    if kind.namespaced() {
        object["metadata"]["namespace"] = json!(namespace);
    }
    object["metadata"]["resourceVersion"] = json!(state.version.to_string());
    state.objects.insert(key, object.clone());
    record(&mut state, events, kind, namespace, r#type, object.clone());
    Ok(object)
}

fn remove(
    state: &Mutex<State>,
    events: &broadcast::Sender<Event>,
    kind: Kind,
    namespace: &str,
    name: &str,
) {
    let mut state = state.lock();
    let Some(mut object) = state
        .objects
        .remove(&(kind, namespace.to_string(), name.to_string()))
    else {
        return;
    };
    state.version += 1;
    object["metadata"]["resourceVersion"] = json!(state.version.to_string());
    record(&mut state, events, kind, namespace, "DELETED", object);
}

fn record(
    state: &mut State,
    events: &broadcast::Sender<Event>,
    kind: Kind,
    namespace: &str,
    r#type: &'static str,
    object: Value,
) {
    let event = Event {
        version: state.version,
        kind,
        namespace: namespace.to_string(),
        r#type,
        object,
    };
    state.history.push(event.clone());
    let _ = events.send(event);
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.down();
    }
}

/// What a request asks for.
struct Query {
    kind: Kind,
    /// A `/status` subresource request (PUT writes the status only).
    status: bool,
    /// None: every namespace (or a cluster-scoped kind).
    namespace: Option<String>,
    /// One object (GET, PUT), not a list.
    name: Option<String>,
    metadata_only: bool,
    watch: bool,
    from: Option<u64>,
    bookmarks: bool,
    selector: Vec<(String, String)>,
    /// `fieldSelector` equality terms (`type=…`, `metadata.name=…`).
    fields: Vec<(String, String)>,
}

fn parse(target: &str, accept: &str) -> Option<Query> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.trim_matches('/');
    let (path, status) = match path.strip_suffix("/status") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let (kind, namespace, name) = KINDS.iter().find_map(|(kind, _, _, prefix, plural, _)| {
        let rest = path.strip_prefix(prefix)?.trim_start_matches('/');
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["namespaces", ns, p] if p == plural => Some((*kind, Some(ns.to_string()), None)),
            ["namespaces", ns, p, name] if p == plural => {
                Some((*kind, Some(ns.to_string()), Some(name.to_string())))
            }
            [p] if p == plural => Some((*kind, None, None)),
            [p, name] if p == plural => Some((*kind, None, Some(name.to_string()))),
            _ => None,
        }
    })?;
    let mut q = Query {
        kind,
        status,
        namespace,
        name,
        metadata_only: accept.contains("as=PartialObjectMetadata"),
        watch: false,
        from: None,
        bookmarks: false,
        selector: Vec::new(),
        fields: Vec::new(),
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "watch" => q.watch = v == "true" || v == "1",
            "resourceVersion" if !v.is_empty() => q.from = v.parse().ok(),
            "allowWatchBookmarks" => q.bookmarks = v == "true",
            "fieldSelector" => {
                for term in v.split(',').filter(|t| !t.is_empty()) {
                    let (key, value) = term.split_once('=')?;
                    q.fields
                        .push((key.to_string(), value.trim_start_matches('=').to_string()));
                }
            }
            "labelSelector" => {
                for term in v.split(',').filter(|t| !t.is_empty()) {
                    let (key, value) = term.split_once('=')?;
                    q.selector
                        .push((key.to_string(), value.trim_start_matches('=').to_string()));
                }
            }
            _ => {}
        }
    }
    Some(q)
}

impl Query {
    fn matches(&self, kind: Kind, namespace: &str, object: &Value) -> bool {
        kind == self.kind
            && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self
                .selector
                .iter()
                .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v.as_str()))
            && self.fields.iter().all(|(path, v)| {
                let field = path.split('.').fold(object, |o, part| &o[part]);
                field.as_str() == Some(v.as_str())
            })
    }

    /// The object as this request gets it: whole, or as PartialObjectMetadata.
    fn shape(&self, object: &Value) -> Value {
        if self.metadata_only {
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                   "metadata": object["metadata"]})
        } else {
            object.clone()
        }
    }
}

async fn connection(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Event>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default().to_string();
        let header = |name: &str| {
            head.split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default()
        };
        let accept = header("accept");
        let body_len: usize = header("content-length").parse().unwrap_or(0);
        while buf.len() < body_len {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..body_len).collect();
        let mut words = request_line.split(' ');
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        state.lock().requests.push(format!("{method} {target}"));
        let status = |code: u16, reason: &str, message: String| {
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "reason": reason, "code": code, "message": message})
        };
        let gateway_api = state.lock().gateway_api;
        let group_version = target
            .split('?')
            .next()
            .and_then(|p| p.strip_prefix("/apis/"))
            .filter(|gv| gv.starts_with("gateway.networking.k8s.io/") && !gv[26..].contains('/'));
        if let (Some(group_version), "GET") = (group_version, method) {
            let (code, body) = if gateway_api {
                let resources: Vec<Value> = KINDS
                    .iter()
                    .filter(|r| r.2 == group_version)
                    .map(|r| {
                        json!({"name": r.4, "kind": r.1, "namespaced": r.5, "singularName": "",
                                    "verbs": ["get", "list", "watch", "create", "update"]})
                    })
                    .collect();
                (
                    200,
                    json!({"kind": "APIResourceList", "apiVersion": "v1",
                             "groupVersion": group_version, "resources": resources}),
                )
            } else {
                (
                    404,
                    status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource".into(),
                    ),
                )
            };
            if respond(&mut stream, code, &body).await.is_err() {
                return;
            }
            continue;
        }
        let parsed = parse(target, &accept)
            .filter(|q| gateway_api || !q.kind.api_version().starts_with("gateway."));
        let Some(query) = parsed else {
            let body = status(
                404,
                "NotFound",
                format!("the stand-in does not serve {target}"),
            );
            if respond(&mut stream, 404, &body).await.is_err() {
                return;
            }
            continue;
        };
        let namespace = query.namespace.clone().unwrap_or_default();
        let answer = match (method, &query.name) {
            ("GET", Some(name)) => {
                let found = state
                    .lock()
                    .objects
                    .get(&(query.kind, namespace.clone(), name.clone()))
                    .cloned();
                Some(found.map_or_else(
                    || {
                        (
                            404,
                            status(
                                404,
                                "NotFound",
                                format!("{} {name:?} not found", query.kind.name()),
                            ),
                        )
                    },
                    |o| (200, o),
                ))
            }
            ("PUT", Some(name)) if query.status => {
                // The status subresource: the stored object with the sent status.
                let current = state
                    .lock()
                    .objects
                    .get(&(query.kind, namespace.clone(), name.clone()))
                    .cloned();
                let answer = match (current, serde_json::from_slice::<Value>(&body)) {
                    (Some(mut object), Ok(sent)) => {
                        object["status"] = sent["status"].clone();
                        object["metadata"]["resourceVersion"] =
                            sent["metadata"]["resourceVersion"].clone();
                        store(
                            &state,
                            &events,
                            query.kind,
                            &namespace,
                            object,
                            Write::Replace,
                        )
                    }
                    (None, _) => Err((404, format!("{name:?} not found"))),
                    (_, Err(e)) => Err((400, e.to_string())),
                };
                Some(match answer {
                    Ok(object) => (200, object),
                    Err((code, message)) => (
                        code,
                        status(
                            code,
                            if code == 409 { "Conflict" } else { "Invalid" },
                            message,
                        ),
                    ),
                })
            }
            ("POST" | "PUT", _) => {
                let write = if method == "POST" {
                    Write::Create
                } else {
                    Write::Replace
                };
                let answer = serde_json::from_slice::<Value>(&body)
                    .map_err(|e| (400, e.to_string()))
                    .and_then(|object| {
                        store(&state, &events, query.kind, &namespace, object, write)
                    });
                Some(match answer {
                    Ok(object) => (if method == "POST" { 201 } else { 200 }, object),
                    Err((code, message)) => {
                        let reason = match code {
                            409 => {
                                if method == "POST" {
                                    "AlreadyExists"
                                } else {
                                    "Conflict"
                                }
                            }
                            404 => "NotFound",
                            _ => "Invalid",
                        };
                        (code, status(code, reason, message))
                    }
                })
            }
            ("GET", None) => None,
            _ => Some((
                405,
                status(405, "MethodNotAllowed", format!("{method} {target}")),
            )),
        };
        if let Some((code, body)) = answer {
            if respond(&mut stream, code, &body).await.is_err() {
                return;
            }
            continue;
        }
        if query.watch {
            watch(stream, query, state, events.subscribe()).await;
            return;
        }
        let (version, items) = {
            let state = state.lock();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((kind, ns, _), o)| query.matches(*kind, ns, o))
                .map(|(_, o)| query.shape(o))
                .collect();
            (state.version, items)
        };
        let list_kind = if query.metadata_only {
            ("PartialObjectMetadataList".to_string(), "meta.k8s.io/v1")
        } else {
            (
                format!("{}List", query.kind.name()),
                query.kind.api_version(),
            )
        };
        let body = json!({"kind": list_kind.0, "apiVersion": list_kind.1,
                          "metadata": {"resourceVersion": version.to_string()}, "items": items});
        if respond(&mut stream, 200, &body).await.is_err() {
            return;
        }
    }
}

async fn respond(stream: &mut TcpStream, status: u16, body: &Value) -> std::io::Result<()> {
    let body = body.to_string();
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}

async fn chunk(stream: &mut TcpStream, line: &Value) -> std::io::Result<()> {
    let text = format!("{line}\n");
    stream
        .write_all(format!("{:x}\r\n{text}\r\n", text.len()).as_bytes())
        .await
}

/// A watch: replays what happened after `from`, then follows live, until the client goes.
async fn watch(
    mut stream: TcpStream,
    query: Query,
    state: Arc<Mutex<State>>,
    mut live: broadcast::Receiver<Event>,
) {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let from = query.from.unwrap_or(0);
    let gone_or_replay = {
        let mut state = state.lock();
        if from + 1 < state.oldest {
            state.gone += 1;
            None
        } else {
            let replay: Vec<Event> = state
                .history
                .iter()
                .filter(|e| e.version > from)
                .cloned()
                .collect();
            Some((replay, state.version))
        }
    };
    let Some((replay, current)) = gone_or_replay else {
        {
            let gone = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "reason": "Expired", "code": 410,
                "message": format!("too old resource version: {from}")}});
            let _ = chunk(&mut stream, &gone).await;
            let _ = stream.write_all(b"0\r\n\r\n").await;
            return;
        }
    };
    let mut sent = from;
    for event in replay {
        if send_event(&mut stream, &query, &mut sent, &event)
            .await
            .is_err()
        {
            return;
        }
    }
    let mut bookmark_at = current.max(sent);
    let mut ticker = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = live.recv() => {
                let Ok(event) = event else { return };
                if send_event(&mut stream, &query, &mut sent, &event).await.is_err() {
                    return;
                }
            }
            _ = ticker.tick() => {
                if !query.bookmarks {
                    continue;
                }
                let version = state.lock().version;
                // Every event up to `version` is in the channel: send those first, so the
                // bookmark never claims a version whose events the client has not had.
                while let Ok(event) = live.try_recv() {
                    if send_event(&mut stream, &query, &mut sent, &event).await.is_err() {
                        return;
                    }
                }
                if version == bookmark_at {
                    continue;
                }
                bookmark_at = version;
                let kind = if query.metadata_only { "PartialObjectMetadata" } else { query.kind.name() };
                let line = json!({"type": "BOOKMARK", "object": {"kind": kind,
                    "apiVersion": query.kind.api_version(),
                    "metadata": {"resourceVersion": version.to_string()}}});
                if chunk(&mut stream, &line).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn send_event(
    stream: &mut TcpStream,
    query: &Query,
    sent: &mut u64,
    event: &Event,
) -> std::io::Result<()> {
    if event.version <= *sent || !query.matches(event.kind, &event.namespace, &event.object) {
        return Ok(());
    }
    *sent = event.version;
    let line = json!({"type": event.r#type, "object": query.shape(&event.object)});
    chunk(stream, &line).await
}
