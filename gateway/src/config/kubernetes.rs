//! `[kubernetes]` (the API server the pods are discovered from) and a service's
//! `kubernetes = { namespace, service, port }` binding.

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// `[kubernetes]`: where the API server is. Every field is optional: an empty section means
/// "in the cluster" (`KUBERNETES_SERVICE_HOST`/`_PORT`, the pod's service-account token and
/// CA), which is how the Helm chart runs the gateway.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesConfig {
    /// `https://HOST:PORT` of the API server (or `http://` for a local proxy such as
    /// `kubectl proxy`); unset: in the cluster.
    pub api_server: Option<Spanned<String>>,
    /// A bearer token file, read again whenever it changes (projected tokens rotate).
    pub token_file: Option<String>,
    /// The PEM bundle the API server's certificate is checked against.
    pub ca_file: Option<String>,
    /// The last known endpoints of every bound service, kept on disk so a gateway restarted
    /// while the API server is unreachable serves them.
    pub cache_dir: Option<String>,
    /// Join the pods' labels to their endpoints (a metadata-only watch of the pods of each
    /// namespace in use), so `split` and `subset` select pods by label. On by default.
    #[serde(default = "default_true")]
    pub pod_labels: bool,
    /// `NAMESPACE/NAME` of the config Secret the Ingress controller writes: followed through
    /// the API server, so a change is served without waiting for the kubelet to update the
    /// mounted copy (up to about a minute).
    pub config_secret: Option<Spanned<String>>,
}

fn default_true() -> bool {
    true
}

impl KubernetesConfig {
    /// `(namespace, name)` of `config_secret`, when it is set (and well formed).
    pub fn config_secret_parts(&self) -> Option<(String, String)> {
        let (ns, name) = self.config_secret.as_ref()?.get_ref().split_once('/')?;
        (!ns.is_empty() && !name.is_empty() && !name.contains('/'))
            .then(|| (ns.to_string(), name.to_string()))
    }

    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if let Some(secret) = &self.config_secret {
            if self.config_secret_parts().is_none() {
                report(
                    Some(secret.span()),
                    format!(
                        "kubernetes.config_secret {:?} must be NAMESPACE/NAME",
                        secret.get_ref()
                    ),
                );
            }
        }
        if let Some(url) = &self.api_server {
            let text = url.get_ref();
            let ok = text
                .parse::<http::Uri>()
                .ok()
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
                .is_some_and(|u| u.host().is_some());
            if !ok {
                report(
                    Some(url.span()),
                    format!("kubernetes.api_server {text:?} is not an http:// or https:// URL"),
                );
            }
        }
    }
}

/// `kubernetes = { namespace = "chat", service = "chat-svc", port = "http" }`: the ready pods
/// behind a Kubernetes Service, from its EndpointSlices.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesBinding {
    #[serde(default = "default_namespace")]
    pub namespace: String,
    pub service: String,
    /// The Service port's name, or the pods' port number; may be left out when the Service
    /// has one port.
    pub port: Option<PortRef>,
}

fn default_namespace() -> String {
    "default".into()
}

/// A port of a Service: EndpointSlices carry the Service port's *name* with the *target*
/// port's number, so a number here is the pods' port.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(untagged)]
pub enum PortRef {
    Number(u16),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(name) => f.write_str(name),
        }
    }
}

impl KubernetesBinding {
    pub fn validate(&self) -> Result<(), String> {
        // RFC 1123 labels: what Kubernetes accepts as namespace and Service names.
        let label = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !s.starts_with('-')
                && !s.ends_with('-')
        };
        if !label(&self.namespace) {
            return Err(format!(
                "kubernetes namespace {:?} is not a valid namespace name",
                self.namespace
            ));
        }
        if !label(&self.service) {
            return Err(format!(
                "kubernetes service {:?} is not a valid Service name",
                self.service
            ));
        }
        if self.port == Some(PortRef::Number(0)) {
            return Err("kubernetes port must not be 0".into());
        }
        Ok(())
    }

    pub fn key(&self) -> KubeKey {
        KubeKey {
            namespace: self.namespace.clone(),
            service: self.service.clone(),
            port: self.port.clone(),
        }
    }
}

/// `kubernetes = { … }` or `kubernetes = [{ … }, { … }]`: a service's endpoints from one
/// Kubernetes Service, or from several together (every endpoint carries the label
/// `kubernetes.io/service-name`, so a route's `split` can weigh the Services against each
/// other: a canary by weight).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KubernetesBindings {
    One(KubernetesBinding),
    Many(Vec<KubernetesBinding>),
}

impl KubernetesBindings {
    pub fn list(&self) -> &[KubernetesBinding] {
        match self {
            KubernetesBindings::One(b) => std::slice::from_ref(b),
            KubernetesBindings::Many(v) => v,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.list().is_empty() {
            return Err("kubernetes = [] binds no Service".into());
        }
        let mut keys = std::collections::HashSet::new();
        for binding in self.list() {
            binding.validate()?;
            if !keys.insert(binding.key()) {
                return Err(format!("kubernetes binds {} twice", binding.key()));
            }
        }
        Ok(())
    }

    pub fn keys(&self) -> Vec<KubeKey> {
        self.list().iter().map(KubernetesBinding::key).collect()
    }
}

/// One watched endpoint list: a Service's port. Gateway services bound the same way share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KubeKey {
    pub namespace: String,
    pub service: String,
    pub port: Option<PortRef>,
}

impl std::fmt::Display for KubeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service)?;
        if let Some(port) = &self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}
