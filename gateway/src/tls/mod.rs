//! TLS at the edge: the certificates of a snapshot ([`store`]), the handshake callbacks
//! ([`accept`]), the listener settings (protocol versions, ciphers, ALPN, OCSP stapling,
//! session tickets under rotating keys — [`tickets`]) and the PROXY header read before the
//! ClientHello ([`pre_tls`]).

pub mod accept;
pub mod pre_tls;
pub mod store;
pub mod tickets;

pub use accept::{Certificates, TlsInfo};
pub use store::CertStore;

use crate::config::TlsConfig;
use crate::gateway::Gateway;
use openssl::ssl::{SslMode, SslOptions, SslVersion};
use pingora_core::listeners::tls::TlsSettings;
use std::sync::Arc;

/// The settings of every TLS listener: certificates by SNI from the serving snapshot, ALPN
/// `h2` then `http/1.1`, TLS 1.2+ with the configured ciphers, OCSP responses stapled.
pub fn listener_settings(
    gateway: &Arc<Gateway>,
    config: &TlsConfig,
) -> Result<TlsSettings, String> {
    let mut settings = TlsSettings::with_callbacks(Box::new(Certificates {
        gateway: gateway.clone(),
    }))
    .map_err(|e| format!("TLS listener: {e}"))?;
    settings.enable_h2();
    let min = match config.min_version.as_str() {
        "1.3" => SslVersion::TLS1_3,
        _ => SslVersion::TLS1_2,
    };
    settings
        .set_min_proto_version(Some(min))
        .map_err(|e| format!("tls.min_version: {e}"))?;
    settings
        .set_cipher_list(&config.ciphers)
        .map_err(|e| format!("tls.ciphers: {e}"))?;
    settings
        .set_ciphersuites(&config.ciphersuites)
        .map_err(|e| format!("tls.ciphersuites: {e}"))?;
    // Idle connections give their record buffers back.
    settings.set_mode(SslMode::RELEASE_BUFFERS);
    if config.session_tickets {
        let keys = tickets::process_keys(
            std::time::Duration::from_secs(*config.ticket_key_rotation_seconds.get_ref()),
            *config.ticket_keys_kept.get_ref() as usize,
        )?;
        tickets::install(&mut settings, keys)?;
    } else {
        settings.set_options(SslOptions::NO_TICKET);
    }
    let stapler = gateway.clone();
    settings
        .set_status_callback(move |ssl| {
            let snapshot = stapler.snapshot();
            let sni = ssl
                .servername(openssl::ssl::NameType::HOST_NAME)
                .map(str::to_owned);
            match snapshot
                .certificates
                .select(sni.as_deref())
                .and_then(|c| c.ocsp.clone())
            {
                Some(der) => {
                    ssl.set_ocsp_status(&der)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .map_err(|e| format!("OCSP stapling: {e}"))?;
    Ok(settings)
}
