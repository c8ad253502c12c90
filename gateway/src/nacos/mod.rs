//! Nacos: service discovery (a poller per referenced service), the shared config (a long
//! poll on one data id), and self-registration of the gateway. All of it runs beside the
//! data path: an outage of Nacos leaves the last known instances and config serving.

pub mod client;
mod config_source;
mod instances;
mod register;
mod runner;

pub use register::Registration;
pub use runner::{prefetch, NacosRunner};

pub use crate::config::nacos::{default_group, NacosBinding, NacosConfig, ServiceKey};
