//! The router: compiled once per snapshot from `[[routes]]`, then read by every request.
//!
//! Precedence, in order (first match wins):
//! 1. host tier: exact host names, then wildcards (longest suffix first), then routes with no
//!    `hosts`; a tier whose routes do not fit the request falls through to the next tier;
//! 2. within a tier, path: exact (`=/x`), then prefixes from longest to shortest, then
//!    regexes (`~…`) in file order;
//! 3. among routes with the same host and path, those with more predicates (methods,
//!    headers, cookies, query parameters: see [`predicates`]) are tried first, then file
//!    order; a route is taken when all its predicates fit.
//!
//! Lookup cost depends on the host and path length, not on the number of routes: hosts are
//! hash-map keys and prefixes live in a radix tree.

mod host;
mod path;
mod predicates;
mod radix;
mod subset;

pub use host::normalize as normalize_host;
pub use path::{normalize as normalize_path, PathError, PathPattern, PathPolicy};
pub use subset::{Labels, SubsetSelector};

use crate::config::{RouteConfig, TunnelPolicy};
use crate::upstream::Service;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use predicates::{header_pairs, Predicates};
use radix::RadixTree;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What a matched route does with the request.
#[derive(Debug)]
pub enum RouteAction {
    Proxy(Arc<Service>),
    Respond(DirectResponse),
    Redirect { location: HeaderValue, status: u16 },
}

#[derive(Debug)]
pub struct DirectResponse {
    pub status: u16,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// A compiled route.
pub struct Route {
    pub name: Arc<str>,
    pub action: RouteAction,
    pub strip_prefix: bool,
    pub websocket_idle_timeout: Duration,
    pub on_route_change: TunnelPolicy,
    pub drain_window: Duration,
    /// Global plugins then the route's, in phase order.
    pub plugins: tidegate_plugins::Chain,
    /// Label subset or split of the service's endpoints.
    pub subsets: Option<SubsetSelector>,
    /// Redirect plain-HTTP requests to `https://`.
    pub https_redirect: bool,
    /// `Strict-Transport-Security` for responses over TLS.
    pub hsts: Option<HeaderValue>,
    /// This route's series of the per-request metrics.
    pub series: crate::metrics::RouteSeries,
    pattern: PathPattern,
    predicates: Predicates,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Route {
    fn fits(&self, req: &Parts) -> bool {
        self.predicates.fit(req)
    }

    fn specificity(&self) -> u32 {
        self.predicates.count()
    }

    pub fn service(&self) -> Option<&Arc<Service>> {
        match &self.action {
            RouteAction::Proxy(s) => Some(s),
            _ => None,
        }
    }
}

/// A successful lookup: the route and, for prefix routes, how many path bytes it matched.
pub struct Match<'a> {
    pub route: &'a Arc<Route>,
    pub prefix_len: usize,
}

#[derive(Default)]
struct PathTable {
    exact: FxHashMap<Box<str>, Vec<u32>>,
    prefix: RadixTree,
    regex: Vec<u32>,
}

impl PathTable {
    fn add(&mut self, index: u32, route: &Route) {
        match &route.pattern {
            PathPattern::Exact(p) => self.exact.entry(p.as_str().into()).or_default().push(index),
            PathPattern::Prefix(p) => self.prefix.insert(p.as_bytes(), index),
            PathPattern::Regex(_) => self.regex.push(index),
        }
    }

    fn lookup<'r>(&self, routes: &'r [Arc<Route>], path: &str, req: &Parts) -> Option<Match<'r>> {
        let fits = |i: &u32| routes[*i as usize].fits(req);
        if let Some(list) = self.exact.get(path) {
            if let Some(i) = list.iter().find(|i| fits(i)) {
                return Some(Match {
                    route: &routes[*i as usize],
                    prefix_len: path.len(),
                });
            }
        }
        for (depth, list) in self.prefix.matches(path.as_bytes()) {
            if let Some(i) = list.iter().find(|i| fits(i)) {
                return Some(Match {
                    route: &routes[*i as usize],
                    prefix_len: depth,
                });
            }
        }
        self.regex
            .iter()
            .find(|i| {
                let route = &routes[**i as usize];
                matches!(&route.pattern, PathPattern::Regex(re) if re.is_match(path))
                    && route.fits(req)
            })
            .map(|i| Match {
                route: &routes[*i as usize],
                prefix_len: 0,
            })
    }

    fn finish(&mut self, routes: &[Arc<Route>]) {
        // Within one path, more specific routes first; the sort is stable so file order
        // breaks ties.
        let order = |list: &mut Vec<u32>| {
            list.sort_by_key(|i| std::cmp::Reverse(routes[*i as usize].specificity()));
        };
        self.exact.values_mut().for_each(order);
        self.prefix.finish_with(order);
    }
}

#[derive(Default)]
pub struct Router {
    routes: Vec<Arc<Route>>,
    by_name: FxHashMap<Arc<str>, u32>,
    exact_hosts: FxHashMap<Box<str>, PathTable>,
    /// Keyed by the suffix including its leading dot: `*.example.org` → `.example.org`.
    wildcard_hosts: FxHashMap<Box<str>, PathTable>,
    any_host: PathTable,
}

impl Router {
    /// Compiles checked route configs. `services` and `plugins` hold the snapshot's compiled
    /// ones; a route whose service or plugin failed to build is left out (that failure is
    /// already reported), and what fails here is reported at its position.
    pub fn build(
        configs: &[RouteConfig],
        services: &HashMap<String, Arc<Service>>,
        plugins: &HashMap<String, Arc<dyn tidegate_plugins::Plugin>>,
        global: &[toml::Spanned<String>],
        report: &mut dyn FnMut(Option<std::ops::Range<usize>>, String),
    ) -> Router {
        let mut router = Router::default();
        for config in configs {
            let Some(mut route) = compile(config, services, report) else {
                continue;
            };
            let names = global.iter().chain(config.plugins.iter());
            let mut chain = Vec::new();
            for name in names {
                let Some(plugin) = plugins.get(name.get_ref()) else {
                    continue;
                };
                if !chain
                    .iter()
                    .any(|p: &Arc<dyn tidegate_plugins::Plugin>| Arc::ptr_eq(p, plugin))
                {
                    chain.push(plugin.clone());
                }
            }
            route.plugins = tidegate_plugins::Chain::new(chain);
            let index = router.routes.len() as u32;
            if config.hosts.is_empty() {
                router.any_host.add(index, &route);
            }
            for host in &config.hosts {
                let host = host.get_ref().to_ascii_lowercase();
                match host.strip_prefix('*') {
                    Some(suffix) => router
                        .wildcard_hosts
                        .entry(suffix.into())
                        .or_default()
                        .add(index, &route),
                    None => router
                        .exact_hosts
                        .entry(host.into())
                        .or_default()
                        .add(index, &route),
                }
            }
            router.by_name.insert(route.name.clone(), index);
            router.routes.push(Arc::new(route));
        }
        let routes = &router.routes;
        router.any_host.finish(routes);
        for table in router.exact_hosts.values_mut() {
            table.finish(routes);
        }
        for table in router.wildcard_hosts.values_mut() {
            table.finish(routes);
        }
        router
    }

    /// Finds the route for a request. `host` must be normalised (see [`normalize_host`]) and
    /// `path` normalised (see [`normalize_path`]); the predicates read the rest of `req`.
    pub fn lookup(&self, host: &str, path: &str, req: &Parts) -> Option<Match<'_>> {
        let routes = &self.routes;
        if !self.exact_hosts.is_empty() {
            if let Some(m) = self
                .exact_hosts
                .get(host)
                .and_then(|t| t.lookup(routes, path, req))
            {
                return Some(m);
            }
        }
        if !self.wildcard_hosts.is_empty() {
            for (i, _) in host.match_indices('.') {
                if let Some(m) = self
                    .wildcard_hosts
                    .get(&host[i..])
                    .and_then(|t| t.lookup(routes, path, req))
                {
                    return Some(m);
                }
            }
        }
        self.any_host.lookup(routes, path, req)
    }

    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Route>> {
        self.by_name.get(name).map(|i| &self.routes[*i as usize])
    }
}

fn compile(
    config: &RouteConfig,
    services: &HashMap<String, Arc<Service>>,
    report: &mut dyn FnMut(Option<std::ops::Range<usize>>, String),
) -> Option<Route> {
    let name: Arc<str> = config.name.get_ref().as_str().into();
    let pattern = match PathPattern::parse(config.path.get_ref()) {
        Ok(p) => p,
        Err(e) => {
            report(Some(config.path.span()), e);
            return None;
        }
    };
    let (action, idle) = if let Some(service) = &config.service {
        // Absent when the service failed to build (reported there).
        let service = services.get(service.get_ref())?.clone();
        let idle = service.websocket_idle_timeout;
        (RouteAction::Proxy(service), idle)
    } else if let Some(respond) = &config.respond {
        let response = DirectResponse {
            status: *respond.status.get_ref(),
            body: Bytes::from(respond.body.clone()),
            headers: header_pairs(respond.headers.get_ref()),
        };
        (RouteAction::Respond(response), Duration::ZERO)
    } else if let Some(redirect) = &config.redirect {
        let location = HeaderValue::from_str(redirect.to.get_ref()).ok()?;
        let action = RouteAction::Redirect {
            location,
            status: *redirect.status.get_ref(),
        };
        (action, Duration::ZERO)
    } else {
        return None;
    };
    Some(Route {
        name,
        action,
        strip_prefix: config.strip_prefix,
        websocket_idle_timeout: config
            .websocket_idle_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(idle),
        on_route_change: config.on_route_change,
        drain_window: Duration::from_secs(config.drain_window_seconds),
        plugins: tidegate_plugins::Chain::default(),
        subsets: SubsetSelector::new(config),
        https_redirect: config.https_redirect,
        hsts: config
            .hsts
            .as_ref()
            .and_then(|h| HeaderValue::from_str(h.get_ref()).ok()),
        pattern,
        predicates: Predicates::new(config),
        series: crate::metrics::RouteSeries::default(),
    })
}

#[cfg(test)]
mod tests;
