//! The endpoints of a service at one moment, with their balancer. A service holds its
//! members behind an atomic pointer: service discovery swaps in a new set without rebuilding
//! the snapshot, and a request keeps the set it started with, so the endpoint indices of its
//! retries stay meaningful.

use super::{EndpointState, EndpointStates, Tried};
use crate::config::LbKind;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::upstreams::peer::{HttpPeer, Peer};
use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent, RoundRobin};
use pingora_load_balancing::Backend;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What an endpoint is, before it gets state and a peer: from the config file or from a
/// registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndpointSpec {
    pub addr: SocketAddr,
    /// 0 takes no traffic (Nacos: weight 0, disabled or unhealthy).
    pub weight: u32,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The DNS name this address was resolved from (endpoints configured by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Arc<str>>,
}

#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    /// The DNS name the address came from, if it was configured by name.
    pub name: Option<Arc<str>>,
    /// The Host header requests to this endpoint carry instead of the client's (a TLS
    /// endpoint by name: its name, and port unless 443).
    pub host: Option<http::HeaderValue>,
    /// Template cloned for every request; its options decide the connection pool key, so an
    /// unchanged endpoint keeps its pooled connections across reloads.
    pub peer: HttpPeer,
    /// `peer`'s settings as one number (Pingora's `reuse_hash`), computed once: an idle
    /// connection is reused only for the same settings.
    pub reuse_key: u64,
    pub state: Arc<EndpointState>,
}

/// Connection settings every endpoint of a service shares.
#[derive(Debug, Clone)]
pub struct PeerSettings {
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
    pub pool_idle_timeout: Duration,
    pub protocol: crate::config::Protocol,
    pub tls: Option<UpstreamTls>,
}

/// How a TLS upstream is checked.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// `tls.sni`; empty: an endpoint by name sends its name (one by IP, none).
    pub sni: String,
    /// Endpoints by name get their name as Host (else the client's Host goes on).
    pub host_from_name: bool,
    pub verify: bool,
    /// CAs to trust instead of the system's, and a key that keeps their pooled connections
    /// apart from other services' (Pingora does not hash the CA into its pool key).
    pub ca: Option<(Arc<Box<[openssl::x509::X509]>>, String)>,
}

enum Balancer {
    RoundRobin(Arc<RoundRobin>),
    Hash(Arc<Consistent>),
    LeastConn(AtomicUsize),
}

pub struct Members {
    /// Registry version these came from (0 for endpoints from the config file).
    pub version: u64,
    pub endpoints: Vec<Endpoint>,
    balancer: Balancer,
    subset_cursor: AtomicUsize,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("version", &self.version)
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl Members {
    pub fn build(
        service: &str,
        version: u64,
        specs: &[EndpointSpec],
        lb: LbKind,
        settings: &PeerSettings,
        states: &EndpointStates,
    ) -> Members {
        let endpoints: Vec<Endpoint> = specs
            .iter()
            .map(|spec| {
                let tls = settings.tls.as_ref();
                let name = spec.name.as_deref();
                let sni = match tls {
                    Some(t) if !t.sni.is_empty() => t.sni.clone(),
                    Some(_) => name.unwrap_or_default().to_string(),
                    None => String::new(),
                };
                let host = match (tls, name) {
                    (Some(t), Some(name)) if t.host_from_name => {
                        let host = match spec.addr.port() {
                            443 => name.to_string(),
                            port => format!("{name}:{port}"),
                        };
                        http::HeaderValue::from_str(&host).ok()
                    }
                    _ => None,
                };
                let mut peer = HttpPeer::new(spec.addr, settings.protocol.tls(), sni);
                if let Some(tls) = tls {
                    peer.options.verify_cert = tls.verify;
                    peer.options.verify_hostname = tls.verify;
                    if let Some((ca, key)) = &tls.ca {
                        peer.options.ca = Some(ca.clone());
                        peer.group_key = fnv(key.as_bytes());
                    }
                }
                if settings.protocol.grpc() {
                    // HTTP/2 only (prior knowledge in plain text), many calls on one connection.
                    peer.options.set_http_version(2, 2);
                    peer.options.max_h2_streams = 100;
                }
                peer.options.connection_timeout = Some(settings.connect_timeout);
                peer.options.read_timeout = Some(settings.read_timeout);
                peer.options.write_timeout = Some(settings.write_timeout);
                peer.options.idle_timeout = Some(settings.pool_idle_timeout);
                Endpoint {
                    reuse_key: peer.reuse_hash(),
                    addr: spec.addr,
                    weight: spec.weight,
                    labels: spec.labels.clone(),
                    name: spec.name.clone(),
                    host,
                    peer,
                    state: states.get(service, spec.addr),
                }
            })
            .collect();
        let backends: BTreeSet<Backend> = endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.weight > 0)
            .map(|(i, e)| {
                let mut b = Backend {
                    addr: PingoraAddr::Inet(e.addr),
                    weight: e.weight as usize,
                    ext: Default::default(),
                };
                b.ext.insert(i);
                b
            })
            .collect();
        let balancer = match lb {
            LbKind::RoundRobin => Balancer::RoundRobin(Arc::new(RoundRobin::build(&backends))),
            LbKind::Hash => Balancer::Hash(Arc::new(Consistent::build(&backends))),
            LbKind::LeastConn => Balancer::LeastConn(AtomicUsize::new(0)),
        };
        Members {
            version,
            endpoints,
            balancer,
            subset_cursor: AtomicUsize::new(0),
        }
    }

    /// How many endpoints are in each state, as `tidegate_service_endpoints` shows them:
    /// `usable`, `unhealthy` (active checks), `ejected` (passive checks), `weight_zero`.
    pub fn state_counts(&self) -> [(&'static str, i64); 4] {
        let mut counts = [
            ("usable", 0),
            ("unhealthy", 0),
            ("ejected", 0),
            ("weight_zero", 0),
        ];
        for e in &self.endpoints {
            let i = if e.weight == 0 {
                3
            } else if !e.state.is_healthy() {
                1
            } else if e.state.is_ejected() {
                2
            } else {
                0
            };
            counts[i].1 += 1;
        }
        counts
    }

    /// Endpoints that may take traffic (weight above 0).
    pub fn usable_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.weight > 0).count()
    }

    /// Picks an endpoint not yet tried. `key` feeds `lb = "hash"`.
    pub fn select(&self, key: &[u8], tried: &Tried) -> Option<usize> {
        self.select_in(key, tried, None)
    }

    /// Like [`Self::select`], among endpoints carrying all of `labels`. Endpoints that are
    /// unhealthy or ejected are skipped — unless every candidate is; then health is ignored
    /// (trying a maybe-dead endpoint beats refusing everything).
    pub fn select_in(
        &self,
        key: &[u8],
        tried: &Tried,
        labels: Option<&[(String, String)]>,
    ) -> Option<usize> {
        self.pick(key, tried, labels, true)
            .or_else(|| self.pick(key, tried, labels, false))
    }

    fn pick(
        &self,
        key: &[u8],
        tried: &Tried,
        labels: Option<&[(String, String)]>,
        healthy_only: bool,
    ) -> Option<usize> {
        let fits = |i: usize| {
            labels.is_none_or(|want| {
                want.iter()
                    .all(|(k, v)| self.endpoints[i].labels.get(k) == Some(v))
            })
        };
        let usable = |i: usize| {
            !tried.contains(i)
                && self.endpoints[i].weight > 0
                && fits(i)
                && (!healthy_only || self.endpoints[i].state.available())
        };
        if labels.is_some() {
            if let Balancer::RoundRobin(_) = &self.balancer {
                // Weighted round robin within the subset, exact in proportion.
                let total: u64 = (0..self.endpoints.len())
                    .filter(|&i| usable(i))
                    .map(|i| self.endpoints[i].weight as u64)
                    .sum();
                if total == 0 {
                    return None;
                }
                let mut point = self.subset_cursor.fetch_add(1, Ordering::Relaxed) as u64 % total;
                for i in (0..self.endpoints.len()).filter(|&i| usable(i)) {
                    let w = self.endpoints[i].weight as u64;
                    if point < w {
                        return Some(i);
                    }
                    point -= w;
                }
                return None;
            }
        }
        match &self.balancer {
            Balancer::RoundRobin(rr) => first_usable(rr.iter(key), self.endpoints.len(), usable),
            Balancer::Hash(ring) => first_usable(ring.iter(key), self.endpoints.len(), usable),
            Balancer::LeastConn(cursor) => {
                // Least active per unit of weight; the rotating start spreads ties.
                let n = self.endpoints.len();
                let start = cursor.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| usable(i))
                    .min_by_key(|&i| {
                        let e = &self.endpoints[i];
                        let active = e.state.active.load(Ordering::Relaxed) as u64;
                        (active * 1_000_000) / e.weight as u64
                    })
            }
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn first_usable<I: BackendIter>(
    mut iter: I,
    endpoints: usize,
    usable: impl Fn(usize) -> bool,
) -> Option<usize> {
    // Pingora's iterators fall back to pseudo-random order after the first pick, and hash
    // rings walk on; a few rounds over the endpoints find any usable one with high odds, and
    // a final scan makes it certain.
    for _ in 0..endpoints * 4 + 4 {
        let backend = iter.next()?;
        let index = *backend.ext.get::<usize>()?;
        if usable(index) {
            return Some(index);
        }
    }
    (0..endpoints).find(|&i| usable(i))
}
