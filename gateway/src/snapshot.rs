//! The compile step: a parsed [`Config`] becomes an immutable [`Snapshot`] (router, services,
//! plugin instances), built once per change. Requests load the current one with a single
//! atomic read and keep it until they finish; a reload builds a new one beside it.
//!
//! Whatever only building can find (a bad regex, a plugin's settings, a consumer's secret)
//! is reported positioned in the source text, exactly like the schema checks, so a change is
//! checked and built in the same pass.

use crate::config::{Config, ConfigErrors, IdentityHeaders, Problems, Source};
use crate::discovery::Discovery;
use crate::router::Router;
use crate::upstream::{EndpointStates, Service};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use tidegate_plugins::Plugin;

/// State that outlives snapshots, keyed by stable names: what a new snapshot starts from.
#[derive(Default)]
pub struct Lasting {
    /// Active counts and health per endpoint.
    pub endpoints: EndpointStates,
    /// Limiter counters, bans, key caches of the plugins.
    pub plugins: Arc<tidegate_plugins::Stores>,
    /// The last known endpoints of registry-bound services.
    pub discovery: Discovery,
}

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
    pub identity: IdentityHeaders,
    pub plugins: HashMap<String, Arc<dyn Plugin>>,
    /// The certificates the TLS listeners serve, by SNI.
    pub certificates: crate::tls::CertStore,
}

impl Snapshot {
    /// Parses, checks and compiles. Endpoint state is taken from `lasting` so it carries over
    /// from the previous snapshot; registry-bound services start from what discovery knows.
    pub fn build(
        source: Source,
        version: u64,
        lasting: &Lasting,
    ) -> Result<Snapshot, ConfigErrors> {
        let config = Config::parse(&source)?;
        let mut problems = Problems::new(&source.text);
        let services = compile_services(&config, lasting, &mut problems);
        let certificates = crate::tls::CertStore::build(&config.certificates, &mut problems);
        let plugins = compile_plugins(&config, &lasting.plugins, &mut problems);
        let router = Router::build(
            &config.routes,
            &services,
            &plugins,
            &config.global_plugins,
            &mut problems.reporter(),
        );
        problems.finish(&source.origin)?;
        Ok(Snapshot {
            identity: config.identity.compile().expect("checked by the schema"),
            trusted_proxies: config.server.trusted_proxies(),
            plugins,
            version,
            hash: content_hash(&source.text),
            applied_at: SystemTime::now(),
            source,
            config,
            router,
            services,
            certificates,
        })
    }

    /// Builds `source` on throwaway state and drops it: what `tidegate check`, the validate
    /// API and the console use, so a check is exactly an apply without the swap.
    pub fn check(source: Source) -> Result<Snapshot, ConfigErrors> {
        Snapshot::build(source, 0, &Lasting::default())
    }

    /// Publishes a newly applied snapshot: its version and hash, and its endpoint counts
    /// (services that left are reset), and zero values for what its routes and plugins can
    /// count, so dashboards show 0 rather than "no data" before the first event.
    pub fn publish_metrics(&self) {
        let m = crate::metrics::get();
        m.config_version.set(self.version as i64);
        m.config_info.reset();
        m.config_info.with_label_values(&[&self.hash]).set(1);
        self.publish_endpoint_states();
        for route in self.router.routes() {
            m.declare_route(&route.name, route.service().map(|s| &*s.name));
            if let Some(subsets) = &route.subsets {
                for subset in subsets.names() {
                    m.subset_requests.with_label_values(&[&route.name, subset]);
                }
            }
        }
        for plugin in self.plugins.values() {
            plugin.declare_metrics();
        }
        crate::discovery::dns::declare_metrics(self.services.values());
        m.tls_expiry.reset();
        for cert in self.certificates.certificates() {
            let name = cert.names.first().map_or("default", String::as_str);
            m.tls_expiry.with_label_values(&[name]).set(cert.expires);
        }
    }

    /// Endpoints per service by state: `usable` (may take traffic), `unhealthy` (active
    /// checks), `ejected` (passive checks), `weight_zero` (configured to take none).
    pub fn publish_endpoint_states(&self) {
        let m = crate::metrics::get();
        m.endpoints.reset();
        for (name, service) in &self.services {
            for (state, n) in service.members().state_counts() {
                m.endpoints
                    .with_label_values(&[name.as_str(), state])
                    .set(n);
            }
        }
    }
}

fn compile_services(
    config: &Config,
    lasting: &Lasting,
    problems: &mut Problems<'_>,
) -> HashMap<String, Arc<Service>> {
    let nacos = config.nacos.as_ref().map(toml::Spanned::get_ref);
    let kubernetes = config.kubernetes.as_ref().map(toml::Spanned::get_ref);
    let mut services = HashMap::with_capacity(config.services.len());
    for service in &config.services {
        let discovered = match (&service.nacos, &service.kubernetes) {
            (Some(b), _) => lasting.discovery.current(&b.get_ref().key(), nacos),
            (None, Some(b)) => lasting
                .discovery
                .kubernetes
                .current_of(&b.get_ref().keys(), kubernetes),
            (None, None) => None,
        };
        let discovered = discovered.as_ref().map(|(v, e)| (*v, e.as_slice()));
        if let Some(compiled) = Service::build(
            service,
            &lasting.endpoints,
            discovered,
            &mut problems.reporter(),
        ) {
            // Endpoints by DNS name start from the addresses known now.
            lasting.discovery.dns.fill(&compiled, &lasting.endpoints);
            services.insert(service.name.get_ref().clone(), Arc::new(compiled));
        }
    }
    services
}

fn compile_plugins(
    config: &Config,
    stores: &Arc<tidegate_plugins::Stores>,
    problems: &mut Problems<'_>,
) -> HashMap<String, Arc<dyn Plugin>> {
    let consumers = tidegate_plugins::consumers::Consumers::build(&config.consumers)
        .unwrap_or_else(|e| {
            problems.at(None, e);
            Default::default()
        });
    let cx = tidegate_plugins::BuildContext {
        stores: stores.clone(),
        consumers: Arc::new(consumers),
    };
    let mut plugins = HashMap::with_capacity(config.plugins.len());
    for (name, table) in &config.plugins {
        match tidegate_plugins::build(name, table.get_ref(), &cx) {
            Ok(plugin) => {
                plugins.insert(name.clone(), plugin);
            }
            Err(e) => problems.at(Some(table.span()), e),
        }
    }
    plugins
}

pub fn content_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}
