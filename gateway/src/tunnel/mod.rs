//! WebSocket (HTTP/1.1 Upgrade) tunnels, run by Tidegate itself.
//!
//! Pingora can proxy an Upgrade on its own, but then the tunnel belongs to Pingora: its
//! downstream read timeout cuts idle tunnels, a reload or upgrade cannot close a tunnel with
//! a close frame, and the sockets cannot be handed to another process. So for an Upgrade
//! request Tidegate does the handshake with the upstream itself, answers the client, takes the
//! client connection out of Pingora's session and copies bytes in a task of its own
//! ([`relay`]), registered in the [`Registry`] by route and endpoint.

mod detach;
mod frames;
pub mod handover;
mod policy;
mod registry;
mod relay;

pub use detach::{detach, Client};
pub use frames::{close_code, close_frame, FrameTracker};
pub use policy::{close_departed, close_orphaned, declare_metrics, spread_closes};
pub use registry::{Command, Registry, TunnelInfo};
pub use relay::CloseReason;

use crate::upstream::{EndpointState, EndpointStates};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Takes over a tunnel handed over by the process this one replaced. Runs on the hand-over
/// thread; the relay goes to `runtime`.
pub fn adopt(
    registry: &Arc<Registry>,
    states: &EndpointStates,
    runtime: &tokio::runtime::Handle,
    parked: handover::Parked,
) {
    let registry = registry.clone();
    let state = states.get(&parked.info.service, parked.info.endpoint);
    runtime.spawn(async move {
        let as_tokio = |fd: std::os::fd::OwnedFd| {
            let std = std::net::TcpStream::from(fd);
            std.set_nonblocking(true)?;
            TcpStream::from_std(std)
        };
        let (Ok(client), Ok(upstream)) = (as_tokio(parked.client), as_tokio(parked.upstream))
        else {
            log::error!("could not adopt a tunnel of route {}", parked.info.route);
            return;
        };
        spawn_relay(
            &registry,
            parked.info,
            Client::Tcp(client),
            upstream,
            BytesMut::new(),
            Bytes::new(),
            parked.trackers,
            state,
        );
    });
}

#[allow(clippy::too_many_arguments)]
pub fn spawn_relay(
    registry: &Arc<Registry>,
    info: TunnelInfo,
    client: Client,
    mut upstream: TcpStream,
    early: BytesMut,
    extra: Bytes,
    trackers: (FrameTracker, FrameTracker),
    state: Arc<EndpointState>,
) {
    let (registration, mut commands) = registry.register(info);
    state.active.fetch_add(1, Ordering::Relaxed);
    let idle = std::time::Duration::from_millis(registration.info.idle_ms);
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let outcome = match client {
            Client::Tcp(mut tcp) => {
                let _ = tcp.set_nodelay(true);
                let mut outcome = serve(
                    &mut tcp,
                    &mut upstream,
                    early,
                    extra,
                    &mut commands,
                    idle,
                    trackers,
                    true,
                )
                .await;
                if let Some(to) = outcome.hand_over_to.take() {
                    let parked = match (tcp.into_std(), upstream.into_std()) {
                        (Ok(c), Ok(u)) => Some(handover::Parked {
                            info: registration.info.clone(),
                            client: c.into(),
                            upstream: u.into(),
                            trackers: outcome.trackers.clone(),
                        }),
                        _ => None,
                    };
                    // If nobody takes it, dropping it closes both sockets.
                    if let Some(parked) = parked {
                        let _ = to.send(parked);
                    }
                }
                outcome
            }
            Client::Pingora(mut stream) => {
                serve(
                    &mut stream,
                    &mut upstream,
                    early,
                    extra,
                    &mut commands,
                    idle,
                    trackers,
                    false,
                )
                .await
            }
        };
        state.active.fetch_sub(1, Ordering::Relaxed);
        crate::metrics::get()
            .tunnels_closed
            .with_label_values(&[&registration.info.route, outcome.reason.as_str()])
            .inc();
        log::debug!(
            "tunnel on route {} ended: {} after {:?}, {} bytes up, {} bytes down",
            registration.info.route,
            outcome.reason.as_str(),
            started.elapsed(),
            outcome.moved.to_upstream,
            outcome.moved.to_client
        );
        drop(registration);
    });
}

/// Sends what each side is owed from the handshake, then relays until the tunnel ends.
#[allow(clippy::too_many_arguments)]
async fn serve<D>(
    client: &mut D,
    upstream: &mut TcpStream,
    early: BytesMut,
    extra: Bytes,
    commands: &mut tokio::sync::mpsc::UnboundedReceiver<Command>,
    idle: std::time::Duration,
    trackers: (FrameTracker, FrameTracker),
    can_hand_over: bool,
) -> relay::Outcome
where
    D: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let ready = async {
        if !early.is_empty() {
            upstream.write_all(&early).await?;
        }
        if !extra.is_empty() {
            client.write_all(&extra).await?;
        }
        client.flush().await
    };
    match ready.await {
        Ok(()) => relay::run(client, upstream, commands, idle, trackers, can_hand_over).await,
        Err(_) => relay::Outcome {
            reason: CloseReason::Error,
            moved: Default::default(),
            trackers,
            hand_over_to: None,
        },
    }
}
