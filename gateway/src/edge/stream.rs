//! The client connection as Pingora sees it: the edge reads from the socket itself and hands
//! Pingora exactly one request at a time — its head (already checked) and its body up to the
//! end its framing names — never a byte of the next one. Bytes the client sends ahead
//! (pipelining) wait in the edge's buffer, bounded, until the current request is answered.
//!
//! So Pingora's parser only ever sees requests the framing policy let through, no request's
//! bytes can be read as part of another's (no smuggling between requests on a connection),
//! and nothing is buffered before a client sends (no 64 KiB buffer per idle connection).
//!
//! Writes of an HTTP/1 answer are held until Pingora flushes (it flushes after the head of a
//! bodiless answer, after the last byte of a length-framed body, and after every chunk of a
//! streamed one), so a response head and its body leave in one system call, as nginx's
//! `writev` does, instead of two — each send also wakes the client once. At most
//! [`WRITE_COALESCE`] bytes are held; more are written through. HTTP/2 and tunnels write
//! through (h2 buffers frames itself; the relay flushes every write).

use super::chunked::{ChunkScanner, Scanned};
use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use pingora_core::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::SslDigest;
use pingora_core::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType, ALPN,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes of an answer held back for one write (a small response whole; the head
/// and the first part of a large one).
pub const WRITE_COALESCE: usize = 16 * 1024;

/// How much more of the buffered input Pingora may read now.
#[derive(Debug)]
pub enum Window {
    /// Everything (HTTP/2 after the preface, a tunnel after the upgrade).
    Open,
    /// This many more bytes of the current request (head and a length-framed body).
    Bytes(u64),
    /// The current request's head is handed out; its chunked body ends where the scanner
    /// finds the last chunk and trailers.
    Chunked(ChunkScanner),
    /// The current request is complete; reads wait (and read ahead) without handing out.
    Shut,
}

#[derive(Debug)]
pub struct FrontStream {
    inner: Stream,
    /// Read from the socket, not yet handed to Pingora.
    pub(super) buf: BytesMut,
    pub(super) window: Window,
    /// When the current `Bytes` window (a head) is used up, a chunked body follows.
    pub(super) chunked_next: bool,
    /// The most bytes read ahead of the current request (pipelined requests wait here).
    read_ahead_limit: usize,
    /// The client's address from a PROXY header, which replaces the socket's peer.
    socket_digest: Option<Arc<SocketDigest>>,
    eof: bool,
    /// Written by Pingora, not yet sent (until its flush); empty and unallocated between
    /// answers, so an idle connection holds nothing here either.
    out: Vec<u8>,
    /// How much of `out` has been sent.
    out_sent: usize,
}

impl FrontStream {
    pub fn new(inner: Stream, read_ahead_limit: usize) -> FrontStream {
        FrontStream {
            inner,
            buf: BytesMut::new(),
            window: Window::Shut,
            chunked_next: false,
            read_ahead_limit,
            socket_digest: None,
            eof: false,
            out: Vec::new(),
            out_sent: 0,
        }
    }

    pub fn inner_mut(&mut self) -> &mut Stream {
        &mut self.inner
    }

    /// Gives the stream and whatever is buffered back (a tunnel takes the connection over).
    /// Pingora flushes a 101 answer before a tunnel starts, so no written byte is held.
    pub fn into_parts(self) -> (Stream, BytesMut) {
        debug_assert!(self.out.len() == self.out_sent, "unflushed answer bytes");
        (self.inner, self.buf)
    }

    /// Sends what is held of an answer; the buffer is let go once it is all out.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_sent < self.out.len() {
            let n = std::task::ready!(
                Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_sent..])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_sent += n;
        }
        self.out = Vec::new();
        self.out_sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Whether this write is held for the next flush (an HTTP/1 answer that fits).
    fn holds(&self, len: usize) -> bool {
        !matches!(self.window, Window::Open) && self.out.len() + len <= WRITE_COALESCE
    }

    /// The client address a PROXY header named becomes the connection's peer.
    pub fn set_peer(&mut self, addr: std::net::SocketAddr) {
        let digest = SocketDigest::from_raw_fd(self.inner.id());
        let _ = digest.peer_addr.set(Some(PingoraAddr::Inet(addr)));
        self.socket_digest = Some(Arc::new(digest));
    }

    /// Reads from the socket into the buffer (at most `reserve` more bytes); 0 at EOF.
    pub async fn fill(&mut self, reserve: usize) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.buf.reserve(reserve);
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Lets the buffer go when nothing is waiting in it (an idle connection holds no memory).
    pub fn release_idle_buffer(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// While the current request is complete: reads what the client sends next into the
    /// buffer (up to the read-ahead limit) so its closing the connection is noticed.
    fn poll_read_ahead(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            if self.buf.len() >= self.read_ahead_limit {
                // Enough waits; the client is held back by TCP until this request is done.
                return Poll::Pending;
            }
            self.buf.reserve(4096);
            let before = self.buf.len();
            let spare = self.buf.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        self.eof = true;
                        return Poll::Ready(Ok(()));
                    }
                    // SAFETY: `n` bytes of the spare capacity were initialised by the read.
                    unsafe { self.buf.set_len(before + n) };
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Hands up to `room` buffered bytes of the current window to `out`.
    fn hand_out(&mut self, out: &mut ReadBuf<'_>) -> io::Result<usize> {
        let room = out.remaining().min(self.buf.len());
        let n = match &mut self.window {
            Window::Open => room,
            Window::Bytes(left) => room.min(usize::try_from(*left).unwrap_or(usize::MAX)),
            Window::Chunked(scanner) => match scanner.scan(&self.buf[..room]) {
                Scanned::More(n) => n,
                Scanned::Done(n) => {
                    self.window = Window::Bytes(n as u64);
                    n
                }
                Scanned::Invalid(why) => {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, why));
                }
            },
            Window::Shut => 0,
        };
        out.put_slice(&self.buf[..n]);
        self.buf.advance(n);
        if let Window::Bytes(left) = &mut self.window {
            *left -= n as u64;
            if *left == 0 {
                self.window = if std::mem::take(&mut self.chunked_next) {
                    Window::Chunked(ChunkScanner::default())
                } else {
                    Window::Shut
                };
            }
        }
        Ok(n)
    }
}

impl AsyncRead for FrontStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if matches!(this.window, Window::Shut) {
                // Nothing more of this request: wait (reading ahead), or report the close.
                return match this.poll_read_ahead(cx) {
                    Poll::Ready(Ok(())) if this.eof => Poll::Ready(Ok(())),
                    Poll::Ready(Ok(())) => Poll::Pending,
                    other => other,
                };
            }
            if !this.buf.is_empty() {
                if this.hand_out(out)? > 0 || out.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                // Nothing handed out: the window changed (a chunked body ended); go round.
                continue;
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Read more of the current request.
            this.buf.reserve(16 * 1024);
            let before = this.buf.len();
            let spare = this.buf.spare_capacity_mut();
            let mut rb = ReadBuf::uninit(spare);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    if n == 0 {
                        this.eof = true;
                        return Poll::Ready(Ok(()));
                    }
                    // SAFETY: `n` bytes of the spare capacity were initialised by the read.
                    unsafe { this.buf.set_len(before + n) };
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl AsyncWrite for FrontStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.holds(data.len()) {
            if this.out.is_empty() {
                this.out.reserve_exact(data.len().max(1024));
            }
            this.out.extend_from_slice(data);
            return Poll::Ready(Ok(data.len()));
        }
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let len = bufs.iter().map(|b| b.len()).sum();
        if this.holds(len) {
            for b in bufs {
                this.out.extend_from_slice(b);
            }
            return Poll::Ready(Ok(len));
        }
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for FrontStream {
    async fn shutdown(&mut self) {
        // What is held goes out first (best effort: the connection is ending anyway).
        let _ = std::future::poll_fn(|cx| self.poll_send_held(cx)).await;
        self.inner.shutdown().await;
    }
}

impl UniqueID for FrontStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for FrontStream {
    fn get_ssl(&self) -> Option<&pingora_core::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for FrontStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
}

impl GetProxyDigest for FrontStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
}

impl GetSocketDigest for FrontStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.socket_digest
            .clone()
            .or_else(|| self.inner.get_socket_digest())
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.socket_digest = Some(Arc::new(digest));
    }
}

#[async_trait]
impl Peek for FrontStream {
    /// Fills `buf` from the buffered input (reading more if needed) without consuming it:
    /// Pingora peeks for the HTTP/2 preface this way.
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        while self.buf.len() < buf.len() {
            if self.fill(buf.len() - self.buf.len()).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        buf.copy_from_slice(&self.buf[..buf.len()]);
        Ok(true)
    }
}
