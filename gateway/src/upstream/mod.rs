//! Upstream services: endpoints, load balancing and the peers Pingora connects to.

mod config;
mod hash_key;
mod state;

pub use config::{
    EndpointConfig, HealthCheckConfig, LbKind, PassiveConfig, ServiceConfig, MAX_RETRIES,
};
pub use hash_key::HashKey;
pub use state::{EndpointState, EndpointStates};

use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_load_balancing::selection::{BackendIter, BackendSelection, Consistent, RoundRobin};
use pingora_load_balancing::Backend;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub weight: u32,
    pub labels: BTreeMap<String, String>,
    /// Template cloned for every request; its options decide the connection pool key, so an
    /// unchanged endpoint keeps its pooled connections across reloads.
    pub peer: HttpPeer,
    pub state: Arc<EndpointState>,
}

enum Balancer {
    RoundRobin(Arc<RoundRobin>),
    Hash(Arc<Consistent>),
    LeastConn(AtomicUsize),
}

impl std::fmt::Debug for Balancer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Balancer::RoundRobin(_) => "RoundRobin",
            Balancer::Hash(_) => "Hash",
            Balancer::LeastConn(_) => "LeastConn",
        })
    }
}

#[derive(Debug)]
pub struct Service {
    pub name: Arc<str>,
    pub endpoints: Vec<Endpoint>,
    balancer: Balancer,
    pub hash_key: Option<HashKey>,
    pub retries: u32,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub websocket_idle_timeout: Duration,
    pub health_check: Option<HealthCheckConfig>,
    pub passive: PassiveConfig,
    subset_cursor: AtomicUsize,
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
    pub fn build(config: &ServiceConfig, states: &EndpointStates) -> Result<Service, String> {
        let name: Arc<str> = config.name.get_ref().as_str().into();
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let read_timeout = Duration::from_millis(config.read_timeout_ms);
        let write_timeout = Duration::from_millis(config.write_timeout_ms);
        let mut endpoints = Vec::new();
        for e in config.endpoints.get_ref() {
            let addr: SocketAddr = e
                .addr
                .get_ref()
                .parse()
                .map_err(|err| format!("bad endpoint address {:?}: {err}", e.addr.get_ref()))?;
            let mut peer = HttpPeer::new(addr, false, String::new());
            peer.options.connection_timeout = Some(connect_timeout);
            peer.options.read_timeout = Some(read_timeout);
            peer.options.write_timeout = Some(write_timeout);
            peer.options.idle_timeout = Some(Duration::from_millis(config.pool_idle_timeout_ms));
            endpoints.push(Endpoint {
                addr,
                weight: e.weight,
                labels: e.labels.clone(),
                peer,
                state: states.get(&name, addr),
            });
        }
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
        let balancer = match config.lb {
            LbKind::RoundRobin => Balancer::RoundRobin(Arc::new(RoundRobin::build(&backends))),
            LbKind::Hash => Balancer::Hash(Arc::new(Consistent::build(&backends))),
            LbKind::LeastConn => Balancer::LeastConn(AtomicUsize::new(0)),
        };
        let hash_key = match &config.hash_key {
            Some(k) => Some(HashKey::parse(k.get_ref())?),
            None => None,
        };
        Ok(Service {
            name,
            endpoints,
            balancer,
            hash_key,
            retries: *config.retries.get_ref(),
            connect_timeout,
            read_timeout,
            websocket_idle_timeout: Duration::from_millis(config.websocket_idle_timeout_ms),
            health_check: config.health_check.clone(),
            passive: config.passive.clone(),
            subset_cursor: AtomicUsize::new(0),
        })
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

#[cfg(test)]
mod tests;
