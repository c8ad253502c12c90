//! Nacos: service discovery, the shared config, and self-registration of the gateway. All of
//! it runs beside the data path: an outage of Nacos leaves the last known instances and
//! config serving.
//!
//! Two protocols, chosen by `[nacos] protocol`: `grpc` (Nacos 2.x/3.x: one connection,
//! pushes, a periodic full resync; see [`grpc`]) and `http` (the Open API poller, v3 client
//! API when the server offers it, v1 otherwise). The rest of the gateway sees neither: both
//! hand registry answers to [`take`] through the [`Naming`] trait, and config texts to the
//! same apply pipeline (`config_source`).

pub mod client;
mod config_source;
mod grpc;
mod http_v3;
mod instances;
mod register;
mod runner;

pub use register::Registration;
pub use runner::{prefetch, NacosRunner};

pub use crate::config::nacos::{default_group, NacosBinding, NacosConfig, Protocol, ServiceKey};

use crate::gateway::Gateway;
use crate::upstream::EndpointSpec;
use std::sync::atomic::{AtomicU8, Ordering};

/// The registry API in use, as `/readyz` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Nacos 2.x/3.x gRPC protocol.
    Grpc,
    /// The Nacos 3.x HTTP client API (`/nacos/v3/client/...`).
    V3,
    /// The Nacos 1.x/2.x Open API (`/nacos/v1/...`).
    V1,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::V3 => "v3",
            Api::V1 => "v1",
        }
    }
}

/// 0 none, 1 grpc, 2 v3, 3 v1: one registry per process.
static API_IN_USE: AtomicU8 = AtomicU8::new(0);

/// The API the last answer came through (`None` before any, or without `[nacos]`).
pub fn api_in_use() -> Option<&'static str> {
    match API_IN_USE.load(Ordering::Relaxed) {
        1 => Some(Api::Grpc.as_str()),
        2 => Some(Api::V3.as_str()),
        3 => Some(Api::V1.as_str()),
        _ => None,
    }
}

pub(crate) fn set_api_in_use(api: Option<Api>) {
    let value = match api {
        None => 0,
        Some(Api::Grpc) => 1,
        Some(Api::V3) => 2,
        Some(Api::V1) => 3,
    };
    API_IN_USE.store(value, Ordering::Relaxed);
}

/// What the gateway asks a registry about one watched service, whatever the protocol.
#[async_trait::async_trait]
pub(crate) trait Naming: Send + Sync {
    /// The instances of `key` now.
    async fn list(&self, key: &ServiceKey) -> Result<Vec<EndpointSpec>, String>;
    /// Whether the registry knows the service at all (see [`take`]).
    async fn exists(&self, key: &ServiceKey) -> Result<bool, String>;
}

/// A registry answer for `key` — polled, pushed or resynced — judged and handed to the
/// gateway. An empty list from a registry that has lost its data (restarted empty, another
/// cluster) must not empty a service; an empty list for a service the registry still has is
/// a real deregistration of every instance. Returns whether the endpoints changed.
pub(crate) async fn take(
    gateway: &Gateway,
    naming: &dyn Naming,
    key: &ServiceKey,
    endpoints: Vec<EndpointSpec>,
) -> bool {
    let discovery = gateway.discovery();
    discovery.note_success();
    if endpoints.is_empty() && discovery.has_endpoints(key) {
        match naming.exists(key).await {
            Ok(true) => {}
            Ok(false) => {
                discovery.keep_last(
                    key,
                    "registry answered no instances and does not know the service; last known kept"
                        .into(),
                );
                return false;
            }
            Err(e) => {
                discovery.keep_last(key, format!("empty answer not confirmed: {e}"));
                return false;
            }
        }
    }
    gateway.discovered(key, endpoints)
}

/// A registry call that failed for `key`: the last known list stays, marked stale.
pub(crate) fn failed(gateway: &Gateway, key: &ServiceKey, error: String) {
    let discovery = gateway.discovery();
    discovery.note_error(error.clone());
    discovery.keep_last(key, error);
}
