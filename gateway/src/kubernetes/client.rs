//! The API client for `[kubernetes]`: in the cluster (the pod's service account) unless
//! `api_server` says where, over the OpenSSL the rest of the gateway uses.

use crate::config::KubernetesConfig;
use std::time::Duration;

/// How long a connect to the API server may take; a watch itself has no read timeout (the
/// watcher notices a silent connection by its own idle bound).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn client(config: &KubernetesConfig) -> Result<kube::Client, String> {
    let mut kube_config = match &config.api_server {
        None => kube::Config::incluster().map_err(|e| {
            format!("kubernetes: not in a cluster ({e}); set kubernetes.api_server")
        })?,
        Some(url) => {
            let uri = url
                .get_ref()
                .parse::<http::Uri>()
                .map_err(|e| format!("kubernetes.api_server: {e}"))?;
            kube::Config::new(uri)
        }
    };
    if let Some(file) = &config.token_file {
        // Read again by the client whenever the file changes (projected tokens rotate).
        kube_config.auth_info.token_file = Some(file.clone());
    }
    if let Some(file) = &config.ca_file {
        let pem = std::fs::read(file).map_err(|e| format!("kubernetes.ca_file {file}: {e}"))?;
        let certs = openssl::x509::X509::stack_from_pem(&pem)
            .map_err(|e| format!("kubernetes.ca_file {file}: {e}"))?;
        let der = certs
            .iter()
            .map(|c| c.to_der())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("kubernetes.ca_file {file}: {e}"))?;
        kube_config.root_cert = Some(der);
    }
    kube_config.connect_timeout = Some(CONNECT_TIMEOUT);
    // The watcher's own backoff decides when to ask again; kube's retry layer would stack
    // another one under it.
    kube_config.default_retry = false;
    kube::Client::try_from(kube_config).map_err(|e| format!("kubernetes: {e}"))
}
