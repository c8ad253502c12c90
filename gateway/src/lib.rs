//! Tidegate: an API gateway on Pingora. The binary (`main.rs`) wires these modules into a
//! Pingora server; they are a library so benchmarks and the console can share them.
//!
//! Layers, each importing only those above it:
//! 1. schema — [`config`] (the TOML types), and the leaves [`metrics`] and [`time`];
//! 2. compile — [`upstream`], [`router`], [`tls`] (certificates, handshakes), [`discovery`]
//!    (state they start from), and
//!    [`snapshot`], which turns a config into an immutable snapshot;
//! 3. runtime — [`tunnel`] (relays and their reload policy), [`gateway`] (the current
//!    snapshot, lasting state, the apply pipeline), and the services around it:
//!    [`config_watch`], [`nacos`], [`resolver`] (endpoint DNS names), [`health`],
//!    [`lifecycle`], [`admin`], [`access_log`],
//!    [`edge`] (the client side of every connection), [`proxy_protocol`], [`readiness`],
//!    [`upgrade`];
//! 4. request path — [`proxy`].

pub mod config;
pub mod metrics;
pub mod time;

pub mod discovery;
pub mod router;
pub mod snapshot;
pub mod tls;
pub mod translation_report;
pub mod upstream;

pub mod access_log;
pub mod admin;
pub mod config_watch;
pub mod controller;
pub mod edge;
pub mod gateway;
pub mod health;
pub mod ingress;
pub mod kubernetes;
pub mod lifecycle;
pub mod nacos;
pub mod proxy_protocol;
pub mod readiness;
pub mod resolver;
pub mod tunnel;
pub mod upgrade;

pub mod proxy;
