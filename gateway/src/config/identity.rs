//! `[identity]`: the headers that tell the upstream who called (set by the authentication
//! plugins, always stripped from what clients send).

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub consumer_header: String,
    pub tenant_header: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            consumer_header: "x-consumer".into(),
            tenant_header: "x-tenant-id".into(),
        }
    }
}

/// The header names, parsed.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub consumer: http::HeaderName,
    pub tenant: http::HeaderName,
}

impl IdentityConfig {
    pub fn compile(&self) -> Result<IdentityHeaders, String> {
        let name = |n: &str| {
            http::HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("[identity]: bad header name {n:?}"))
        };
        Ok(IdentityHeaders {
            consumer: name(&self.consumer_header)?,
            tenant: name(&self.tenant_header)?,
        })
    }
}
