//! The certificates of one snapshot, loaded and checked when it is compiled: every chain
//! parses, every key matches its certificate, none has expired — else the change is refused
//! at the `[[certificates]]` entry and the old certificates keep serving. A handshake picks
//! from the serving snapshot's store by SNI: an exact name, then a wildcard, then the
//! default.

use crate::config::{CertificateConfig, ClientAuth, Problems};
use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;
use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Certificate {
    /// The names it is served for (lower case; wildcards as `*.example.com`).
    pub names: Vec<String>,
    pub leaf: X509,
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// Unix time of the leaf's notAfter.
    pub expires: i64,
    pub ocsp: Option<Vec<u8>>,
    pub client_auth: ClientAuth,
    pub client_ca: Option<X509Store>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("names", &self.names)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub struct CertStore {
    certs: Vec<Arc<Certificate>>,
    exact: FxHashMap<String, usize>,
    /// By suffix including its dot: `*.example.com` → `.example.com`.
    wildcard: FxHashMap<String, usize>,
    default: Option<usize>,
    /// Every file the store was loaded from, watched for renewals.
    pub files: Vec<PathBuf>,
}

impl CertStore {
    /// Loads every `[[certificates]]` entry; problems are reported at the entry.
    pub fn build(configs: &[CertificateConfig], problems: &mut Problems<'_>) -> CertStore {
        let mut store = CertStore::default();
        for config in configs {
            match load(config, &mut store.files) {
                Ok(cert) => {
                    let index = store.certs.len();
                    for name in &cert.names {
                        match name.strip_prefix('*') {
                            Some(suffix) => {
                                store.wildcard.entry(suffix.to_string()).or_insert(index);
                            }
                            None => {
                                store.exact.entry(name.clone()).or_insert(index);
                            }
                        }
                    }
                    if config.default {
                        store.default = Some(index);
                    }
                    store.certs.push(Arc::new(cert));
                }
                Err(e) => problems.at(Some(config.cert.span()), e),
            }
        }
        if store.default.is_none() && !store.certs.is_empty() {
            // Without a marked default, the first certificate serves clients without SNI.
            store.default = Some(0);
        }
        store
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    pub fn certificates(&self) -> &[Arc<Certificate>] {
        &self.certs
    }

    /// The certificate for a handshake's SNI.
    pub fn select(&self, sni: Option<&str>) -> Option<&Arc<Certificate>> {
        let by_name = sni.and_then(|name| {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if let Some(i) = self.exact.get(&name) {
                return Some(*i);
            }
            name.match_indices('.')
                .find_map(|(i, _)| self.wildcard.get(&name[i..]).copied())
        });
        by_name.or(self.default).map(|i| &self.certs[i])
    }
}

/// `env:NAME` (the PEM text itself), else a path (`file:` optional).
fn read_secret_pem(spec: &str) -> Result<Vec<u8>, String> {
    if let Some(var) = spec.strip_prefix("env:") {
        return std::env::var(var)
            .map(String::into_bytes)
            .map_err(|_| format!("environment variable {var} is not set"));
    }
    let path = spec.strip_prefix("file:").unwrap_or(spec);
    std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn load(config: &CertificateConfig, files: &mut Vec<PathBuf>) -> Result<Certificate, String> {
    let cert_path = config.cert.get_ref();
    files.push(PathBuf::from(cert_path));
    let pem = std::fs::read(cert_path).map_err(|e| format!("cannot read {cert_path}: {e}"))?;
    let mut chain = X509::stack_from_pem(&pem)
        .map_err(|e| format!("{cert_path}: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{cert_path}: no certificate in the file"));
    }
    let leaf = chain.remove(0);
    let key_spec = config.key.get_ref();
    if !key_spec.starts_with("env:") {
        files.push(PathBuf::from(
            key_spec.strip_prefix("file:").unwrap_or(key_spec),
        ));
    }
    let key_pem = read_secret_pem(key_spec)?;
    let key = PKey::private_key_from_pem(&key_pem)
        .map_err(|e| format!("{key_spec}: not a PEM private key: {e}"))?;
    let public = leaf
        .public_key()
        .map_err(|e| format!("{cert_path}: unreadable public key: {e}"))?;
    if !key.public_eq(&public) {
        return Err(format!(
            "{key_spec} is not the private key of {cert_path} (the key and the certificate do not match)"
        ));
    }
    let now = Asn1Time::days_from_now(0).map_err(|e| e.to_string())?;
    if leaf.not_after() < now {
        return Err(format!("{cert_path} expired on {}", leaf.not_after()));
    }
    if leaf.not_before() > now {
        return Err(format!(
            "{cert_path} is not valid before {}",
            leaf.not_before()
        ));
    }
    let expires = unix_time(leaf.not_after())?;
    let names: Vec<String> = if config.names.is_empty() {
        leaf.subject_alt_names()
            .map(|sans| {
                sans.iter()
                    .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        config
            .names
            .iter()
            .map(|n| n.get_ref().to_ascii_lowercase())
            .collect()
    };
    if names.is_empty() && !config.default {
        return Err(format!(
            "{cert_path} has no DNS names: give `names`, or make it the default"
        ));
    }
    let ocsp = match &config.ocsp {
        Some(path) => {
            files.push(PathBuf::from(path.get_ref()));
            Some(
                std::fs::read(path.get_ref())
                    .map_err(|e| format!("cannot read {}: {e}", path.get_ref()))?,
            )
        }
        None => None,
    };
    let client_ca = match &config.client_ca {
        Some(path) => {
            let path = path.get_ref();
            files.push(PathBuf::from(path));
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let cas = X509::stack_from_pem(&pem).map_err(|e| format!("{path}: {e}"))?;
            if cas.is_empty() {
                return Err(format!("{path}: no CA certificate in the file"));
            }
            let mut store = X509StoreBuilder::new().map_err(|e| e.to_string())?;
            for ca in cas {
                store.add_cert(ca).map_err(|e| format!("{path}: {e}"))?;
            }
            Some(store.build())
        }
        None => None,
    };
    Ok(Certificate {
        names,
        leaf,
        chain,
        key,
        expires,
        ocsp,
        client_auth: config.client_auth,
        client_ca,
    })
}

fn unix_time(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, String> {
    let epoch = Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch.diff(t).map_err(|e| e.to_string())?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}
