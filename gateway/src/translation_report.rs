//! The Ingress controller's report beside the config: `report.json` in the gateway's config
//! directory (the controller's config Secret, mounted), listing what of the cluster's
//! Ingresses and Gateway API routes was not translated or was translated with a difference.
//! Shown in `/api/config/status` (`translation`) and counted in
//! `tidegate_translation_unsupported`, so a gateway says what its config left out.

use std::path::Path;

/// The report next to `config_path`, when there is one.
pub fn read(config_path: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read(config_path.with_file_name("report.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Sets the gauge from the report next to `config_path` (0 without one).
pub fn refresh(config_path: Option<&Path>) {
    let unsupported = config_path
        .and_then(read)
        .and_then(|r| r["unsupported"].as_array().map(Vec::len))
        .unwrap_or(0);
    crate::metrics::get()
        .translation_unsupported
        .set(unsupported as i64);
}
