//! `[[certificates]]` (hot-swappable like routes) and `[tls]` (the TLS listeners' protocol
//! settings, read when the listeners start).

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// One certificate chain and key, served to the names it covers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM file: the leaf certificate first, then its chain.
    pub cert: Spanned<String>,
    /// PEM private key: a path (or `file:PATH`), or `env:NAME` holding the PEM text.
    pub key: Spanned<String>,
    /// Names served with it (`chat.example.com`, `*.example.com`); by default the
    /// certificate's DNS subject alternative names.
    #[serde(default)]
    pub names: Vec<Spanned<String>>,
    /// Served to clients that send no SNI or a name no certificate covers.
    #[serde(default)]
    pub default: bool,
    /// A DER OCSP response to staple (refreshed by re-reading the file when it changes).
    pub ocsp: Option<Spanned<String>>,
    /// Client certificates for these names: `none` (the default), `optional` or `required`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM bundle of the CAs client certificates must chain to (with `client_auth`).
    pub client_ca: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    #[default]
    None,
    Optional,
    Required,
}

/// `[tls]`: protocol settings of the TLS listeners (a change needs a restart or upgrade).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// `"1.2"` (the default) or `"1.3"`; nothing older is offered.
    pub min_version: String,
    /// OpenSSL cipher list for TLS 1.2 (Mozilla's intermediate set by default).
    pub ciphers: String,
    /// TLS 1.3 cipher suites.
    pub ciphersuites: String,
    /// Session resumption with tickets (TLS 1.2 and 1.3). The ticket keys are made at random
    /// by each process, so they change with every restart or binary upgrade.
    pub session_tickets: bool,
    /// A new ticket key is made this often; tickets are then issued under it.
    pub ticket_key_rotation_seconds: Spanned<u64>,
    /// Previous ticket keys still accepted to decrypt tickets (the client gets a new ticket
    /// under the current key): a ticket resumes for at least this many rotation intervals.
    pub ticket_keys_kept: Spanned<u32>,
}

/// The most previous ticket keys `[tls] ticket_keys_kept` may keep.
pub const MAX_TICKET_KEYS_KEPT: u32 = 16;

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            min_version: "1.2".into(),
            ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305".into(),
            ciphersuites: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256".into(),
            session_tickets: true,
            ticket_key_rotation_seconds: Spanned::new(0..0, 3600),
            ticket_keys_kept: Spanned::new(0..0, 2),
        }
    }
}

impl TlsConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if !matches!(self.min_version.as_str(), "1.2" | "1.3") {
            report(None, "tls.min_version must be \"1.2\" or \"1.3\"".into());
        }
        let rotation = &self.ticket_key_rotation_seconds;
        if !(1..=604_800).contains(rotation.get_ref()) {
            report(
                Some(rotation.span()),
                "tls.ticket_key_rotation_seconds must be from 1 to 604800 (a week)".into(),
            );
        }
        let kept = &self.ticket_keys_kept;
        if *kept.get_ref() > MAX_TICKET_KEYS_KEPT {
            report(
                Some(kept.span()),
                format!("tls.ticket_keys_kept must be at most {MAX_TICKET_KEYS_KEPT}"),
            );
        }
    }
}

impl CertificateConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        for name in &self.names {
            if let Err(e) = super::routes::check_host_pattern(name.get_ref()) {
                report(
                    Some(name.span()),
                    format!("bad certificate name {:?}: {e}", name.get_ref()),
                );
            }
        }
        match (self.client_auth, &self.client_ca) {
            (ClientAuth::None, Some(ca)) => report(
                Some(ca.span()),
                "client_ca without client_auth = \"optional\" or \"required\"".into(),
            ),
            (ClientAuth::Optional | ClientAuth::Required, None) => report(
                Some(self.cert.span()),
                "client_auth needs client_ca (the CAs client certificates chain to)".into(),
            ),
            _ => {}
        }
    }
}

/// Certificates as a whole: at most one default.
pub fn validate_all(
    certificates: &[CertificateConfig],
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) {
    let mut defaults = certificates.iter().filter(|c| c.default);
    defaults.next();
    for extra in defaults {
        report(
            Some(extra.cert.span()),
            "only one certificate may be the default".into(),
        );
    }
    for c in certificates {
        c.validate(report);
    }
}
