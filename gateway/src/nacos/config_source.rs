//! `[config] source = "nacos"`: the gateway's routes, services and plugins come from one
//! Nacos data id shared by the fleet. A long poll on `/nacos/v1/cs/configs/listener` hears of
//! a change at once; the new text goes through the same pipeline as a file change (a bad
//! config is refused and reported, the old one keeps serving). The local file stays the
//! bootstrap: its `[nacos]` and `[config]` sections say where the shared config lives and
//! are kept whatever the shared text says.

use super::client::{Client, Method};
use crate::config::{ConfigSourceConfig, Source};
use crate::discovery::cache;
use crate::gateway::{ChangeSource, Gateway};
use md5::{Digest, Md5};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long Nacos may hold a listener call when nothing changes.
const LONG_POLL: Duration = Duration::from_secs(30);
const BACKOFF: Duration = Duration::from_secs(1);

pub fn md5_hex(text: &str) -> String {
    let digest = Md5::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the data id holds now: `Ok(None)` when it does not exist.
pub async fn fetch(client: &Client, config: &ConfigSourceConfig) -> Result<Option<String>, String> {
    let answer = client
        .call(
            Method::Get,
            "/nacos/v1/cs/configs",
            &[
                ("dataId", &config.data_id),
                ("group", &config.group),
                ("tenant", &client.namespace),
            ],
            None,
            &[],
        )
        .await?;
    match answer.status {
        200 => Ok(Some(answer.body)),
        404 => Ok(None),
        status => Err(format!(
            "config fetch answered {status}: {}",
            answer.body.trim()
        )),
    }
}

/// Blocks in Nacos until the data id's content differs from `md5` (true) or the hold time
/// passes (false).
async fn changed_since(
    client: &Client,
    config: &ConfigSourceConfig,
    md5: &str,
) -> Result<bool, String> {
    let mut listening = format!("{}\u{2}{}\u{2}{md5}", config.data_id, config.group);
    if !client.namespace.is_empty() {
        listening.push('\u{2}');
        listening.push_str(&client.namespace);
    }
    listening.push('\u{1}');
    let hold = LONG_POLL.as_millis().to_string();
    let answer = client
        .call(
            Method::Post,
            "/nacos/v1/cs/configs/listener",
            &[("Listening-Configs", &listening)],
            Some(LONG_POLL),
            &[("Long-Pulling-Timeout", &hold)],
        )
        .await?;
    match answer.status {
        200 => Ok(!answer.body.trim().is_empty()),
        status => Err(format!("config listener answered {status}")),
    }
}

/// Applies a shared config text, keeping the bootstrap's own sections.
pub fn apply_text(
    gateway: &Gateway,
    config: &ConfigSourceConfig,
    text: String,
    from_cache: bool,
) -> bool {
    let serving = gateway.snapshot();
    let overlay = crate::config::Overlay::of(&serving.config);
    let origin = if from_cache {
        format!("nacos cache {}/{}", config.group, config.data_id)
    } else {
        format!("nacos {}/{}", config.group, config.data_id)
    };
    let source = Source::new(origin, text).with_overlay(overlay);
    gateway.apply(source, ChangeSource::Nacos).is_ok()
}

/// The watch loop: fetch, apply, then wait for the next change. Runs until aborted.
pub async fn watch(gateway: Arc<Gateway>, client: Arc<Client>, config: ConfigSourceConfig) {
    let mut seen_md5: Option<String> = None;
    loop {
        let changed = match &seen_md5 {
            None => Ok(true),
            Some(md5) => changed_since(&client, &config, md5).await,
        };
        match changed {
            Ok(false) => continue,
            Ok(true) => {}
            Err(e) => {
                gateway.discovery().note_error(e.clone());
                log::warn!("nacos config watch: {e}");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        }
        match fetch(&client, &config).await {
            Ok(Some(text)) => {
                gateway.discovery().note_success();
                let md5 = md5_hex(&text);
                if seen_md5.as_deref() != Some(&md5) {
                    let applied = apply_text(&gateway, &config, text.clone(), false);
                    if applied {
                        if let Some((dir, namespace)) = gateway.discovery().cache_dir() {
                            let path =
                                config_path(&dir, &namespace, &config.data_id, &config.group);
                            if let Err(e) = cache::write_atomic(&path, text.as_bytes()) {
                                log::warn!("cannot write {}: {e}", path.display());
                            }
                        }
                    }
                }
                // A refused text is remembered too: it is not retried until it changes.
                seen_md5 = Some(md5);
            }
            Ok(None) => {
                gateway.discovery().note_success();
                if seen_md5.is_none() {
                    log::warn!(
                        "nacos config {}/{} does not exist yet; serving the local config until it is published",
                        config.group,
                        config.data_id
                    );
                }
                seen_md5 = Some(String::new());
            }
            Err(e) => {
                gateway.discovery().note_error(e.clone());
                log::warn!("nacos config fetch: {e}");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// At startup with Nacos unreachable: the config saved by the last successful fetch.
pub fn load_cached(gateway: &Gateway, config: &ConfigSourceConfig) -> Option<String> {
    let (dir, namespace) = gateway.discovery().cache_dir()?;
    std::fs::read_to_string(config_path(
        &dir,
        &namespace,
        &config.data_id,
        &config.group,
    ))
    .ok()
}

/// Where the shared config is cached: one file per namespace, group and data id.
fn config_path(dir: &Path, namespace: &str, data_id: &str, group: &str) -> PathBuf {
    dir.join(cache::file_name("config", &[namespace, group, data_id]) + ".toml")
}
