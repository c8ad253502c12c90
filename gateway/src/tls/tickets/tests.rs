use super::*;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{
    SslAcceptor, SslConnector, SslMethod, SslSession, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509NameBuilder, X509};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn the_current_key_rotates_on_schedule_and_kept_keys_still_decrypt() {
    let start = Instant::now();
    let keys = TicketKeys::starting_at(MINUTE, 2, start).unwrap();
    let first = keys.encryption_key(start);
    // Within the interval: the same key.
    let same = keys.encryption_key(start + Duration::from_secs(59));
    assert_eq!(same.name, first.name);
    assert_eq!(
        keys.decryption_key(&first.name, start + Duration::from_secs(59))
            .map(|(_, f)| f),
        Some(Found::Current)
    );
    // One interval later a new key encrypts; the first is a kept previous key.
    let second = keys.encryption_key(start + MINUTE);
    assert_ne!(second.name, first.name);
    assert_eq!(
        keys.decryption_key(&first.name, start + MINUTE + Duration::from_secs(1))
            .map(|(_, f)| f),
        Some(Found::Previous)
    );
    // Two kept: still decrypted after the second rotation, gone after the third.
    assert!(keys
        .decryption_key(&first.name, start + 2 * MINUTE + Duration::from_secs(59))
        .is_some());
    assert!(keys
        .decryption_key(&first.name, start + 3 * MINUTE)
        .is_none());
    assert_eq!(
        keys.decryption_key(&second.name, start + 3 * MINUTE)
            .map(|(_, f)| f),
        Some(Found::Previous)
    );
    assert!(keys.decryption_key(&[0; NAME_LEN], start).is_none());
    assert_eq!(keys.ring.lock().keys.len(), 3);
    assert_eq!(keys.lifetime(), 3 * MINUTE);
}

#[test]
fn a_long_pause_replaces_every_key_and_keeps_the_schedule() {
    let start = Instant::now();
    let keys = TicketKeys::starting_at(MINUTE, 2, start).unwrap();
    let first = keys.encryption_key(start);
    // Nobody handshook for an hour: nothing from before is accepted any more.
    let later = start + 60 * MINUTE + Duration::from_secs(30);
    let now_current = keys.encryption_key(later);
    assert!(keys.decryption_key(&first.name, later).is_none());
    assert_eq!(keys.ring.lock().keys.len(), 3);
    // The schedule stays on whole intervals from the start.
    assert_eq!(keys.ring.lock().since, start + 60 * MINUTE);
    assert_eq!(
        keys.encryption_key(start + 61 * MINUTE - Duration::from_secs(1))
            .name,
        now_current.name
    );
    assert_ne!(
        keys.encryption_key(start + 61 * MINUTE).name,
        now_current.name
    );
}

#[test]
fn no_kept_keys_means_a_ticket_lives_one_interval_at_most() {
    let start = Instant::now();
    let keys = TicketKeys::starting_at(MINUTE, 0, start).unwrap();
    let first = keys.encryption_key(start);
    assert!(keys.decryption_key(&first.name, start + MINUTE).is_none());
    assert_eq!(keys.lifetime(), MINUTE);
    let long = TicketKeys::starting_at(Duration::from_secs(86_400 * 30), 2, start).unwrap();
    assert_eq!(long.lifetime(), MAX_LIFETIME);
}

/// A self-signed certificate for "localhost".
fn identity() -> (X509, PKey<openssl::pkey::Private>) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "localhost").unwrap();
    let name = name.build();
    let mut cert = X509::builder().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    (cert.build(), key)
}

/// One handshake over a socket pair, offering `session`: whether it resumed, and the session
/// to offer next time (read after one byte of data, so a TLS 1.3 ticket has arrived).
fn handshake(
    acceptor: &SslAcceptor,
    version: SslVersion,
    session: Option<&SslSession>,
) -> (bool, SslSession) {
    let (client_end, server_end) = UnixStream::pair().unwrap();
    for end in [&client_end, &server_end] {
        end.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let acceptor = acceptor.clone();
    let server = std::thread::spawn(move || {
        let mut tls = acceptor.accept(server_end).expect("server handshake");
        tls.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        let _ = tls.read(&mut buf);
        let _ = tls.shutdown();
    });
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_verify(SslVerifyMode::NONE);
    connector.set_min_proto_version(Some(version)).unwrap();
    connector.set_max_proto_version(Some(version)).unwrap();
    let mut ssl = connector
        .build()
        .configure()
        .unwrap()
        .into_ssl("localhost")
        .unwrap();
    if let Some(session) = session {
        // SAFETY: the session comes from a connection to the same server settings.
        unsafe { ssl.set_session(session).unwrap() };
    }
    let mut tls = openssl::ssl::SslStream::new(ssl, client_end).unwrap();
    tls.connect().expect("client handshake");
    let mut buf = [0u8; 1];
    tls.read_exact(&mut buf).unwrap();
    tls.write_all(b"y").unwrap();
    // Closed properly: OpenSSL marks the session of a connection dropped without a
    // close_notify as not resumable.
    let _ = tls.shutdown();
    server.join().unwrap();
    let resumed = tls.ssl().session_reused();
    let next = tls.ssl().session().expect("a session").to_owned();
    (resumed, next)
}

#[test]
fn handshakes_resume_across_one_rotation_and_not_past_the_kept_keys() {
    let (cert, key) = identity();
    let keys: &'static TicketKeys = Box::leak(Box::new(TicketKeys::new(MINUTE, 1).unwrap()));
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    builder.set_certificate(&cert).unwrap();
    builder.set_private_key(&key).unwrap();
    // Tickets only: no stateful cache to resume from instead.
    builder.set_session_cache_mode(SslSessionCacheMode::OFF);
    install(&mut builder, keys).unwrap();
    let acceptor = builder.build();

    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let (resumed, ticket) = handshake(&acceptor, version, None);
        assert!(!resumed, "{version:?}: a first handshake is a full one");
        let (resumed, after) = handshake(&acceptor, version, Some(&ticket));
        assert!(resumed, "{version:?}: resumed under the current key");
        if version == SslVersion::TLS1_3 {
            // A TLS 1.3 client uses a ticket once: a resumption must bring it a new one.
            assert_ne!(
                after.to_der().unwrap(),
                ticket.to_der().unwrap(),
                "TLS 1.3: a new ticket after a resumption"
            );
            let (resumed, _) = handshake(&acceptor, version, Some(&after));
            assert!(resumed, "TLS 1.3: the new ticket resumes");
        }

        keys.advance(MINUTE);
        let (resumed, renewed) = handshake(&acceptor, version, Some(&ticket));
        assert!(resumed, "{version:?}: resumed under the previous key");

        keys.advance(MINUTE);
        let (resumed, _) = handshake(&acceptor, version, Some(&ticket));
        assert!(!resumed, "{version:?}: two rotations later the key is gone");
        // The ticket renewed at the previous resumption is under the key that is now the
        // previous one: it still resumes.
        let (resumed, _) = handshake(&acceptor, version, Some(&renewed));
        assert!(resumed, "{version:?}: the renewed ticket resumes");
    }
}
