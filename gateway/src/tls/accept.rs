//! The handshake side of the TLS listeners: the certificate for each handshake comes from
//! the serving snapshot (so a renewed or added certificate applies to the next handshake,
//! with no restart), client certificates are asked for where a certificate entry says so,
//! and what the handshake settled — the SNI, the verified client subject — is kept with the
//! connection for routing, plugins and the access log.

use crate::gateway::Gateway;
use async_trait::async_trait;
use openssl::nid::Nid;
use openssl::ssl::{NameType, SslRef, SslVerifyMode};
use pingora_core::listeners::TlsAccept;
use std::any::Any;
use std::sync::Arc;

pub struct Certificates {
    pub gateway: Arc<Gateway>,
}

/// What a TLS handshake settled, kept in the connection's `SslDigest` extension.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    pub sni: Option<String>,
    /// The client certificate's subject (`CN=…,O=…`), when one was presented and verified.
    pub client_subject: Option<String>,
}

#[async_trait]
impl TlsAccept for Certificates {
    async fn certificate_callback(&self, ssl: &mut SslRef) {
        let snapshot = self.gateway.snapshot();
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
        let Some(cert) = snapshot.certificates.select(sni.as_deref()) else {
            // No certificate at all: the handshake fails for want of one.
            return;
        };
        use pingora_core::tls::ext;
        if ext::ssl_use_certificate(ssl, &cert.leaf).is_err()
            || ext::ssl_use_private_key(ssl, &cert.key).is_err()
        {
            log::error!("could not use the certificate for {sni:?}");
            return;
        }
        for c in &cert.chain {
            let _ = ext::ssl_add_chain_cert(ssl, c);
        }
        if let Some(store) = &cert.client_ca {
            let mode = match cert.client_auth {
                crate::config::ClientAuth::Required => {
                    SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
                }
                crate::config::ClientAuth::Optional => SslVerifyMode::PEER,
                crate::config::ClientAuth::None => SslVerifyMode::NONE,
            };
            if ext::ssl_set_verify_cert_store(ssl, store).is_ok() {
                ssl.set_verify(mode);
            }
        }
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &SslRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let sni = ssl.servername(NameType::HOST_NAME).map(str::to_owned);
        let client_subject = ssl
            .peer_certificate()
            .filter(|_| ssl.verify_result() == openssl::x509::X509VerifyResult::OK)
            .map(|c| subject(&c));
        Some(Arc::new(TlsInfo {
            sni,
            client_subject,
        }))
    }
}

fn subject(cert: &openssl::x509::X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let key = if e.object().nid() == Nid::COMMONNAME {
                "CN"
            } else {
                key
            };
            format!("{key}={}", e.data().to_string().unwrap_or_default())
        })
        .collect::<Vec<_>>()
        .join(",")
}
