//! `cache_dir`: the last known instance lists (and a shared config) on disk, written
//! atomically on every change, read when the registry has not answered yet (a restart
//! during an outage).

use crate::config::ServiceKey;
use crate::upstream::EndpointSpec;
use std::path::{Path, PathBuf};

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedInstances {
    key: String,
    saved_at: String,
    endpoints: Vec<EndpointSpec>,
}

/// A file name safe on any filesystem, one per key.
pub fn file_name(prefix: &str, parts: &[&str]) -> String {
    let mut name = String::from(prefix);
    for part in parts {
        name.push('-');
        for c in part.chars() {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                name.push(c);
            } else {
                name.push_str(&format!("%{:02x}", c as u32 & 0xff));
            }
        }
    }
    name
}

fn instances_path(dir: &Path, namespace: &str, key: &ServiceKey) -> PathBuf {
    dir.join(
        file_name(
            "instances",
            &[namespace, &key.group, &key.service, &key.clusters],
        ) + ".json",
    )
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

pub fn save_instances(dir: &Path, namespace: &str, key: &ServiceKey, endpoints: &[EndpointSpec]) {
    save_endpoints(
        &instances_path(dir, namespace, key),
        &key.to_string(),
        endpoints,
    );
}

pub fn load_instances(dir: &Path, namespace: &str, key: &ServiceKey) -> Option<Vec<EndpointSpec>> {
    load_endpoints(&instances_path(dir, namespace, key), &key.to_string())
}

/// Writes the endpoints known for `key` (a registry's name of the list) to `path`.
pub fn save_endpoints(path: &Path, key: &str, endpoints: &[EndpointSpec]) {
    let cached = CachedInstances {
        key: key.to_string(),
        saved_at: crate::time::rfc3339_millis(std::time::SystemTime::now()),
        endpoints: endpoints.to_vec(),
    };
    let written = serde_json::to_vec_pretty(&cached)
        .map_err(std::io::Error::other)
        .and_then(|bytes| write_atomic(path, &bytes));
    if let Err(e) = written {
        log::warn!("cannot write the endpoint cache {}: {e}", path.display());
    }
}

pub fn load_endpoints(path: &Path, key: &str) -> Option<Vec<EndpointSpec>> {
    let bytes = std::fs::read(path).ok()?;
    match serde_json::from_slice::<CachedInstances>(&bytes) {
        Ok(cached) => {
            log::info!(
                "{key}: {} endpoints from the cache saved at {}",
                cached.endpoints.len(),
                cached.saved_at
            );
            Some(cached.endpoints)
        }
        Err(e) => {
            log::warn!("ignoring unreadable endpoint cache {}: {e}", path.display());
            None
        }
    }
}
