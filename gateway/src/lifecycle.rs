//! What the process does when it is asked to stop or to hand over to a new binary.
//!
//! Pingora runs the listener hand-off (SIGQUIT) and the grace period; this service follows
//! its execution phases and does the rest. On a hand-off the host stays ready (`/readyz`
//! 200: the new process serves the same ports, so the SLB keeps the host in rotation); open
//! WebSocket tunnels are handed to the new process (or, when that cannot be done, closed
//! with 1001 spread over the grace period). On a graceful stop (SIGTERM) `/readyz` turns 503
//! so the SLB moves traffic away. Either way — with help from [`crate::edge::Edge`] —
//! keep-alive connections are not cut while idle but get `Connection: close` on their next
//! request.

use crate::gateway::Gateway;
use crate::tunnel::{self, handover, spread_closes, Command};
use async_trait::async_trait;
use parking_lot::Mutex;
use pingora_core::server::{ExecutionPhase, ShutdownWatch};
use pingora_core::services::background::BackgroundService;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

pub struct Lifecycle {
    pub gateway: Arc<Gateway>,
    pub phases: Mutex<Option<broadcast::Receiver<ExecutionPhase>>>,
    /// Where a new process listens for tunnels (`None`: hand-over disabled).
    pub handover_path: Option<PathBuf>,
    /// Bound before bootstrap when this process is the new one of an upgrade.
    pub adopt_from: Mutex<Option<OwnedFd>>,
    pub grace: Duration,
    /// How long TLS tunnels stay on this process after a hand-off (0: closed like the rest).
    pub linger: Duration,
}

#[async_trait]
impl BackgroundService for Lifecycle {
    async fn start(&self, _shutdown: ShutdownWatch) {
        if let Some(listener) = self.adopt_from.lock().take() {
            let (gateway, runtime) = (self.gateway.clone(), tokio::runtime::Handle::current());
            handover::serve(listener, move |parked| {
                let states = &gateway.lasting().endpoints;
                tunnel::adopt(gateway.tunnels(), states, &runtime, parked);
            });
        }
        let Some(mut phases) = self.phases.lock().take() else {
            return;
        };
        let mut handing_over: Option<tokio::task::JoinHandle<()>> = None;
        let mut upgrading = false;
        loop {
            let phase = match phases.recv().await {
                Ok(p) => p,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match phase {
                ExecutionPhase::GracefulUpgradeTransferringFds => {
                    log::info!(
                        "upgrade: listeners go to the new process; finishing what is open here"
                    );
                    self.gateway.readiness().set_handing_over();
                    upgrading = true;
                    if let Some(path) = &self.handover_path {
                        handing_over =
                            Some(tokio::spawn(hand_over(self.gateway.clone(), path.clone())));
                    }
                }
                ExecutionPhase::GracefulTerminate => {
                    log::info!("graceful stop: not ready any more; draining");
                    self.gateway.readiness().set_stopping();
                }
                ExecutionPhase::ShutdownGracePeriod => {
                    // No more new connections. Let the hand-over finish its last round, then
                    // close what is left, spread over the grace period (minus a margin so the
                    // last close frames go out before the runtimes stop).
                    if let Some(task) = handing_over.take() {
                        let _ = task.await;
                    }
                    let ids: Vec<u64> = self
                        .gateway
                        .tunnels()
                        .list()
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect();
                    let window = self
                        .grace
                        .saturating_sub(Duration::from_secs(1))
                        .max(Duration::from_millis(100));
                    let linger = if upgrading {
                        self.linger
                    } else {
                        Duration::ZERO
                    };
                    if !ids.is_empty() {
                        // What is left after a hand-off are TLS tunnels: their state is in this
                        // process, so it keeps serving them for the linger, then closes the
                        // rest with 1001, spread out. A stop closes them at once, spread.
                        let tunnels = self.gateway.tunnels().clone();
                        if linger.is_zero() {
                            log::info!("closing {} tunnels with 1001 over {window:?}", ids.len());
                            spread_closes(tunnels, ids, window);
                        } else {
                            log::info!(
                                "upgrade: {} TLS tunnels stay on this process for up to {linger:?}",
                                ids.len()
                            );
                            tokio::spawn(async move {
                                tokio::time::sleep(linger).await;
                                let left: Vec<u64> =
                                    tunnels.list().into_iter().map(|(id, _)| id).collect();
                                log::info!(
                                    "linger over: closing {} TLS tunnels with 1001 over {window:?}",
                                    left.len()
                                );
                                spread_closes(tunnels, left, window);
                            });
                        }
                    }
                    // Keep-alive clients had the grace period to send their next request (and
                    // be told to close); idle ones are let go then.
                    let gateway = self.gateway.clone();
                    let grace = self.grace;
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        gateway.readiness().close_idle();
                    });
                    tokio::spawn(exit_when_idle(self.gateway.clone()));
                }
                _ => {}
            }
        }
    }
}

/// Pingora stops its runtimes last, waiting for each without a bound. One of its accept
/// loops can spin on a runtime being shut down (its `accept()` fails at once — "A Tokio 1.x
/// context was found, but it is being shutdown" — and the error path never yields), which
/// keeps that thread busy and the process alive for ever, at 100 % CPU and logging the
/// error in a loop (seen after SIGINT). This thread, outside every runtime, waits for the
/// runtimes' turn and exits the process when they have not stopped `bound` later. Nothing
/// is lost: by then no connection is served and the access log has been written.
pub fn watch_runtime_shutdown(
    mut phases: broadcast::Receiver<ExecutionPhase>,
    gateway: Arc<Gateway>,
    bound: Duration,
) {
    let spawned = std::thread::Builder::new()
        .name("shutdown watch".into())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownRuntimes) => {
                    std::thread::sleep(bound);
                    log::warn!("runtimes still running {bound:?} after shutdown began: exiting");
                    gateway.access_log().flush(Duration::from_secs(1));
                    std::process::exit(0);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the shutdown watch: {e}");
    }
}

/// The grace period is a bound, not a wait: once no client connection and no tunnel is left
/// (and the access log is written), the process exits, so an upgrade or a stop takes as long
/// as its slowest request, not always the whole grace period.
async fn exit_when_idle(gateway: Arc<Gateway>) {
    let metrics = crate::metrics::get();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if metrics.connections_open.get() <= 0 && gateway.tunnels().list().is_empty() {
            log::info!("no connection or tunnel left: exiting before the grace period ends");
            gateway.access_log().flush(Duration::from_secs(1));
            std::process::exit(0);
        }
    }
}

/// Hands every plain-TCP tunnel to the new process, in rounds until Pingora stops accepting
/// (tunnels opened on the old process during its last seconds of accepting go too).
async fn hand_over(gateway: Arc<Gateway>, path: PathBuf) {
    let connect = tokio::task::spawn_blocking(move || {
        handover::Sender::connect(&path, Duration::from_secs(5))
    });
    let sender = match connect.await {
        Ok(Ok(s)) => Arc::new(s),
        Ok(Err(e)) => {
            log::warn!("upgrade: no tunnel hand-over (new process not reachable: {e}); tunnels will be closed with 1001");
            return;
        }
        Err(e) => {
            log::warn!("upgrade: tunnel hand-over task failed: {e}");
            return;
        }
    };
    // Pingora keeps accepting for 5 s after sending the listeners; hand over what is open
    // now and again a little later, then once more at the end.
    let mut total = 0;
    for round in 0..12 {
        total += hand_over_round(&gateway, &sender).await;
        if round < 11 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    log::info!("upgrade: handed {total} tunnels to the new process");
}

async fn hand_over_round(gateway: &Gateway, sender: &Arc<handover::Sender>) -> usize {
    let mut sent = 0;
    for (id, info) in gateway.tunnels().list() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !gateway.tunnels().send(id, Command::HandOver(tx)) {
            continue;
        }
        // A tunnel that cannot move (TLS) drops the sender; it is closed later instead.
        let Ok(Ok(parked)) = tokio::time::timeout(Duration::from_secs(1), rx).await else {
            continue;
        };
        let s = sender.clone();
        match tokio::task::spawn_blocking(move || s.send(&parked)).await {
            Ok(Ok(())) => sent += 1,
            Ok(Err(e)) => log::error!(
                "upgrade: tunnel of route {} lost in hand-over: {e}",
                info.route
            ),
            Err(e) => log::error!("upgrade: hand-over task failed: {e}"),
        }
    }
    sent
}
