//! The explicit registry of built-in plugin types: `type = "…"` → the plugin's builder.
//! No link-time registration: adding a type means adding a line here.

use crate::{
    basic_auth, cc, cors, headers, hmac_auth, ip_restriction, jwt_auth, key_auth, rate_limit,
    request_block, request_size, waf, BuildContext, Plugin,
};
use std::sync::Arc;

/// Every `type` a `[plugins.NAME]` table may have.
pub const TYPES: [&str; 12] = [
    "key-rate-limit",
    "cc-protection",
    "key-auth",
    "basic-auth",
    "hmac-auth",
    "jwt-auth",
    "ip-restriction",
    "cors",
    "request-size",
    "request-block",
    "headers",
    "waf",
];

/// Builds a plugin from its `[plugins.NAME]` table. Errors are one line each.
pub fn build(
    name: &str,
    table: &toml::Table,
    cx: &BuildContext,
) -> Result<Arc<dyn Plugin>, String> {
    let stores = &cx.stores;
    let kind = table
        .get("type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("plugin {name:?} needs a `type`"))?;
    let mut rest = table.clone();
    rest.remove("type");
    match kind {
        "key-rate-limit" => rate_limit::KeyRateLimit::build(name, rest, stores),
        "cc-protection" => cc::CcProtection::build(name, rest, stores),
        "key-auth" => key_auth::KeyAuth::build(name, rest, cx),
        "basic-auth" => basic_auth::BasicAuth::build(name, rest, cx),
        "hmac-auth" => hmac_auth::HmacAuth::build(name, rest, cx),
        "ip-restriction" => ip_restriction::IpRestriction::build(name, rest),
        "jwt-auth" => jwt_auth::JwtAuth::build(name, rest, cx),
        "cors" => cors::Cors::build(name, rest),
        "request-size" => request_size::RequestSize::build(name, rest),
        "request-block" => request_block::RequestBlock::build(name, rest),
        "headers" => headers::Headers::build(name, rest),
        "waf" => waf::Waf::build(name, rest),
        other => Err(format!(
            "plugin {name:?} has unknown type {other:?} (known: {})",
            TYPES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_type_has_a_builder() {
        let cx = BuildContext {
            stores: Arc::default(),
            consumers: Arc::default(),
        };
        for kind in TYPES {
            let mut table = toml::Table::new();
            table.insert("type".into(), kind.into());
            let error = build("p", &table, &cx).err().unwrap_or_default();
            assert!(!error.contains("unknown type"), "{kind}: {error}");
        }
        let mut table = toml::Table::new();
        table.insert("type".into(), "nope".into());
        assert!(build("p", &table, &cx)
            .err()
            .unwrap()
            .contains("unknown type"));
    }
}
