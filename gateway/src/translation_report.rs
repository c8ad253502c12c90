//! The Ingress controller's report beside the config: `report.json` in the gateway's config
//! directory (the controller's config Secret, mounted — or, when the gateway follows that
//! Secret through the API, the directory it writes the Secret's files into), listing what of
//! the cluster's Ingresses and Gateway API routes was not translated or was translated with
//! a difference. Shown in `/api/config/status` (`translation`) and counted in
//! `tidegate_translation_unsupported`, so a gateway says what its config left out.

use crate::gateway::Gateway;
use std::path::PathBuf;

const FILE: &str = "report.json";

/// Where the report of the serving config is.
fn path(gateway: &Gateway) -> Option<PathBuf> {
    if crate::kubernetes::config_secret::following(gateway) {
        return Some(crate::kubernetes::config_secret::files_dir(gateway).join(FILE));
    }
    gateway.config_path().map(|p| p.with_file_name(FILE))
}

/// The report of the serving config, when there is one.
pub fn read(gateway: &Gateway) -> Option<serde_json::Value> {
    let text = std::fs::read(path(gateway)?).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Sets the gauge from the report (0 without one).
pub fn refresh(gateway: &Gateway) {
    let unsupported = read(gateway)
        .and_then(|r| r["unsupported"].as_array().map(Vec::len))
        .unwrap_or(0);
    crate::metrics::get()
        .translation_unsupported
        .set(unsupported as i64);
}
