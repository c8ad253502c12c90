//! Idle upstream connections, kept per endpoint for the next request.
//!
//! Pingora's pool hands each released connection to a task of its own that watches it while
//! idle (a spawn, a mutex and a oneshot per request) and finds it again through a global
//! LRU. Here an endpoint keeps its idle connections on a stack in its own state: release is
//! a push, checkout a pop, and a connection that the upstream closed while idle is found at
//! checkout (its socket reads end-of-file without waiting) or by the sweep that drops
//! closed and expired ones every second. The newest connection is reused first, so a quiet
//! period lets the older ones expire instead of keeping all of them barely alive.

use futures_util::FutureExt;
use parking_lot::Mutex;
use pingora_core::protocols::Stream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Idle connections of every endpoint together, bounded like Pingora's pool
/// (`server.upstream_keepalive_pool_size`).
static IDLE_TOTAL: AtomicUsize = AtomicUsize::new(0);
static IDLE_LIMIT: AtomicUsize = AtomicUsize::new(1024);

pub fn set_limit(limit: usize) {
    IDLE_LIMIT.store(limit, Ordering::Relaxed);
}

struct Idle {
    stream: Stream,
    since: Instant,
    /// The peer settings the connection was made with (Pingora's `reuse_hash`): after a
    /// reload that changes them (TLS, SNI, CA) an old connection is not reused.
    key: u64,
    timeout: Duration,
}

impl Idle {
    fn expired(&self, now: Instant) -> bool {
        now.duration_since(self.since) >= self.timeout
    }
}

#[derive(Default)]
pub struct IdlePool {
    stack: Mutex<Vec<Idle>>,
}

/// An endpoint's state is dropped when no snapshot uses it any more (`retain_used`): its
/// idle connections close, and must leave the process-wide count with it, or endpoints that
/// come and go (pods rolling) would fill the bound with connections long gone.
impl Drop for IdlePool {
    fn drop(&mut self) {
        IDLE_TOTAL.fetch_sub(self.stack.get_mut().len(), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for IdlePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdlePool({})", self.stack.lock().len())
    }
}

impl IdlePool {
    /// The most recently released connection made with `key`'s settings that is still
    /// open and silent.
    pub fn checkout(&self, key: u64) -> Option<Stream> {
        let now = Instant::now();
        loop {
            let idle = self.stack.lock().pop()?;
            IDLE_TOTAL.fetch_sub(1, Ordering::Relaxed);
            if idle.key != key || idle.expired(now) {
                continue;
            }
            let mut stream = idle.stream;
            if still_open(&mut stream) {
                return Some(stream);
            }
        }
    }

    /// Keeps `stream` for `timeout` when the pool has room. (Not tested for end-of-file
    /// here: that would be one more system call per request, and checkout tests anyway.)
    pub fn release(&self, stream: Stream, key: u64, timeout: Duration) {
        if timeout.is_zero() {
            return;
        }
        if IDLE_TOTAL.fetch_add(1, Ordering::Relaxed) >= IDLE_LIMIT.load(Ordering::Relaxed) {
            IDLE_TOTAL.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        self.stack.lock().push(Idle {
            stream,
            since: Instant::now(),
            key,
            timeout,
        });
    }

    /// Closes the connections that have been idle for their timeout, and those the upstream
    /// closed meanwhile — many servers drop idle connections after a few seconds (Node.js
    /// after 5), and each such socket would otherwise wait, half closed, for its timeout.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut stack = self.stack.lock();
        let before = stack.len();
        stack.retain_mut(|idle| !idle.expired(now) && still_open(&mut idle.stream));
        IDLE_TOTAL.fetch_sub(before - stack.len(), Ordering::Relaxed);
    }
}

/// An idle connection must have nothing to read: end-of-file means the upstream closed it,
/// data means it sent something nobody asked for (the connection's framing is lost).
fn still_open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    tokio::task::unconstrained(stream.read(&mut byte))
        .now_or_never()
        .is_none()
}

/// Closes idle connections that expired or that their upstream closed, once a second (those
/// of endpoints nobody asks for any more would otherwise stay open until their state is
/// forgotten).
pub struct Sweeper {
    pub gateway: std::sync::Arc<crate::gateway::Gateway>,
}

#[async_trait::async_trait]
impl pingora_core::services::background::BackgroundService for Sweeper {
    async fn start(&self, mut shutdown: pingora_core::server::ShutdownWatch) {
        let mut ticker = tokio::time::interval(Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = ticker.tick() => self.gateway.lasting().endpoints.sweep_idle(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected loopback stream (the peer kept open for the test).
    async fn stream() -> (Stream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let l4 = pingora_core::protocols::l4::stream::Stream::from(client.unwrap());
        (Box::new(l4), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn counts_what_it_holds_and_forgets_it_when_dropped() {
        let before = IDLE_TOTAL.load(Ordering::Relaxed);
        let pool = IdlePool::default();
        let idle = Duration::from_secs(60);
        let (a, _peer_a) = stream().await;
        let (b, _peer_b) = stream().await;
        pool.release(a, 7, idle);
        pool.release(b, 7, idle);
        assert_eq!(IDLE_TOTAL.load(Ordering::Relaxed), before + 2);
        // Made with other settings (a reload changed them): let go, not handed out.
        assert!(pool.checkout(8).is_none());
        assert_eq!(IDLE_TOTAL.load(Ordering::Relaxed), before);
        // The newest one's peer closed it while idle: found at checkout and skipped.
        let (c, _peer_c) = stream().await;
        let (d, peer_d) = stream().await;
        pool.release(c, 7, idle);
        pool.release(d, 7, idle);
        drop(peer_d);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut open = pool.checkout(7).expect("the older one");
        assert!(still_open(&mut open), "a closed one was handed out");
        assert_eq!(IDLE_TOTAL.load(Ordering::Relaxed), before);
        pool.release(open, 7, idle);
        assert_eq!(IDLE_TOTAL.load(Ordering::Relaxed), before + 1);
        drop(pool);
        assert_eq!(
            IDLE_TOTAL.load(Ordering::Relaxed),
            before,
            "dropped with its state"
        );
    }
}
