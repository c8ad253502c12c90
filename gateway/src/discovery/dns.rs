//! Endpoints by DNS name: the last good addresses of every name the config's endpoints use,
//! pushed into the serving snapshot's services in place — the same model as registry
//! discovery ([`super::Discovery`]), with a name in the place of a registry service.
//!
//! Why a store of its own beside the registry's, and not registry entries: a registry binds
//! a whole service to one watched list, while a DNS name is one *entry* of a service's
//! `endpoints` (with its own port, weight and labels, next to addresses and other names),
//! and one name may serve several services. So what is kept per name is the answer — the
//! addresses — and a service's endpoints are its entries expanded with the answers
//! ([`Template::expand`]). The rest works as for the registry: a reload starts from the
//! known answers, an answer that arrives while a snapshot is built is caught up after the
//! swap (one generation counter plays the registry's versions), a resolution that fails or
//! comes back empty never empties a service (the last addresses stay, marked stale), and
//! the endpoint metrics are published on every change. The resolver that feeds it runs
//! beside the data path (`crate::resolver`).

use crate::upstream::{EndpointStates, Service, Template};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[derive(Default)]
pub struct Names {
    entries: Mutex<HashMap<Arc<str>, Resolved>>,
    /// Bumped by every change of any name's addresses: what a DNS service's members were
    /// built from (their `version`), so a snapshot built before a change is caught up.
    generation: AtomicU64,
    /// Held while a change is recorded and pushed, and while a new snapshot catches up.
    push_lock: Mutex<()>,
}

#[derive(Default)]
struct Resolved {
    /// Sorted: answers in another order are the same answer.
    addresses: Option<Arc<Vec<IpAddr>>>,
    changed_at: Option<SystemTime>,
    last_success: Option<Instant>,
    /// The last failure, while it is the latest outcome.
    failing: Option<String>,
    /// When the resolver asks again.
    next_at: Option<Instant>,
}

/// One name as the admin API shows it.
#[derive(serde::Serialize)]
pub struct NameStatus {
    pub addresses: Vec<String>,
    /// Set while the latest resolution failed: the addresses above are the last good ones.
    pub stale: Option<String>,
    pub changed_at: Option<String>,
    pub last_success_ms_ago: Option<u64>,
    pub next_in_ms: Option<u64>,
}

impl Names {
    /// The addresses of `name` now (None before its first good answer).
    pub fn addresses(&self, name: &str) -> Option<Arc<Vec<IpAddr>>> {
        self.entries.lock().get(name)?.addresses.clone()
    }

    /// A DNS service's endpoints from the answers known now, and their generation.
    fn expanded(&self, template: &Template) -> (u64, Vec<crate::upstream::EndpointSpec>) {
        let entries = self.entries.lock();
        let generation = self.generation.load(Ordering::Relaxed);
        let specs = template.expand(&|name| entries.get(name)?.addresses.clone());
        (generation, specs)
    }

    /// Gives a just-built service the addresses known now (it was built with none).
    pub fn fill(&self, service: &Service, states: &EndpointStates) {
        if let Some(template) = &service.dns {
            let (generation, specs) = self.expanded(template);
            service.replace_members(generation, &specs, states);
        }
    }

    /// A good answer for `name`: when it differs from the known addresses, every service
    /// of `services` (the serving snapshot's) that uses the name gets its new endpoints.
    /// Returns whether anything changed.
    pub fn push<'s>(
        &self,
        name: &str,
        mut addresses: Vec<IpAddr>,
        next_at: Instant,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) -> bool {
        addresses.sort();
        addresses.dedup();
        let _in_order = self.push_lock.lock();
        {
            let mut entries = self.entries.lock();
            let entry = entries.entry(name.into()).or_default();
            entry.last_success = Some(Instant::now());
            entry.next_at = Some(next_at);
            if let Some(why) = entry.failing.take() {
                log::info!("dns: {name} resolves again (after: {why})");
            }
            if entry.addresses.as_deref() == Some(&addresses) {
                return false;
            }
            log::info!(
                "dns: {name} is {}",
                addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            crate::metrics::get()
                .dns_addresses
                .with_label_values(&[name])
                .set(addresses.len() as i64);
            entry.addresses = Some(Arc::new(addresses));
            entry.changed_at = Some(SystemTime::now());
            self.generation.fetch_add(1, Ordering::Relaxed);
        }
        for service in services {
            if service.dns.as_ref().is_some_and(|t| t.uses(name)) {
                self.fill(service, states);
            }
        }
        states.retain_used();
        true
    }

    /// A resolution of `name` failed (or answered no address): the last addresses stay.
    /// Returns whether the name has any (what a caller logs differs).
    pub fn failed(&self, name: &str, why: String, next_at: Instant) -> bool {
        let mut entries = self.entries.lock();
        let entry = entries.entry(name.into()).or_default();
        entry.failing = Some(why);
        entry.next_at = Some(next_at);
        entry.addresses.is_some()
    }

    /// Ask for `name` at once next time (a new resolver).
    pub fn reset_due(&self, name: &str) {
        if let Some(e) = self.entries.lock().get_mut(name) {
            e.next_at = None;
        }
    }

    /// When the resolver should next ask for `name` (None: at once).
    pub fn due(&self, name: &str) -> Option<Instant> {
        self.entries.lock().get(name)?.next_at
    }

    /// After a swap: DNS services built from older answers than the latest catch up.
    pub fn catch_up<'s>(
        &self,
        services: impl IntoIterator<Item = &'s Arc<Service>>,
        states: &EndpointStates,
    ) {
        let _in_order = self.push_lock.lock();
        let generation = self.generation.load(Ordering::Relaxed);
        for service in services {
            if service.dns.is_some() && service.members().version != generation {
                self.fill(service, states);
            }
        }
    }

    /// Forgets names no config uses any more (and their metric series).
    pub fn retain(&self, wanted: &HashSet<Arc<str>>) {
        let mut entries = self.entries.lock();
        let m = crate::metrics::get();
        entries.retain(|name, _| {
            let keep = wanted.contains(name);
            if !keep {
                let _ = m.dns_addresses.remove_label_values(&[name]);
                for result in RESULTS {
                    let _ = m.dns_resolutions.remove_label_values(&[name, result]);
                }
            }
            keep
        });
    }

    pub fn status(&self) -> BTreeMap<String, NameStatus> {
        let now = Instant::now();
        self.entries
            .lock()
            .iter()
            .map(|(name, e)| {
                (
                    name.to_string(),
                    NameStatus {
                        addresses: e
                            .addresses
                            .iter()
                            .flat_map(|a| a.iter())
                            .map(ToString::to_string)
                            .collect(),
                        stale: e.failing.clone(),
                        changed_at: e.changed_at.map(crate::time::rfc3339_millis),
                        last_success_ms_ago: e.last_success.map(|t| t.elapsed().as_millis() as u64),
                        next_in_ms: e
                            .next_at
                            .map(|t| t.saturating_duration_since(now).as_millis() as u64),
                    },
                )
            })
            .collect()
    }
}

/// The `result` label values of `tidegate_dns_resolutions_total`.
pub const RESULTS: [&str; 3] = ["ok", "error", "empty"];

/// Every name a snapshot's services use.
pub fn names_of<'s>(services: impl IntoIterator<Item = &'s Arc<Service>>) -> HashSet<Arc<str>> {
    services
        .into_iter()
        .filter_map(|s| s.dns.as_ref())
        .flat_map(|t| t.names().cloned().collect::<Vec<_>>())
        .collect()
}

/// The metric series of every name in use, at zero before the first resolution.
pub fn declare_metrics<'s>(services: impl IntoIterator<Item = &'s Arc<Service>>) {
    let m = crate::metrics::get();
    for name in names_of(services) {
        for result in RESULTS {
            m.dns_resolutions.with_label_values(&[&name, result]);
        }
        m.dns_addresses.with_label_values(&[&name]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Source};

    fn service(states: &EndpointStates) -> Arc<Service> {
        let text = "[[services]]\nname = \"s\"\nendpoints = [{ addr = \"10.0.0.1:80\" }, { addr = \"api.test:8080\", weight = 2, labels = { stage = \"blue\" } }]\n";
        let config = Config::parse(&Source::new("t", text)).expect("valid");
        let built = Service::build(&config.services[0], states, None, &mut |_, e| panic!("{e}"))
            .expect("builds");
        Arc::new(built)
    }

    fn addrs(s: &Service) -> Vec<String> {
        s.members()
            .endpoints
            .iter()
            .map(|e| format!("{} w{} {:?}", e.addr, e.weight, e.name.as_deref()))
            .collect()
    }

    #[test]
    fn answers_expand_in_place_are_kept_on_failure_and_caught_up() {
        let (names, states) = (Names::default(), EndpointStates::default());
        let s = service(&states);
        names.fill(&s, &states);
        // Before any answer: only the address entry.
        assert_eq!(addrs(&s), ["10.0.0.1:80 w1 None"]);
        let later = Instant::now() + std::time::Duration::from_secs(5);
        let answer: Vec<IpAddr> = vec!["10.0.0.3".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        assert!(names.push("api.test", answer.clone(), later, [&s], &states));
        assert_eq!(
            addrs(&s),
            [
                "10.0.0.1:80 w1 None",
                "10.0.0.2:8080 w2 Some(\"api.test\")",
                "10.0.0.3:8080 w2 Some(\"api.test\")"
            ]
        );
        assert_eq!(s.members().endpoints[1].labels["stage"], "blue");
        // The same answer in another order changes nothing.
        let mut reordered = answer.clone();
        reordered.reverse();
        assert!(!names.push("api.test", reordered, later, [&s], &states));
        // A failure keeps the addresses, marked stale.
        assert!(names.failed("api.test", "timeout".into(), later));
        assert_eq!(s.members().endpoints.len(), 3);
        assert_eq!(names.status()["api.test"].stale.as_deref(), Some("timeout"));
        // A service built from older answers (a snapshot being compiled) catches up.
        let rebuilt = service(&states);
        assert_eq!(rebuilt.members().endpoints.len(), 1);
        assert!(names.push(
            "api.test",
            vec!["10.0.0.4".parse().unwrap()],
            later,
            [],
            &states
        ));
        names.catch_up([&rebuilt, &s], &states);
        assert_eq!(
            addrs(&rebuilt),
            ["10.0.0.1:80 w1 None", "10.0.0.4:8080 w2 Some(\"api.test\")"]
        );
        assert_eq!(addrs(&s), addrs(&rebuilt));
        assert!(names.status()["api.test"].stale.is_none());
        // A name no config uses is forgotten.
        names.retain(&HashSet::new());
        assert!(names.addresses("api.test").is_none());
    }
}
