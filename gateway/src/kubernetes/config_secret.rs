//! `[kubernetes] config_secret = "NAMESPACE/NAME"`: the gateway follows the config Secret the
//! Ingress controller writes through the API server, instead of waiting for the kubelet to
//! update its mounted copy (which it does on its sync period: up to about a minute). A change
//! is applied within the watch's latency — as ingress-nginx applies an Ingress change — through
//! the same pipeline as a file change: refused with its positions if bad, the old config
//! serving on.
//!
//! The Secret's other keys (the TLS Secrets' certificates) are written into a directory of
//! the gateway's own and the config's paths under the mount pointed there, so a new tenant's
//! certificate is served with the config that names it. While the Secret is followed, the
//! file watch leaves the mounted copy alone: the kubelet's later (or, in a race, older) copy
//! of the same Secret must not undo a newer one. The mount stays what a gateway starts from,
//! and what serves if the API server is unreachable then.

use crate::config::{KubernetesConfig, Source};
use crate::controller::CONFIG_KEY;
use crate::gateway::{ChangeSource, Gateway};
use async_trait::async_trait;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::{watcher, WatchStreamExt};
use kube::Api;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The origin of a config taken from the Secret (the file watch yields to it).
pub const ORIGIN_PREFIX: &str = "kubernetes secret ";

/// The serving config's `[kubernetes]`, if any.
fn section(gateway: &Gateway) -> Option<KubernetesConfig> {
    gateway
        .snapshot()
        .config
        .kubernetes
        .as_ref()
        .map(|k| k.get_ref().clone())
}

/// Whether the serving config came from the followed Secret.
pub fn following(gateway: &Gateway) -> bool {
    gateway.snapshot().source.origin.starts_with(ORIGIN_PREFIX)
}

pub struct ConfigSecretRunner {
    pub gateway: Arc<Gateway>,
}

/// Where the Secret's files go: beside the discovery cache when there is one (it outlives
/// the process), else a directory of this process.
pub fn files_dir(gateway: &Gateway) -> PathBuf {
    let snapshot = gateway.snapshot();
    match snapshot
        .config
        .kubernetes
        .as_ref()
        .and_then(|k| k.get_ref().cache_dir.as_ref())
    {
        Some(dir) => PathBuf::from(dir).join("config"),
        None => std::env::temp_dir().join(format!("tidegate-config-{}", std::process::id())),
    }
}

/// Applies the Secret's config (and writes its files first). Returns whether it was taken.
fn take(gateway: &Gateway, reference: &str, secret: &Secret) -> bool {
    let Some(data) = &secret.data else {
        return false;
    };
    let Some(text) = data.get(CONFIG_KEY) else {
        log::warn!("{reference}: no {CONFIG_KEY} in the Secret; the serving config stays");
        return false;
    };
    let Ok(text) = String::from_utf8(text.0.clone()) else {
        log::warn!("{reference}: {CONFIG_KEY} is not UTF-8; the serving config stays");
        return false;
    };
    let dir = files_dir(gateway);
    let files = data
        .iter()
        .filter(|(k, _)| *k != CONFIG_KEY)
        .map(|(k, v)| (k.as_str(), v.0.as_slice()));
    if let Err(e) = super::bundle::write_files(&dir, files) {
        log::error!("{reference}: {e}; the serving config stays");
        return false;
    }
    // Where the mounted copy is: the config file's directory.
    let text = match gateway
        .config_path()
        .and_then(|p| p.parent().map(PathBuf::from))
    {
        Some(mount) => super::bundle::relocate(&text, &mount.display().to_string(), &dir),
        None => text,
    };
    let source = Source::new(format!("{ORIGIN_PREFIX}{reference}"), text);
    let taken = gateway.apply(source, ChangeSource::Kubernetes).is_ok();
    crate::translation_report::refresh(gateway);
    taken
}

#[async_trait]
impl BackgroundService for ConfigSecretRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let gateway = &self.gateway;
        // Set in the config (which a change may add or remove); looked at once a second.
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        loop {
            let config = section(gateway).unwrap_or_default();
            let Some((namespace, name)) = config.config_secret_parts() else {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = ticker.tick() => continue,
                }
            };
            let client = match super::client(&config) {
                Ok(c) => c,
                Err(e) => {
                    log::error!("kubernetes config secret: {e}");
                    tokio::select! {
                        _ = shutdown.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    }
                }
            };
            let reference = format!("{namespace}/{name}");
            log::info!("following the config Secret {reference} through the API server");
            let api: Api<Secret> = Api::namespaced(client, &namespace);
            let stream = watcher::watch_object(api, &name).default_backoff();
            futures_util::pin_mut!(stream);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return,
                    // The config changed where the Secret is, or stopped naming one.
                    _ = ticker.tick() => {
                        if section(gateway).unwrap_or_default() != config {
                            break;
                        }
                    }
                    event = stream.next() => match event {
                        Some(Ok(Some(secret))) => {
                            take(gateway, &reference, &secret);
                        }
                        Some(Ok(None)) => log::warn!(
                            "the config Secret {reference} does not exist; the serving config stays"
                        ),
                        Some(Err(e)) => log::warn!(
                            "config Secret {reference}: {e} (retrying; the serving config stays)"
                        ),
                        None => break,
                    },
                }
            }
        }
    }
}
