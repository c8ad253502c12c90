//! Re-reads the config file when it changes on disk or on SIGHUP, and applies it through the
//! gateway's pipeline. A bad file is refused and logged; the serving snapshot stays.

use crate::config::Source;
use crate::gateway::{ChangeSource, Gateway};
use async_trait::async_trait;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::signal::unix::{signal, SignalKind};

/// How often the file's metadata is looked at. A stat is cheap; watching by polling also
/// follows editors that replace the file and files on network mounts.
const POLL: Duration = Duration::from_millis(250);

pub struct ConfigWatch {
    pub gateway: Arc<Gateway>,
    /// None when running the embedded default: then only SIGHUP is logged.
    pub path: Option<PathBuf>,
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    })
}

impl ConfigWatch {
    /// The stamps of every file the serving certificates were loaded from.
    fn certificate_stamps(&self) -> Vec<Option<Stamp>> {
        self.gateway
            .snapshot()
            .certificates
            .files
            .iter()
            .map(|p| stamp(p))
            .collect()
    }

    fn reload(&self, from: ChangeSource) {
        let Some(path) = &self.path else {
            log::info!("SIGHUP: running the embedded default config, nothing to re-read");
            return;
        };
        if crate::kubernetes::config_secret::following(&self.gateway) {
            // The Secret this file is a mounted copy of is followed through the API: the
            // kubelet's copy arrives later (or, in a race, older) and must not undo it.
            log::debug!(
                "{}: the config Secret is followed through the API; the mounted copy is not read",
                path.display()
            );
            return;
        }
        if self.gateway.snapshot().source.overlay.is_some() {
            // Routes come from Nacos; this file only says where from. Re-reading it here
            // would replace the shared config with the bootstrap's.
            log::warn!(
                "{}: the config comes from nacos; changes to this bootstrap file take effect at the next restart or upgrade",
                path.display()
            );
            return;
        }
        match Source::read_file(path) {
            Ok(source) => {
                let _ = self.gateway.apply(source, from);
                crate::translation_report::refresh(&self.gateway);
            }
            Err(errors) => log::error!("config file not re-read: {errors}"),
        }
    }
}

#[async_trait]
impl BackgroundService for ConfigWatch {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        crate::translation_report::refresh(&self.gateway);
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                log::error!("cannot listen for SIGHUP: {e}");
                None
            }
        };
        let mut last = self.path.as_deref().and_then(stamp);
        let mut certs = self.certificate_stamps();
        // The file may have changed between its reading at startup and this first look (a
        // busy machine starts this service late): catch up once. An unchanged file is a
        // no-op in the pipeline.
        if self.path.is_some() {
            self.reload(ChangeSource::File);
        }
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                    last = self.path.as_deref().and_then(stamp);
                    self.reload(ChangeSource::Signal);
                }
                _ = ticker.tick() => {
                    let now = self.path.as_deref().and_then(stamp);
                    if self.path.is_some() && now.is_some() && now != last {
                        last = now;
                        self.reload(ChangeSource::File);
                    }
                    // A renewal tool replaces certificate files: the serving config is
                    // compiled again with them (a bad pair is refused; the old one serves).
                    let now = self.certificate_stamps();
                    if now != certs {
                        let serving = self.gateway.snapshot().source.clone();
                        log::info!("certificate files changed: recompiling {}", serving.origin);
                        let _ = self.gateway.apply(serving, ChangeSource::Certificates);
                        certs = self.certificate_stamps();
                    }
                }
            }
        }
    }
}

/// Writes `text` to the gateway's config file atomically (write, then rename), so a change
/// made through the admin API (a quota override) survives a restart. Returns whether it was
/// written; without a file (embedded default), or when the serving config is a shared one
/// from Nacos, there is nothing to write to.
pub fn persist(gateway: &Gateway, text: &str) -> bool {
    let Some(path) = gateway.config_path() else {
        return false;
    };
    if gateway.snapshot().source.overlay.is_some() {
        // The file is the bootstrap; the serving text is the shared one from Nacos.
        log::warn!("config comes from nacos: this change lasts until the next publication there");
        return false;
    }
    let tmp = path.with_extension("toml.tidegate-tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = &written {
        log::error!("could not write {}: {e}", path.display());
    }
    written.is_ok()
}
