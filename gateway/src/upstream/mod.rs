//! Upstream services: endpoints, load balancing and the peers Pingora connects to.

mod hash_key;
mod members;
mod named;
mod passive;
pub mod pool;
mod state;

pub use hash_key::HashKey;
pub use members::{Endpoint, EndpointSpec, Members, PeerSettings, UpstreamTls};
pub use named::{Entry, Template};
pub use state::{EndpointState, EndpointStates};

use crate::config::{
    HealthCheckConfig, KubeKey, LbKind, PassiveConfig, ServiceConfig, ServiceKey, MAX_RETRIES,
};
use arc_swap::ArcSwap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Service {
    pub name: Arc<str>,
    /// The endpoints now: from the config file, or from the registry (swapped in place).
    members: ArcSwap<Members>,
    lb: LbKind,
    settings: PeerSettings,
    /// Where the endpoints come from when not from the file.
    pub nacos: Option<ServiceKey>,
    /// … or from Kubernetes Services (swapped in place as the watches see changes); empty:
    /// not from Kubernetes.
    pub kubernetes: Vec<KubeKey>,
    /// The configured entries, when some endpoints are DNS names (their addresses are
    /// swapped in as they are resolved).
    pub dns: Option<Arc<Template>>,
    pub hash_key: Option<HashKey>,
    pub retries: u32,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub websocket_idle_timeout: Duration,
    pub health_check: Option<HealthCheckConfig>,
    pub passive: PassiveConfig,
    pub protocol: crate::config::Protocol,
    /// This service's `tidegate_upstream_response_duration_seconds` series, resolved once.
    pub upstream_duration: std::sync::OnceLock<prometheus::Histogram>,
}

/// Endpoints a request already tried, so retries go elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tried {
    list: [u32; MAX_RETRIES as usize + 1],
    len: u8,
}

impl Tried {
    pub fn add(&mut self, index: usize) {
        if (self.len as usize) < self.list.len() {
            self.list[self.len as usize] = index as u32;
            self.len += 1;
        }
    }
    pub fn contains(&self, index: usize) -> bool {
        self.list[..self.len as usize].contains(&(index as u32))
    }
    pub fn count(&self) -> usize {
        self.len as usize
    }
}

impl Service {
    /// Compiles a service. A registry-bound service starts with `discovered` (the last known
    /// instances, possibly none yet); a static one with its configured endpoints. What cannot
    /// be built is reported at its position.
    pub fn build(
        config: &ServiceConfig,
        states: &EndpointStates,
        discovered: Option<(u64, &[EndpointSpec])>,
        report: &mut dyn FnMut(Option<Range<usize>>, String),
    ) -> Option<Service> {
        let name: Arc<str> = config.name.get_ref().as_str().into();
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let read_timeout = Duration::from_millis(config.read_timeout_ms);
        let settings = PeerSettings {
            connect_timeout,
            read_timeout,
            write_timeout: Duration::from_millis(config.write_timeout_ms),
            pool_idle_timeout: Duration::from_millis(config.pool_idle_timeout_ms),
            protocol: config.protocol,
            tls: None,
        };
        let mut settings = settings;
        if config.protocol.tls() {
            match upstream_tls(config) {
                Ok(tls) => settings.tls = Some(tls),
                Err(e) => {
                    report(
                        Some(
                            config
                                .tls
                                .as_ref()
                                .map_or(config.name.span(), toml::Spanned::span),
                        ),
                        e,
                    );
                    return None;
                }
            }
        }
        let nacos = config.nacos.as_ref().map(|b| b.get_ref().key());
        let kubernetes = config
            .kubernetes
            .as_ref()
            .map(|b| b.get_ref().keys())
            .unwrap_or_default();
        let discovers = nacos.is_some() || !kubernetes.is_empty();
        let mut dns = None;
        let specs = match (discovers, discovered) {
            (true, Some((version, specs))) => Some((version, specs.to_vec())),
            (true, None) => Some((0, Vec::new())),
            (false, _) => configured_endpoints(config, report).map(|template| {
                // Names get their addresses from `discovery::dns` once the service is built.
                let specs = template.expand(&|_| None);
                if template.names().next().is_some() {
                    dns = Some(Arc::new(template));
                }
                (0, specs)
            }),
        };
        let hash_key = match &config.hash_key {
            Some(k) => match HashKey::parse(k.get_ref()) {
                Ok(key) => Some(key),
                Err(e) => {
                    report(Some(k.span()), e);
                    return None;
                }
            },
            None => None,
        };
        let (version, specs) = specs?;
        let members = Members::build(&name, version, &specs, config.lb, &settings, states);
        Some(Service {
            name,
            members: ArcSwap::from_pointee(members),
            lb: config.lb,
            settings,
            nacos,
            kubernetes,
            dns,
            hash_key,
            retries: *config.retries.get_ref(),
            connect_timeout,
            read_timeout,
            websocket_idle_timeout: Duration::from_millis(config.websocket_idle_timeout_ms),
            health_check: config.health_check.clone(),
            passive: config.passive.clone(),
            protocol: config.protocol,
            upstream_duration: std::sync::OnceLock::new(),
        })
    }

    /// The endpoints now. A request keeps what it got here for all its attempts.
    pub fn members(&self) -> Arc<Members> {
        self.members.load_full()
    }

    /// Swaps in endpoints from the registry; requests already running keep their old set.
    pub fn replace_members(&self, version: u64, specs: &[EndpointSpec], states: &EndpointStates) {
        let members = Members::build(&self.name, version, specs, self.lb, &self.settings, states);
        self.members.store(Arc::new(members));
    }

    /// The `lb = "hash"` key of a request (empty when there is none or no hashing).
    pub fn key_for<'a>(
        &self,
        session: &'a pingora_proxy::Session,
        client_ip: &'a str,
    ) -> std::borrow::Cow<'a, [u8]> {
        self.hash_key
            .as_ref()
            .map_or(std::borrow::Cow::Borrowed(&[]), |k| {
                k.extract(session, client_ip)
            })
    }
}

/// The TLS settings of a `https`/`grpcs` service, its CA bundle loaded.
fn upstream_tls(config: &ServiceConfig) -> Result<UpstreamTls, String> {
    let tls = config.tls.as_ref().map(toml::Spanned::get_ref);
    let ca = match tls.and_then(|t| t.ca.as_deref()) {
        Some(spec) => {
            let path = spec.strip_prefix("file:").unwrap_or(spec);
            let pem = std::fs::read(path).map_err(|e| format!("cannot read tls.ca {path}: {e}"))?;
            let certs = openssl::x509::X509::stack_from_pem(&pem)
                .map_err(|e| format!("tls.ca {path}: not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err(format!("tls.ca {path}: no certificate in the file"));
            }
            Some((Arc::new(certs.into_boxed_slice()), path.to_string()))
        }
        None => None,
    };
    Ok(UpstreamTls {
        sni: tls.and_then(|t| t.sni.clone()).unwrap_or_default(),
        host_from_name: tls.is_none_or(|t| t.host == crate::config::services::TlsHost::Name),
        verify: tls.is_none_or(|t| t.verify),
        ca,
    })
}

/// The endpoints of the config file: addresses, and names to resolve.
fn configured_endpoints(
    config: &ServiceConfig,
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) -> Option<Template> {
    use crate::config::dns::{parse_endpoint_addr, EndpointAddr};
    let mut entries = Vec::with_capacity(config.endpoints.get_ref().len());
    for e in config.endpoints.get_ref() {
        match parse_endpoint_addr(e.addr.get_ref()) {
            Ok(EndpointAddr::Ip(addr)) => entries.push(Entry::Addr(EndpointSpec {
                addr,
                weight: e.weight,
                labels: e.labels.clone(),
                name: None,
            })),
            Ok(EndpointAddr::Name(name, port)) => entries.push(Entry::Name {
                name: name.into(),
                port,
                weight: e.weight,
                labels: e.labels.clone(),
            }),
            Err(err) => {
                report(
                    Some(e.addr.span()),
                    format!("bad endpoint address {:?}: {err}", e.addr.get_ref()),
                );
                return None;
            }
        }
    }
    Some(Template { entries })
}

#[cfg(test)]
mod tests;
