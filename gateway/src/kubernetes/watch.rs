//! The watches and what they know: one list+watch of EndpointSlices per bound Service
//! (`kubernetes.io/service-name=NAME`) and, for the labels, one metadata-only list+watch of
//! the pods per namespace in use — nothing else of the cluster, so a gateway's traffic to the
//! API server grows with the Services it is bound to, not with the cluster.
//!
//! kube's watcher runs the protocol: a paged list, then a watch from its resourceVersion with
//! bookmarks, and a new list when the server answers 410 Gone (the version is too old). Its
//! `Init … InitDone` replays are applied as one replacement, so a relist never shows a
//! half-listed Service. An error keeps what is known (the last list serves) and is retried
//! with a capped backoff.

use super::join::PodLabels;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource, ResourceExt};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A Service's slices, by name; `None` until its first list is complete.
type Slices = Option<HashMap<String, EndpointSlice>>;

/// What the watches have seen, shared with the task that turns it into endpoints.
#[derive(Default)]
pub struct World {
    pub slices: HashMap<(String, String), Slices>,
    /// Pod labels by namespace; `None` until the first list is complete.
    pub pods: HashMap<String, Option<PodLabels>>,
    /// Watches whose last call failed, with the error.
    pub failing: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct Shared {
    pub world: Mutex<World>,
    /// Woken by every change a watch records.
    pub changed: Notify,
}

/// What one watch is of.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Watched {
    Slices { namespace: String, service: String },
    Pods { namespace: String },
}

impl std::fmt::Display for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watched::Slices { namespace, service } => {
                write!(f, "endpointslices of {namespace}/{service}")
            }
            Watched::Pods { namespace } => write!(f, "pods of {namespace}"),
        }
    }
}

/// The watch tasks for the Services in use, started and stopped as the config changes.
#[derive(Default)]
pub struct Watches {
    pub shared: Arc<Shared>,
    tasks: HashMap<Watched, JoinHandle<()>>,
}

impl Watches {
    /// Runs a watch for each of `wanted` (and no other), with `client`.
    pub fn sync(&mut self, client: &kube::Client, wanted: &HashSet<Watched>) {
        self.tasks.retain(|what, task| {
            let keep = wanted.contains(what) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        {
            let mut world = self.shared.world.lock();
            world.slices.retain(|(namespace, service), _| {
                wanted.contains(&Watched::Slices {
                    namespace: namespace.clone(),
                    service: service.clone(),
                })
            });
            world.pods.retain(|namespace, _| {
                wanted.contains(&Watched::Pods {
                    namespace: namespace.clone(),
                })
            });
            world
                .failing
                .retain(|what, _| wanted.iter().any(|w| w.to_string() == *what));
        }
        for what in wanted {
            if self.tasks.contains_key(what) {
                continue;
            }
            let task = tokio::spawn(run(client.clone(), what.clone(), self.shared.clone()));
            self.tasks.insert(what.clone(), task);
        }
    }

    /// Stops every watch (another API server, or no `[kubernetes]`); what they knew stays
    /// until the new ones have listed.
    pub fn stop(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
        let mut world = self.shared.world.lock();
        world.failing.clear();
    }

    /// Whether every watch has completed its first list.
    pub fn listed(&self) -> bool {
        let world = self.shared.world.lock();
        self.tasks.keys().all(|what| match what {
            Watched::Slices { namespace, service } => world
                .slices
                .get(&(namespace.clone(), service.clone()))
                .is_some_and(Option::is_some),
            Watched::Pods { namespace } => world.pods.get(namespace).is_some_and(Option::is_some),
        })
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A change one watch saw.
enum Change<K> {
    /// A complete list (at start, and after 410 Gone): it replaces what was known.
    Listed(Vec<K>),
    Applied(K),
    Deleted(K),
}

async fn run(client: kube::Client, what: Watched, shared: Arc<Shared>) {
    match &what {
        Watched::Slices { namespace, service } => {
            let key = (namespace.clone(), service.clone());
            let config =
                watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
            let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
            follow(
                api,
                config,
                &what,
                "endpointslices",
                &shared,
                |world, change| {
                    let slices = world.slices.entry(key.clone()).or_default();
                    apply(slices, change, |s| (s.name_any(), s));
                },
            )
            .await;
        }
        Watched::Pods { namespace } => {
            let ns = namespace.clone();
            // Metadata only: labels are all the gateway needs of a pod.
            let api: Api<PartialObjectMeta<Pod>> = Api::namespaced(client, namespace);
            follow(
                api,
                watcher::Config::default(),
                &what,
                "pods",
                &shared,
                |world, change| {
                    let pods = world.pods.entry(ns.clone()).or_default();
                    apply(pods, change, |p| {
                        let labels = p.metadata.labels.clone().unwrap_or_default();
                        (p.name_any(), labels)
                    });
                },
            )
            .await;
        }
    }
}

/// Applies a change to what one watch knows: `entry` makes an object into what is kept of
/// it, under its name.
fn apply<K, V>(
    known: &mut Option<HashMap<String, V>>,
    change: Change<K>,
    entry: impl Fn(K) -> (String, V),
) {
    match change {
        Change::Listed(all) => *known = Some(all.into_iter().map(entry).collect()),
        Change::Applied(o) => {
            let (name, value) = entry(o);
            known
                .get_or_insert_with(Default::default)
                .insert(name, value);
        }
        Change::Deleted(o) => {
            if let Some(known) = known {
                known.remove(&entry(o).0);
            }
        }
    }
}

/// Follows one list+watch until the task is aborted.
async fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    what: &Watched,
    kind: &'static str,
    shared: &Shared,
    mut record: impl FnMut(&mut World, Change<K>),
) where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let events = &crate::metrics::get().kubernetes_events;
    let name = what.to_string();
    let mut stream = watcher::watcher(api, config)
        .backoff(Backoff::default())
        .boxed();
    let mut listing: Option<Vec<K>> = None;
    while let Some(event) = stream.next().await {
        let change = match event {
            Ok(Event::Init) => {
                listing = Some(Vec::new());
                continue;
            }
            Ok(Event::InitApply(object)) => {
                listing.get_or_insert_with(Vec::new).push(object);
                continue;
            }
            Ok(Event::InitDone) => {
                events.with_label_values(&[kind, "relisted"]).inc();
                Change::Listed(listing.take().unwrap_or_default())
            }
            Ok(Event::Apply(object)) => {
                events.with_label_values(&[kind, "applied"]).inc();
                Change::Applied(object)
            }
            Ok(Event::Delete(object)) => {
                events.with_label_values(&[kind, "deleted"]).inc();
                Change::Deleted(object)
            }
            Err(e) => {
                events.with_label_values(&[kind, "error"]).inc();
                let mut world = shared.world.lock();
                if world.failing.insert(name.clone(), e.to_string()).is_none() {
                    log::warn!(
                        "kubernetes: watching {name}: {e} (what is known keeps serving; retrying)"
                    );
                }
                drop(world);
                shared.changed.notify_one();
                continue;
            }
        };
        let mut world = shared.world.lock();
        if world.failing.remove(&name).is_some() {
            log::info!("kubernetes: watching {name} again");
        }
        record(&mut world, change);
        drop(world);
        shared.changed.notify_one();
    }
}

/// The delay after a failed call: 250 ms doubling to 8 s, back to the start after any
/// success. Shorter than kube's default (800 ms to 30 s): a gateway should follow the pods
/// again within seconds of the API server's return.
struct Backoff {
    next: Duration,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(8);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for Backoff {
    fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..7)
            .map(|_| b.next().unwrap().as_millis() as u64)
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 8000, 8000]);
        kube::runtime::utils::Backoff::reset(&mut b);
        assert_eq!(b.next(), Some(BACKOFF_FIRST));
    }
}
