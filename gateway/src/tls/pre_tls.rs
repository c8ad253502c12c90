//! The PROXY protocol header on TLS listeners arrives before the ClientHello: it is read
//! here, before the handshake (Pingora's pre-TLS callback), and the client address it names
//! becomes the connection's peer for everything after.

use async_trait::async_trait;
use pingora_core::listeners::PreTlsProcess;
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{GetSocketDigest, SocketDigest, UniqueID};
use pingora_core::{Error, ErrorType};

/// Reads a PROXY v1/v2 header on the listed TLS listen addresses.
pub struct ProxyHeader {
    pub addrs: Vec<std::net::SocketAddr>,
}

#[async_trait]
impl PreTlsProcess for ProxyHeader {
    async fn process(&self, stream: &mut L4Stream) -> pingora_core::Result<()> {
        let local = stream
            .get_socket_digest()
            .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied());
        if !local.is_some_and(|l| self.addrs.contains(&l)) {
            return Ok(());
        }
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            crate::proxy_protocol::read_header(stream),
        )
        .await
        .map_err(|_| Error::new(ErrorType::ReadTimedout))?;
        let origin =
            read.map_err(|e| Error::because(ErrorType::ReadError, "PROXY header before TLS", e))?;
        if let crate::proxy_protocol::Origin::Client(addr) = origin {
            let digest = SocketDigest::from_raw_fd(stream.id());
            let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(addr)));
            stream.set_socket_digest(digest);
        }
        Ok(())
    }
}
