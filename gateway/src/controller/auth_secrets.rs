//! The Secrets of `auth-type: basic` Ingresses (their users), fetched by name for each
//! translation rather than watched: watching every Opaque Secret of the cluster would keep
//! all of them in memory for the few an Ingress names. A Secret that cannot be fetched (an
//! API outage) keeps its last known content, so an outage never locks users out; a change
//! of one is found by fetching them again every few seconds (a re-translation follows only
//! when one changed).

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use std::collections::BTreeMap;

use crate::ingress::ANNOTATION_PREFIX as PREFIX;

#[derive(Default)]
pub struct AuthSecrets {
    known: BTreeMap<(String, String), Secret>,
}

impl AuthSecrets {
    /// `(namespace, name)` of the Secrets the Ingresses' basic authentication names.
    fn wanted(ingresses: &[Ingress]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = ingresses
            .iter()
            .filter_map(|i| {
                let annotations = i.metadata.annotations.as_ref()?;
                if annotations.get(&format!("{PREFIX}auth-type"))? != "basic" {
                    return None;
                }
                let reference = annotations.get(&format!("{PREFIX}auth-secret"))?;
                let namespace = i.metadata.namespace.as_deref().unwrap_or("default");
                let (ns, name) = reference.split_once('/').unwrap_or((namespace, reference));
                Some((ns.to_string(), name.to_string()))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The Secrets as last fetched.
    pub fn current(&self) -> Vec<Secret> {
        self.known.values().cloned().collect()
    }

    /// Fetches the Secrets the Ingresses name; whether any changed (by resourceVersion).
    pub async fn refresh(&mut self, client: &kube::Client, ingresses: &[Ingress]) -> bool {
        let version = |s: &Secret| s.metadata.resource_version.clone();
        let before: Vec<_> = self
            .known
            .iter()
            .map(|(k, s)| (k.clone(), version(s)))
            .collect();
        let wanted = Self::wanted(ingresses);
        self.known.retain(|key, _| wanted.contains(key));
        for key @ (namespace, name) in &wanted {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            match api.get_opt(name).await {
                Ok(Some(secret)) => {
                    self.known.insert(key.clone(), secret);
                }
                Ok(None) => {
                    self.known.remove(key);
                }
                Err(e) => log::warn!(
                    "ingress-controller: the Secret {namespace}/{name} of a basic authentication: {e} (its last known users stay)"
                ),
            }
        }
        let after: Vec<_> = self
            .known
            .iter()
            .map(|(k, s)| (k.clone(), version(s)))
            .collect();
        before != after
    }
}
