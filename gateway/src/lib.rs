//! Tidegate: an API gateway on Pingora. The binary (`main.rs`) wires these modules into a
//! Pingora server; they are a library so benchmarks and the console can share them.

pub mod access_log;
pub mod admin;
pub mod config;
pub mod config_watch;
pub mod gateway;
pub mod health;
pub mod lifecycle;
pub mod listener;
pub mod metrics;
pub mod nacos;
pub mod observe;
pub mod proxy;
pub mod proxy_protocol;
pub mod router;
pub mod snapshot;
pub mod tunnel;
pub mod upgrade;
pub mod upstream;
