//! A service's endpoints as configured, when some are given by DNS name: each entry is an
//! address, or a name whose every address becomes an endpoint with the entry's port, weight
//! and labels. The addresses come from `discovery::dns` (the last good answer per name);
//! [`Template::expand`] turns the entries and those answers into the endpoint list.

use super::EndpointSpec;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Addr(EndpointSpec),
    Name {
        name: Arc<str>,
        port: u16,
        weight: u32,
        labels: BTreeMap<String, String>,
    },
}

/// The configured entries of a service with at least one name.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub entries: Vec<Entry>,
}

impl Template {
    /// The names this service's endpoints come from, each once.
    pub fn names(&self) -> impl Iterator<Item = &Arc<str>> {
        let mut seen = Vec::new();
        self.entries.iter().filter_map(move |e| match e {
            Entry::Name { name, .. } if !seen.contains(name) => {
                seen.push(name.clone());
                Some(name)
            }
            _ => None,
        })
    }

    pub fn uses(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|e| matches!(e, Entry::Name { name: n, .. } if &**n == name))
    }

    /// The endpoints: addresses as they are, names as the addresses `resolved` gives for
    /// them (none yet: no endpoint from that entry).
    pub fn expand(&self, resolved: &dyn Fn(&str) -> Option<Arc<Vec<IpAddr>>>) -> Vec<EndpointSpec> {
        let mut out = Vec::with_capacity(self.entries.len());
        for entry in &self.entries {
            match entry {
                Entry::Addr(spec) => out.push(spec.clone()),
                Entry::Name {
                    name,
                    port,
                    weight,
                    labels,
                } => {
                    for ip in resolved(name).iter().flat_map(|a| a.iter()) {
                        out.push(EndpointSpec {
                            addr: SocketAddr::new(*ip, *port),
                            weight: *weight,
                            labels: labels.clone(),
                            name: Some(name.clone()),
                        });
                    }
                }
            }
        }
        out
    }
}
