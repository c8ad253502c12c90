//! PROXY protocol v1 and v2 (as cloud SLBs send it) on the proxy listeners that ask for it:
//! the header is read before HTTP, and the client address it names becomes the connection's
//! peer address for everything after (logs, limits, IP rules, X-Forwarded-For).

use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{GetSocketDigest, SocketDigest, Stream, UniqueID};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use tokio::io::AsyncReadExt;

const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// v1 headers are at most 107 bytes including CRLF.
const V1_MAX: usize = 107;

/// What a PROXY header said about the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Origin {
    /// The original client.
    Client(SocketAddr),
    /// `PROXY UNKNOWN` / v2 LOCAL (the SLB's own health check): keep the socket's address.
    Local,
}

/// Reads the header from the front of `stream` (nothing more) and records the client
/// address on the stream. A connection without a valid header is refused.
pub async fn accept(stream: Stream) -> std::io::Result<Stream> {
    let mut l4: Box<L4Stream> = stream
        .into_any()
        .downcast()
        .map_err(|_| std::io::Error::other("PROXY protocol needs a plain TCP listener"))?;
    let origin = read_header(&mut *l4).await?;
    if let Origin::Client(addr) = origin {
        let fd = l4.id();
        let digest = SocketDigest::from_raw_fd(fd);
        let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(addr)));
        l4.set_socket_digest(digest);
    }
    Ok(l4)
}

/// Parses a header at the front of `buf`: the origin and the header's length, `None` when
/// `buf` holds only the start of one. At most a v1 line or a v2 header of 1 KiB.
pub fn parse_prefix(buf: &[u8]) -> std::io::Result<Option<(Origin, usize)>> {
    use futures_util::FutureExt;
    let mut rest = buf;
    match read_header(&mut rest).now_or_never() {
        Some(Ok(origin)) => Ok(Some((origin, buf.len() - rest.len()))),
        Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof && buf.len() < 1024 => {
            Ok(None)
        }
        Some(Err(e)) => Err(e),
        None => Ok(None),
    }
}

pub async fn read_header<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Origin> {
    let bad = |m: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("PROXY header: {m}"),
        )
    };
    let mut first = [0u8; 12];
    r.read_exact(&mut first[..5]).await?;
    if &first[..5] == b"PROXY" {
        // v1: text up to CRLF, read a byte at a time so nothing after it is consumed (the
        // reader is a buffer, so this costs no system calls).
        let mut line = b"PROXY".to_vec();
        while !line.ends_with(b"\r\n") {
            if line.len() >= V1_MAX {
                return Err(bad("v1 line too long"));
            }
            line.push(r.read_u8().await?);
        }
        return parse_v1(&line[..line.len() - 2]).ok_or_else(|| bad("malformed v1 line"));
    }
    r.read_exact(&mut first[5..]).await?;
    if first != V2_SIGNATURE {
        return Err(bad("missing"));
    }
    let mut fixed = [0u8; 4];
    r.read_exact(&mut fixed).await?;
    let (version_command, family, len) = (
        fixed[0],
        fixed[1],
        u16::from_be_bytes([fixed[2], fixed[3]]) as usize,
    );
    if version_command >> 4 != 2 {
        return Err(bad("unknown version"));
    }
    let mut rest = vec![0u8; len];
    r.read_exact(&mut rest).await?;
    if version_command & 0x0f == 0 {
        return Ok(Origin::Local);
    }
    match family >> 4 {
        1 if rest.len() >= 12 => {
            let ip = Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]);
            let port = u16::from_be_bytes([rest[8], rest[9]]);
            Ok(Origin::Client(SocketAddr::new(IpAddr::V4(ip), port)))
        }
        2 if rest.len() >= 36 => {
            let octets: [u8; 16] = rest[..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([rest[32], rest[33]]);
            Ok(Origin::Client(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port,
            )))
        }
        // AF_UNSPEC or AF_UNIX: nothing usable, keep the socket's address.
        0 | 3 => Ok(Origin::Local),
        _ => Err(bad("truncated v2 addresses")),
    }
}

fn parse_v1(line: &[u8]) -> Option<Origin> {
    let text = std::str::from_utf8(line).ok()?;
    let mut parts = text.split(' ');
    if parts.next()? != "PROXY" {
        return None;
    }
    match parts.next()? {
        "UNKNOWN" => Some(Origin::Local),
        "TCP4" | "TCP6" => {
            let src: IpAddr = parts.next()?.parse().ok()?;
            let _dst: IpAddr = parts.next()?.parse().ok()?;
            let sport: u16 = parts.next()?.parse().ok()?;
            let _dport: u16 = parts.next()?.parse().ok()?;
            Some(Origin::Client(SocketAddr::new(src, sport)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> std::io::Result<Origin> {
        read_header(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn parses_v1_and_v2() {
        assert_eq!(
            parse(b"PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\nGET /")
                .await
                .unwrap(),
            Origin::Client("203.0.113.7:51234".parse().unwrap())
        );
        assert_eq!(
            parse(b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 80\r\n")
                .await
                .unwrap(),
            Origin::Client("[2001:db8::7]:4000".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").await.unwrap(), Origin::Local);
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend([
            0x21, 0x11, 0, 12, 198, 51, 100, 9, 10, 0, 0, 1, 0x1f, 0x90, 0, 80,
        ]);
        assert_eq!(
            parse(&v2).await.unwrap(),
            Origin::Client("198.51.100.9:8080".parse().unwrap())
        );
        let mut local = V2_SIGNATURE.to_vec();
        local.extend([0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local).await.unwrap(), Origin::Local);
    }

    #[tokio::test]
    async fn refuses_garbage() {
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").await.is_err());
        assert!(parse(b"PROXY TCP4 nonsense\r\n").await.is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4").await.is_err());
    }
}
