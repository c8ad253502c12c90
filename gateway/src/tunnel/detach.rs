//! Turning the client connection Pingora accepted into a plain socket owned by the tunnel.
//!
//! Pingora's stream carries a 64 KiB read buffer per connection; an idle tunnel held in it
//! costs about 90 KiB. A plain TCP connection is instead detached: whatever Pingora had
//! buffered is drained, the socket is duplicated into a Tokio `TcpStream`, and Pingora's
//! stream is dropped (closing only its copy of the descriptor). The same descriptor is what a
//! later hand-over to another process would pass on. TLS connections stay in Pingora's stream.

use crate::edge::FrontStream;
use bytes::BytesMut;
use futures_util::FutureExt;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::Stream;
use std::os::fd::BorrowedFd;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

pub enum Client {
    /// A plain TCP connection.
    Tcp(TcpStream),
    /// Kept as Pingora's stream (TLS, or anything not plain TCP).
    Pingora(Stream),
}

/// Returns the connection and the bytes read from it but not yet handed out (they go to the
/// upstream first): what the edge had buffered past the upgrade request, and what Pingora's
/// socket stream had buffered.
pub fn detach(stream: Stream) -> (Client, BytesMut) {
    let (mut stream, mut pending) = if stream.as_any().is::<FrontStream>() {
        let front = stream
            .into_any()
            .downcast::<FrontStream>()
            .expect("checked the type");
        front.into_parts()
    } else {
        (stream, BytesMut::new())
    };
    let is_plain =
        stream.get_ssl().is_none() && stream.as_any().downcast_ref::<L4Stream>().is_some();
    if !is_plain {
        return (Client::Pingora(stream), pending);
    }
    // Drain what is buffered without waiting: `unconstrained` so Tokio's budget cannot turn a
    // ready read into Pending, `now_or_never` so an empty socket is not waited on.
    let mut chunk = [0u8; 4096];
    for _ in 0..64 {
        match tokio::task::unconstrained(stream.read(&mut chunk)).now_or_never() {
            Some(Ok(n)) if n > 0 => pending.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    let fd = stream.id();
    // SAFETY: `fd` is the open descriptor of `stream`, alive for this borrow.
    let duplicated = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned();
    let tcp = duplicated.ok().and_then(|owned| {
        let std = std::net::TcpStream::from(owned);
        std.set_nonblocking(true).ok()?;
        TcpStream::from_std(std).ok()
    });
    match tcp {
        Some(tcp) => {
            drop(stream);
            (Client::Tcp(tcp), pending)
        }
        // Could not duplicate (descriptor limit): keep going on Pingora's stream.
        None => (Client::Pingora(stream), pending),
    }
}
