//! `[config] source = "nacos"`: the gateway's routes, services and plugins come from one
//! Nacos data id shared by the fleet. Over HTTP v1 a long poll on
//! `/nacos/v1/cs/configs/listener` hears of a change at once; the v3 client API has no
//! listener, so it is polled every `poll_interval_ms` and compared by md5; over gRPC the
//! server pushes (see `grpc::client`). Whatever the way, the new text goes through
//! [`Follower::take`] and the same pipeline as a file change (a bad config is refused and
//! reported, the old one keeps serving). The local file stays the bootstrap: its `[nacos]`
//! and `[config]` sections say where the shared config lives and are kept whatever the
//! shared text says.

use super::client::{Client, Method, Request};
use super::{http_v3, Api};
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
    fetch_api(client, config).await.map(|(_, text)| text)
}

/// [`fetch`], and which API answered.
async fn fetch_api(
    client: &Client,
    config: &ConfigSourceConfig,
) -> Result<(Api, Option<String>), String> {
    let make = |api: Api| match api {
        Api::V3 => Request::new(
            Method::Get,
            http_v3::CONFIG,
            &[
                ("dataId", &config.data_id),
                ("groupName", &config.group),
                ("namespaceId", client.namespace_or_public()),
            ],
        ),
        _ => Request::new(
            Method::Get,
            "/nacos/v1/cs/configs",
            &[
                ("dataId", &config.data_id),
                ("group", &config.group),
                ("tenant", &client.namespace),
            ],
        ),
    };
    let (api, answer) = client.call_api(&make, None, &[]).await?;
    if api == Api::V3 {
        return http_v3::parse_config(&answer).map(|text| (api, text));
    }
    match answer.status {
        200 => Ok((api, Some(answer.body))),
        404 => Ok((api, None)),
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
        // No v1 on this server (Nacos 3.2, or 3.x with the v1 switch off): poll instead.
        404 | 410 => Err(NO_LISTENER.into()),
        status => Err(format!("config listener answered {status}")),
    }
}

const NO_LISTENER: &str = "the server has no v1 config listener";

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

/// What this gateway last saw of the shared config, and the one place a fetched text goes:
/// applied when it differs from the last seen (and cached when applied). A refused text is
/// remembered too: it is not retried until it changes.
#[derive(Default)]
pub struct Follower {
    /// The md5 of the last text seen; `Some("")` once the data id was found missing.
    seen_md5: Option<String>,
}

impl Follower {
    /// The md5 to tell Nacos (ConfigBatchListenRequest): "" when nothing was seen.
    pub fn md5(&self) -> &str {
        self.seen_md5.as_deref().unwrap_or("")
    }

    pub fn seen_anything(&self) -> bool {
        self.seen_md5.is_some()
    }

    /// Forgets what was seen (another data id is followed now).
    pub fn reset(&mut self) {
        self.seen_md5 = None;
    }

    /// Takes a fetch result: `Some(text)`, or `None` when the data id does not exist.
    pub fn take(&mut self, gateway: &Gateway, config: &ConfigSourceConfig, text: Option<String>) {
        gateway.discovery().note_success();
        let Some(text) = text else {
            if self.seen_md5.is_none() {
                log::warn!(
                    "nacos config {}/{} does not exist yet; serving the local config until it is published",
                    config.group,
                    config.data_id
                );
            }
            self.seen_md5 = Some(String::new());
            return;
        };
        let md5 = md5_hex(&text);
        if self.seen_md5.as_deref() != Some(&md5) {
            let applied = apply_text(gateway, config, text.clone(), false);
            if applied {
                if let Some((dir, namespace)) = gateway.discovery().cache_dir() {
                    let path = config_path(&dir, &namespace, &config.data_id, &config.group);
                    if let Err(e) = cache::write_atomic(&path, text.as_bytes()) {
                        log::warn!("cannot write {}: {e}", path.display());
                    }
                }
            }
        }
        self.seen_md5 = Some(md5);
    }
}

/// The HTTP watch loop: fetch, apply, then wait for the next change (the v1 long poll, or
/// `poll_every` for the v3 client API, which has no listener). Runs until aborted.
pub async fn watch(
    gateway: Arc<Gateway>,
    client: Arc<Client>,
    config: ConfigSourceConfig,
    poll_every: Duration,
) {
    let mut follower = Follower::default();
    // The API of the last answer: v3 (or a v1 server without listener) is polled.
    let mut polled = false;
    loop {
        if follower.seen_anything() {
            if polled {
                tokio::time::sleep(poll_every).await;
            } else {
                match changed_since(&client, &config, follower.md5()).await {
                    Ok(false) => continue,
                    Ok(true) => {}
                    Err(e) if e.ends_with(NO_LISTENER) => {
                        log::info!("nacos config watch: {e}; polling every {poll_every:?}");
                        polled = true;
                        continue;
                    }
                    Err(e) => {
                        gateway.discovery().note_error(e.clone());
                        log::warn!("nacos config watch: {e}");
                        tokio::time::sleep(BACKOFF).await;
                        continue;
                    }
                }
            }
        }
        match fetch_api(&client, &config).await {
            Ok((api, text)) => {
                polled = polled || api == Api::V3;
                follower.take(&gateway, &config, text);
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
