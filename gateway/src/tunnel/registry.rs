//! Open tunnels, by id, outside any snapshot: a reload looks here to decide which tunnels its
//! change concerns, and only those are told to close.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the owner of the tunnel task is asked to do.
#[derive(Debug)]
pub enum Command {
    /// Send close frames with this code to both sides, then end.
    Close(u16),
    /// Stop relaying and give the sockets to the upgrade hand-over (plain TCP tunnels only;
    /// others drop the sender, which tells the hand-over to close them instead).
    HandOver(tokio::sync::oneshot::Sender<super::handover::Parked>),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TunnelInfo {
    pub route: Arc<str>,
    pub service: Arc<str>,
    pub endpoint: SocketAddr,
    /// Idle timeout of this tunnel in milliseconds (kept across a hand-over).
    pub idle_ms: u64,
}

struct Entry {
    info: TunnelInfo,
    commands: mpsc::UnboundedSender<Command>,
    /// A close is already on its way (a drain spreads closes over minutes): the next change
    /// must not schedule it again.
    closing: bool,
}

#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

/// Removes the tunnel from the registry when the tunnel task ends, however it ends.
pub struct Registration {
    id: u64,
    registry: Arc<Registry>,
    pub info: TunnelInfo,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.open.lock().remove(&self.id);
        crate::metrics::get()
            .tunnels_open
            .with_label_values(&[&self.info.route])
            .dec();
    }
}

impl Registry {
    pub fn register(
        self: &Arc<Self>,
        info: TunnelInfo,
    ) -> (Registration, mpsc::UnboundedReceiver<Command>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.open.lock().insert(
            id,
            Entry {
                info: info.clone(),
                commands: tx,
                closing: false,
            },
        );
        crate::metrics::get()
            .tunnels_open
            .with_label_values(&[&info.route])
            .inc();
        let registration = Registration {
            id,
            registry: self.clone(),
            info,
        };
        (registration, rx)
    }

    pub fn len(&self) -> usize {
        self.open.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.lock().is_empty()
    }

    /// Ids and identities of the open tunnels, for deciding whom a change concerns.
    pub fn list(&self) -> Vec<(u64, TunnelInfo)> {
        self.open
            .lock()
            .iter()
            .map(|(id, e)| (*id, e.info.clone()))
            .collect()
    }

    /// Marks the tunnel as being closed; false when it already was (or has ended).
    pub fn begin_close(&self, id: u64) -> bool {
        self.open
            .lock()
            .get_mut(&id)
            .is_some_and(|e| !std::mem::replace(&mut e.closing, true))
    }

    /// Sends a command; false when the tunnel has already ended.
    pub fn send(&self, id: u64, command: Command) -> bool {
        self.open
            .lock()
            .get(&id)
            .is_some_and(|e| e.commands.send(command).is_ok())
    }
}
