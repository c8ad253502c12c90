//! Tidegate's plugin API and built-in plugins.
//!
//! A plugin is configured under `[plugins.NAME]` with a `type`, built when a snapshot is
//! compiled ([`build`], an explicit registry of the built-in types), and run by a route's
//! [`Chain`] in fixed phases: `on_request` (may answer the request itself),
//! `on_request_body` (for plugins that ask to see the body; still before anything goes
//! upstream), `on_upstream_request`, `on_response`, and `on_log`. A route's chain is the
//! global plugins plus its own, ordered by [`Plugin::order`] — ip rules, flood protection,
//! authentication, WAF, limits, CORS, rewrites — whatever order they are listed in. Every
//! hook gets one [`Ctx`]: who is calling (shared by the chain) and the plugin's own slot.
//!
//! State that must outlive a snapshot (counters, bans) lives in [`Stores`], keyed by plugin
//! name, so that a reload that changes a threshold keeps the counts.
//!
//! Each plugin is one unit — its config type, its code and its unit tests in one file or
//! folder; `testing` (tests only) builds one from a TOML snippet and runs it on a request.

mod api;
mod chain;
mod registry;
#[cfg(test)]
pub(crate) mod testing;

// Pieces the plugins share.
pub mod consumers;
pub mod jwks;
pub mod key;
pub mod metrics;
pub mod redis_client;
pub mod replay;

// The built-in plugins, one unit each.
pub mod basic_auth;
pub mod cc;
pub mod cors;
pub mod headers;
pub mod hmac_auth;
pub mod ip_restriction;
pub mod jwt_auth;
pub mod key_auth;
pub mod rate_limit;
pub mod request_block;
pub mod request_size;
pub mod waf;

pub use api::{
    order, parse_config, BuildContext, Caller, Ctx, Plugin, Reply, RequestState, Stores,
    MAX_BODY_INSPECT,
};
pub use chain::Chain;
pub use registry::{build, TYPES};
