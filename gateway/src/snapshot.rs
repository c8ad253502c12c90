//! An immutable, fully compiled configuration. Requests load the current one with a single
//! atomic read and keep it until they finish; a reload builds a new one beside it.

use crate::config::{Config, ConfigErrors, Source};
use crate::router::Router;
use crate::upstream::{EndpointStates, Service};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

pub struct Snapshot {
    /// Monotonic per process; 1 is the config the process started with.
    pub version: u64,
    /// FNV-1a of the source text, hex: equal texts give equal hashes on every gateway.
    pub hash: String,
    pub applied_at: SystemTime,
    pub source: Source,
    pub config: Config,
    pub router: Router,
    pub services: HashMap<String, Arc<Service>>,
    /// Peers whose X-Forwarded-For is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Headers naming the authenticated consumer and tenant upstream.
    pub identity: crate::proxy::forwarded::IdentityHeaders,
    pub plugins: HashMap<String, Arc<dyn tidegate_plugins::Plugin>>,
}

impl Snapshot {
    /// Parses, validates and compiles. Endpoint state (active counts, health) is taken from
    /// `states` so it carries over from the previous snapshot; registry-bound services start
    /// from what `discovery` knows.
    pub fn build(
        source: Source,
        version: u64,
        states: &EndpointStates,
        stores: &Arc<tidegate_plugins::Stores>,
        discovery: &crate::nacos::Discovery,
    ) -> Result<Snapshot, ConfigErrors> {
        let config = Config::parse(&source)?;
        let nacos = config.nacos.as_ref().map(|n| n.get_ref());
        let compile_error = |message: String| {
            ConfigErrors::single(
                source.origin.clone(),
                crate::config::ConfigError::whole(message),
            )
        };
        let mut services = HashMap::with_capacity(config.services.len());
        for service in &config.services {
            let discovered = service
                .nacos
                .as_ref()
                .and_then(|b| discovery.current(&b.get_ref().key(), nacos));
            let compiled = Service::build(
                service,
                states,
                discovered.as_ref().map(|(v, e)| (*v, e.as_slice())),
            )
            .map_err(compile_error)?;
            services.insert(service.name.get_ref().clone(), Arc::new(compiled));
        }
        let consumers = tidegate_plugins::consumers::Consumers::build(&config.consumers)
            .map_err(compile_error)?;
        let cx = tidegate_plugins::BuildContext {
            stores: stores.clone(),
            consumers: Arc::new(consumers),
        };
        let mut plugins = HashMap::with_capacity(config.plugins.len());
        for (name, table) in &config.plugins {
            let plugin =
                tidegate_plugins::build(name, table.get_ref(), &cx).map_err(compile_error)?;
            plugins.insert(name.clone(), plugin);
        }
        let global: Vec<String> = config
            .global_plugins
            .iter()
            .map(|n| n.get_ref().clone())
            .collect();
        let router =
            Router::build(&config.routes, &services, &plugins, &global).map_err(compile_error)?;
        let trusted_proxies = config.server.trusted_proxies();
        let identity = config.identity.compile().map_err(compile_error)?;
        Ok(Snapshot {
            identity,
            trusted_proxies,
            plugins,
            version,
            hash: content_hash(&source.text),
            applied_at: SystemTime::now(),
            source,
            config,
            router,
            services,
        })
    }
}

pub fn content_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        hash ^= *b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
