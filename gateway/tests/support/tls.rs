//! TLS on the test side: certificates made by `scripts/make-test-cert.sh` (openssl), and
//! clients that verify against the test CA — blocking HTTPS requests and `wss://` tunnels.

use super::TempDir;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Command;

/// A directory of test certificates: `ca.pem`, and `NAME.pem`/`NAME.key` per name
/// (`*.x` is written `wildcard.x`).
pub struct Certs {
    pub dir: TempDir,
}

impl Certs {
    /// Makes the CA and a certificate for each of `names` (extra args: `--client NAME`,
    /// `--mismatched NAME`, `--expired`).
    pub fn make(args: &[&str]) -> Certs {
        let dir = TempDir::new("certs");
        Self::make_in(&dir, args);
        Certs { dir }
    }

    /// More certificates in the same directory (the same CA).
    pub fn make_in(dir: &TempDir, args: &[&str]) {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-cert.sh");
        let out = Command::new(script)
            .arg(&dir.0)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "make-test-cert.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.path(file).display().to_string()
    }

    /// A `[[certificates]]` entry for `NAME.pem`/`NAME.key`, served to clients without SNI.
    pub fn default_certificate(&self, name: &str) -> String {
        format!(
            "[[certificates]]\ncert = \"{}\"\nkey = \"{}\"\ndefault = true\n",
            self.path(&format!("{name}.pem")),
            self.path(&format!("{name}.key"))
        )
    }

    pub fn ca(&self) -> String {
        self.path("ca.pem")
    }
}

pub fn connector(ca: &str, client: Option<(&str, &str)>) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(ca).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.set_alpn_protos(b"\x08http/1.1").unwrap();
    if let Some((cert, key)) = client {
        b.set_certificate_chain_file(cert).unwrap();
        b.set_private_key_file(key, openssl::ssl::SslFiletype::PEM)
            .unwrap();
    }
    b.build()
}

/// One HTTPS GET (new connection, `Connection: close`): the status, the body and the SHA-256
/// of the certificate the server presented.
pub fn get(
    addr: &str,
    sni: &str,
    ca: &str,
    client: Option<(&str, &str)>,
    path: &str,
) -> Result<(u16, String, Vec<u8>), String> {
    let tcp = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = connector(ca, client)
        .connect(sni, tcp)
        .map_err(|e| format!("handshake: {e}"))?;
    let fingerprint = tls
        .ssl()
        .peer_certificate()
        .and_then(|c| c.digest(openssl::hash::MessageDigest::sha256()).ok())
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body, fingerprint))
}

pub type Wss = tokio_tungstenite::WebSocketStream<tokio_openssl::SslStream<tokio::net::TcpStream>>;

/// A `wss://` tunnel through the gateway's TLS listener.
pub async fn wss(addr: &str, sni: &str, ca: &str, path: &str) -> Wss {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let ssl = connector(ca, None)
        .configure()
        .unwrap()
        .into_ssl(sni)
        .unwrap();
    let mut tls = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut tls).connect().await.expect("TLS handshake");
    let url = format!("wss://{sni}{path}");
    let (ws, resp) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("websocket over TLS");
    assert_eq!(resp.status(), 101);
    ws
}
