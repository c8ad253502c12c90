//! Whether this host should get traffic (`/readyz`) and whether its connections are let go.
//! A binary upgrade keeps the host ready — the new process serves the same ports, so the load
//! balancer keeps it in rotation — while the old process lets its keep-alive connections go.
//! A graceful stop (SIGTERM) or an operator's drain makes it unready.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub struct Readiness {
    /// Keep-alive connections get `Connection: close` on their next response.
    closing_connections: AtomicBool,
    /// A graceful stop is under way.
    stopping: AtomicBool,
    /// An operator took the host out of rotation (`POST /api/drain`).
    drained: AtomicBool,
    /// The grace period is over: connections waiting for their next request are closed
    /// (a process lingering for its TLS tunnels does not wait for idle keep-alive clients).
    idle_closed: AtomicBool,
    idle: tokio::sync::Notify,
}

impl Readiness {
    /// Whether keep-alive connections are let go after their current request.
    pub fn is_closing_connections(&self) -> bool {
        self.closing_connections.load(Ordering::Relaxed)
    }

    /// Whether the load balancer should send this host traffic (`/readyz`).
    pub fn is_ready(&self) -> bool {
        !self.stopping.load(Ordering::Relaxed) && !self.drained.load(Ordering::Relaxed)
    }

    /// Why `/readyz` says 503, if it does.
    pub fn unready_reason(&self) -> Option<&'static str> {
        if self.stopping.load(Ordering::Relaxed) {
            Some("stopping")
        } else if self.drained.load(Ordering::Relaxed) {
            Some("drained")
        } else {
            None
        }
    }

    /// The listeners went to a new process (binary upgrade): finish what is open here, but
    /// stay ready — the host keeps serving through the new process.
    pub fn set_handing_over(&self) {
        self.closing_connections.store(true, Ordering::Relaxed);
        crate::metrics::get().handing_over.set(1);
    }

    /// A graceful stop: not ready any more, and connections close after their request.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.closing_connections.store(true, Ordering::Relaxed);
        crate::metrics::get().draining.set(1);
    }

    /// An operator's drain (`POST /api/drain`, `tidegate drain`): not ready, connections close
    /// after their request, requests are still served. `false` undoes it.
    pub fn set_drained(&self, drained: bool) {
        self.drained.store(drained, Ordering::Relaxed);
        let stopping = self.stopping.load(Ordering::Relaxed);
        self.closing_connections
            .store(drained || stopping, Ordering::Relaxed);
        crate::metrics::get()
            .draining
            .set(i64::from(drained || stopping));
    }

    /// Closes every connection that is waiting for its next request, now and from now on.
    pub fn close_idle(&self) {
        self.idle_closed.store(true, Ordering::Relaxed);
        self.idle.notify_waiters();
    }

    /// Resolves once idle connections are to be closed.
    pub async fn idle_closed(&self) {
        let notified = self.idle.notified();
        if self.idle_closed.load(Ordering::Relaxed) {
            return;
        }
        notified.await;
    }
}
