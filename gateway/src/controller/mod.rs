//! `tidegate ingress-controller`: the control-plane process that turns a cluster's Ingresses
//! into the config the gateways serve.
//!
//! Where each part runs, and why: the controller — one leader among its replicas (a Lease,
//! `lease.rs`) — watches the Ingresses of its class, the IngressClasses and the Services
//! (for port names), translates them with the importer's translation (`crate::ingress`),
//! checks the result with the gateway's own compile step, and writes it — with the
//! certificates of the TLS Secrets it names — into one Secret. The gateways mount that
//! Secret as their config directory and apply a change as any config change — no restart,
//! no reload, no tunnel touched unless its own route or pod went — and find the pods
//! themselves (pod discovery). So fifty gateways do not each translate the whole cluster,
//! and none needs to read Ingresses or Secrets through the API.
//!
//! Why one Secret for the config and the certificates: the kubelet swaps a mounted volume's
//! files all at once, so a gateway never sees a config naming a certificate whose file has
//! not arrived (two volumes update independently); and a new tenant's certificate needs no
//! new mount, which would restart the pods. Private keys never go into a ConfigMap.
//!
//! A translation the gateway would refuse is never written: the old config keeps serving
//! and the error is logged. The report of what is not translated is written beside the
//! config (`report.txt`).
//!
//! Where clients reach the gateways is written on what they route (`address.rs`), so
//! `kubectl get ingress` and external-dns see the load balancer, as with ingress-nginx.

mod address;
mod auth_secrets;
mod events;
mod lease;
mod status;

use crate::config::KubernetesConfig;
use futures_util::StreamExt;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use k8s_openapi::ByteString;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use address::Publish;

/// The key of the Secret the gateways read their config from.
pub const CONFIG_KEY: &str = "tidegate.toml";
/// The key of the translation's report.
pub const REPORT_KEY: &str = "report.txt";
/// The same report for the gateways to show (`crate::translation_report`).
pub const REPORT_JSON_KEY: &str = "report.json";

pub struct Options {
    /// The API server (an empty `[kubernetes]`: in the cluster).
    pub kubernetes: KubernetesConfig,
    /// Where the config Secret and the Lease are.
    pub namespace: String,
    pub config_secret: String,
    /// The gateways' own sections (`[server]`, `[admin]`, …), put before the translation.
    pub base: String,
    pub ingress_class: String,
    pub tls_dir: String,
    /// This replica's name in the Lease (the pod name).
    pub identity: String,
    pub lease_duration: Duration,
    /// Where the gateways are reached, for the objects' address status.
    pub publish: Publish,
}

/// What the watches know, kept current by kube's reflectors.
struct Cluster {
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    services: Store<Service>,
    /// TLS Secrets (`type: kubernetes.io/tls`), for the certificates the routes name.
    tls_secrets: Store<Secret>,
    /// The Gateway API's objects, when the cluster has its CRDs.
    gateway_api: Option<GatewayApi>,
    changed: Arc<Notify>,
}

struct GatewayApi {
    classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    http_routes: Store<HttpRoute>,
    grpc_routes: Store<GrpcRoute>,
    /// ReferenceGrants, of whichever version the cluster serves (v1, else v1beta1: the
    /// same spec), read untyped.
    grants: Option<Store<DynamicObject>>,
}

/// The ReferenceGrant resource the cluster serves, if any.
async fn reference_grants(client: &kube::Client, v1: &APIResourceList) -> Option<ApiResource> {
    let group = "gateway.networking.k8s.io";
    let served =
        |list: &APIResourceList| list.resources.iter().any(|r| r.name == "referencegrants");
    let version = if served(v1) {
        "v1"
    } else {
        let beta = client
            .list_api_group_resources(&format!("{group}/v1beta1"))
            .await
            .ok()?;
        if !served(&beta) {
            return None;
        }
        "v1beta1"
    };
    Some(ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: format!("{group}/{version}"),
        kind: "ReferenceGrant".into(),
        plural: "referencegrants".into(),
    })
}

/// Follows ReferenceGrants of `resource` (untyped: the version is the cluster's).
fn follow_grants(
    client: &kube::Client,
    resource: &ApiResource,
    changed: Arc<Notify>,
) -> Store<DynamicObject> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let writer = reflector::store::Writer::new(resource.clone());
    follow_into(api, watcher::Config::default(), writer, changed)
}

fn follow<K>(api: Api<K>, changed: Arc<Notify>) -> Store<K>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    follow_into(api, watcher::Config::default(), Default::default(), changed)
}

/// Runs a reflector into `writer`, waking `changed` on every event; returns its reader.
fn follow_into<K>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    changed: Arc<Notify>,
) -> Store<K>
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    let reader = writer.as_reader();
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("?");
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(async move {
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                log::warn!("ingress-controller: watch of {kind}: {e} (retrying)");
                continue;
            }
            changed.notify_one();
        }
    });
    reader
}

impl Cluster {
    async fn watch(client: &kube::Client) -> Cluster {
        let changed = Arc::new(Notify::new());
        // The Gateway API is a set of CRDs: watched only where they are installed.
        let gateway_api = match client
            .list_api_group_resources("gateway.networking.k8s.io/v1")
            .await
        {
            Ok(v1) => Some(GatewayApi {
                classes: follow(Api::all(client.clone()), changed.clone()),
                gateways: follow(Api::all(client.clone()), changed.clone()),
                http_routes: follow(Api::all(client.clone()), changed.clone()),
                grpc_routes: follow(Api::all(client.clone()), changed.clone()),
                grants: reference_grants(client, &v1)
                    .await
                    .map(|r| follow_grants(client, &r, changed.clone())),
            }),
            Err(e) => {
                log::info!(
                    "ingress-controller: no Gateway API in this cluster ({e}): Ingresses only"
                );
                None
            }
        };
        Cluster {
            ingresses: follow(Api::all(client.clone()), changed.clone()),
            classes: follow(Api::all(client.clone()), changed.clone()),
            services: follow(Api::all(client.clone()), changed.clone()),
            tls_secrets: follow_into(
                Api::all(client.clone()),
                watcher::Config::default().fields("type=kubernetes.io/tls"),
                Default::default(),
                changed.clone(),
            ),
            gateway_api,
            changed,
        }
    }

    async fn ready(&self) {
        let _ = self.ingresses.wait_until_ready().await;
        let _ = self.classes.wait_until_ready().await;
        let _ = self.services.wait_until_ready().await;
        let _ = self.tls_secrets.wait_until_ready().await;
        if let Some(g) = &self.gateway_api {
            let _ = g.classes.wait_until_ready().await;
            let _ = g.gateways.wait_until_ready().await;
            let _ = g.http_routes.wait_until_ready().await;
            let _ = g.grpc_routes.wait_until_ready().await;
            if let Some(grants) = &g.grants {
                let _ = grants.wait_until_ready().await;
            }
        }
    }

    fn objects(&self) -> crate::ingress::objects::Objects {
        let mut objects = crate::ingress::objects::Objects {
            ingresses: owned(self.ingresses.state()),
            classes: owned(self.classes.state()),
            services: owned(self.services.state()),
            ..Default::default()
        };
        if let Some(g) = &self.gateway_api {
            objects.gateway_classes = owned(g.classes.state());
            objects.gateways = owned(g.gateways.state());
            objects.http_routes = owned(g.http_routes.state());
            objects.grpc_routes = owned(g.grpc_routes.state());
            objects.reference_grants = g
                .grants
                .iter()
                .flat_map(Store::state)
                .filter_map(|o| {
                    Some(crate::ingress::reference_grants::Grant {
                        namespace: o.metadata.namespace.clone()?,
                        spec: serde_json::from_value(o.data["spec"].clone()).ok()?,
                    })
                })
                .collect();
        }
        objects
    }
}

fn owned<K: Clone>(objects: Vec<Arc<K>>) -> Vec<K> {
    objects.into_iter().map(|o| (*o).clone()).collect()
}

/// The translation of the cluster's current state: the whole config text and its report,
/// and whether the gateways would accept it (Err: their compile error).
struct Translation {
    text: String,
    /// The Secrets whose certificates the config names.
    secrets: Vec<(String, String)>,
    report: crate::ingress::Report,
    rendered: String,
    checked: Result<(), String>,
}

/// The TLS Secrets with a certificate and a key, by (namespace, name).
type TlsSecrets = BTreeMap<(String, String), (ByteString, ByteString)>;

fn tls_secrets(secrets: &Store<Secret>) -> TlsSecrets {
    secrets
        .state()
        .iter()
        .filter(|s| s.type_.as_deref() == Some("kubernetes.io/tls"))
        .filter_map(|s| {
            let data = s.data.as_ref()?;
            let key = (s.metadata.namespace.clone()?, s.metadata.name.clone()?);
            Some((
                key,
                (data.get("tls.crt")?.clone(), data.get("tls.key")?.clone()),
            ))
        })
        .collect()
}

fn translate(
    objects: &crate::ingress::objects::Objects,
    tls: &TlsSecrets,
    options: &Options,
) -> Translation {
    let import_options = crate::ingress::Options {
        class: Some(options.ingress_class.clone()),
        tls_dir: options.tls_dir.clone(),
        tls_files: crate::ingress::TlsFiles::Bundle(tls.keys().cloned().collect()),
        // The gateways' own sections may set the API server already (the Helm chart does).
        kubernetes_section: !options.base.lines().any(|l| l.trim() == "[kubernetes]"),
    };
    let imported = crate::ingress::translate_all(
        objects,
        &import_options,
        &format!(
            "the Ingresses of class {:?} and the Gateway API",
            options.ingress_class
        ),
    );
    let text = format!("{}\n{}", options.base.trim_end(), imported.config);
    let checked = check(&text, &imported.secrets, tls, options);
    Translation {
        rendered: imported.report.render(imported.routes, imported.services),
        secrets: imported.secrets,
        report: imported.report,
        text,
        checked,
    }
}

/// Compiles `text` as the gateways will. The certificates it names are files in the
/// gateways' mount, which this process does not have: they are written into a scratch
/// directory of its own first, and the text checked with that directory in their place.
fn check(
    text: &str,
    secrets: &[(String, String)],
    tls: &TlsSecrets,
    options: &Options,
) -> Result<(), String> {
    let scratch = std::env::temp_dir().join(format!("tidegate-controller-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    let mut files: Vec<(String, &[u8])> = Vec::new();
    for key @ (namespace, secret) in secrets {
        if let Some((cert, private)) = tls.get(key) {
            files.push((format!("{namespace}.{secret}.crt"), &cert.0));
            files.push((format!("{namespace}.{secret}.key"), &private.0));
        }
    }
    crate::kubernetes::bundle::write_files(&scratch, files.iter().map(|(k, b)| (k.as_str(), *b)))?;
    let text = crate::kubernetes::bundle::relocate(text, &options.tls_dir, &scratch);
    let source = crate::config::Source::new("translated Ingresses", text);
    crate::snapshot::Snapshot::check(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Writes the config, its report and the certificates it names into the config Secret when
/// they differ from what it holds. Returns whether it wrote.
async fn publish(
    api: &Api<Secret>,
    name: &str,
    translation: &Translation,
    tls: &TlsSecrets,
) -> Result<bool, String> {
    let current = api
        .get_opt(name)
        .await
        .map_err(|e| format!("secret {name}: {e}"))?;
    let mut data: BTreeMap<String, ByteString> = [
        (
            CONFIG_KEY.to_string(),
            ByteString(translation.text.clone().into_bytes()),
        ),
        (
            REPORT_KEY.to_string(),
            ByteString(translation.rendered.clone().into_bytes()),
        ),
        (
            REPORT_JSON_KEY.to_string(),
            ByteString(translation.report.json().to_string().into_bytes()),
        ),
    ]
    .into();
    for key @ (namespace, secret) in &translation.secrets {
        if let Some((cert, private)) = tls.get(key) {
            data.insert(format!("{namespace}.{secret}.crt"), cert.clone());
            data.insert(format!("{namespace}.{secret}.key"), private.clone());
        }
    }
    let result = match current {
        Some(s) if s.data.as_ref() == Some(&data) => return Ok(false),
        Some(mut s) => {
            s.data = Some(data);
            s.string_data = None;
            api.replace(name, &PostParams::default(), &s).await
        }
        None => {
            let s = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                data: Some(data),
                ..Secret::default()
            };
            api.create(&PostParams::default(), &s).await
        }
    };
    result
        .map(|_| true)
        .map_err(|e| format!("secret {name}: {e}"))
}

/// Runs until the process is stopped.
pub async fn run(options: Options) -> Result<(), String> {
    let client = crate::kubernetes::client(&options.kubernetes)?;
    let election = lease::Election::new(
        client.clone(),
        &options.namespace,
        "tidegate-ingress-controller",
        &options.identity,
        options.lease_duration,
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &options.namespace);
    let cluster = Cluster::watch(&client).await;
    cluster.ready().await;
    log::info!(
        "ingress-controller: watching Ingresses of class {:?}",
        options.ingress_class
    );
    let mut events = events::Events::new(client.clone(), &options.identity);
    let mut auth = auth_secrets::AuthSecrets::default();
    // Fetched rather than watched Secrets (basic authentication's users) are looked at again
    // this often.
    let mut resync = tokio::time::interval(Duration::from_secs(5));
    let mut leading = false;
    let mut ticker = tokio::time::interval(election.period());
    let mut pending = true;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = match election.round().await {
                    Ok(held) => held,
                    Err(e) => {
                        log::warn!("ingress-controller: {e}");
                        false
                    }
                };
                if now != leading {
                    log::info!("ingress-controller: {} the leader", if now { "now" } else { "no longer" });
                    leading = now;
                    pending = true;
                }
            }
            _ = resync.tick(), if leading => {
                pending |= auth.refresh(&client, &owned(cluster.ingresses.state())).await;
            }
            _ = cluster.changed.notified() => {
                // Changes come in bursts (a `kubectl apply` of many objects): one translation.
                tokio::time::sleep(Duration::from_millis(200)).await;
                pending = true;
            }
        }
        if !(pending && leading) {
            continue;
        }
        pending = false;
        let mut objects = cluster.objects();
        auth.refresh(&client, &objects.ingresses).await;
        objects.secrets = auth.current();
        let tls = tls_secrets(&cluster.tls_secrets);
        let translation = translate(&objects, &tls, &options);
        match &translation.checked {
            Ok(()) => match publish(&secrets, &options.config_secret, &translation, &tls).await {
                Ok(true) => log::info!(
                    "ingress-controller: config written to {}/{}:\n{}",
                    options.namespace,
                    options.config_secret,
                    translation.rendered
                ),
                Ok(false) => {}
                Err(e) => {
                    log::warn!("ingress-controller: {e} (tried again on the next change or round)");
                    pending = true;
                }
            },
            Err(e) => log::error!("ingress-controller: the translation would be refused by the gateways, so the config stays as it is:\n{e}"),
        }
        let programmed = translation.checked.as_ref().map(|_| ()).map_err(|e| {
            format!(
                "Invalid: the gateways would refuse the translation: {}",
                e.lines().next().unwrap_or_default()
            )
        });
        let addresses = options.publish.addresses(&cluster.services);
        let seen = status::Seen {
            ingresses: &objects.ingresses,
            classes: &objects.gateway_classes,
            gateways: &objects.gateways,
            http_routes: &objects.http_routes,
            grpc_routes: &objects.grpc_routes,
        };
        status::write(
            &client,
            seen,
            &translation.report,
            &programmed,
            addresses.as_deref(),
        )
        .await;
        events
            .publish(&objects.ingresses, &translation.report)
            .await;
    }
}
