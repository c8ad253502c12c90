//! The tunnel itself: copies bytes both ways after the 101, owned by Tidegate rather than by
//! Pingora so that its lifetime is ours to decide: it ends on an idle timeout, when a side
//! closes, or when told to close (then with a proper close frame to each side).

use super::frames::{close_frame, FrameTracker};
use super::registry::Command;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Per direction. Small enough that idle tunnels stay cheap, large enough that a busy one
/// moves a typical message in one read.
const BUF: usize = 8 * 1024;
/// After close frames are sent, how long the peers get to answer before the sockets close.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Why a tunnel ended; a label of `tidegate_websocket_tunnels_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Client,
    Upstream,
    Idle,
    /// Closed by the gateway with a close frame (route removed, endpoint gone, drain).
    Gateway,
    Error,
    /// Passed to a new process during a binary upgrade; the sockets stay open.
    HandedOver,
}

impl CloseReason {
    pub const ALL: [CloseReason; 6] = [
        CloseReason::Client,
        CloseReason::Upstream,
        CloseReason::Idle,
        CloseReason::Gateway,
        CloseReason::Error,
        CloseReason::HandedOver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Client => "client_closed",
            CloseReason::Upstream => "upstream_closed",
            CloseReason::Idle => "idle_timeout",
            CloseReason::Gateway => "gateway_closed",
            CloseReason::Error => "error",
            CloseReason::HandedOver => "handed_over",
        }
    }
}

/// Bytes moved by a tunnel, for the access log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Transferred {
    pub to_upstream: u64,
    pub to_client: u64,
}

/// How a relay ended. On `HandedOver` the sockets are untouched (no shutdown, nothing
/// buffered here) and `trackers` say where each direction stands in its current frame.
pub struct Outcome {
    pub reason: CloseReason,
    pub moved: Transferred,
    /// (client → upstream, upstream → client)
    pub trackers: (FrameTracker, FrameTracker),
    /// Where to deliver the sockets, when handed over.
    pub hand_over_to: Option<tokio::sync::oneshot::Sender<super::handover::Parked>>,
}

/// Relays until the tunnel ends. `trackers` resume frame tracking of a tunnel taken over
/// from another process (default for a new tunnel). A hand-over request is honoured only
/// when `can_hand_over`; the caller keeps the sockets and passes them on.
pub async fn run<D, U>(
    down: &mut D,
    up: &mut U,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    idle: Duration,
    trackers: (FrameTracker, FrameTracker),
    can_hand_over: bool,
) -> Outcome
where
    D: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut moved = Transferred::default();
    let mut down_buf = vec![0u8; BUF];
    let mut up_buf = vec![0u8; BUF];
    // Client → upstream and upstream → client frame positions.
    let (mut c2u, mut u2c) = trackers;
    // Set once the gateway decided to close: the code, and which sides have had their
    // close frame. Each side gets it at its next frame boundary, never inside a frame.
    let mut closing: Option<u16> = None;
    let (mut sent_up, mut sent_down) = (false, false);
    let mut hand_over_to = None;
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);

    let reason = loop {
        tokio::select! {
            read = down.read(&mut down_buf) => {
                let n = match read { Ok(0) => break CloseReason::Client, Ok(n) => n, Err(_) => break CloseReason::Error };
                idle_timer.as_mut().reset(Instant::now() + idle);
                if sent_up {
                    continue; // the client's answer to our close: nothing more goes upstream
                }
                let boundary = c2u.feed(&down_buf[..n]);
                let forward = match (closing, boundary) { (Some(_), Some(b)) => b, _ => n };
                if up.write_all(&down_buf[..forward]).await.is_err() { break CloseReason::Error; }
                moved.to_upstream += forward as u64;
                if let (Some(code), Some(_)) = (closing, boundary) {
                    let _ = up.write_all(&close_frame(code, "", Some(mask_key()))).await;
                    sent_up = true;
                }
            }
            read = up.read(&mut up_buf) => {
                let n = match read { Ok(0) => break CloseReason::Upstream, Ok(n) => n, Err(_) => break CloseReason::Error };
                idle_timer.as_mut().reset(Instant::now() + idle);
                if sent_down {
                    continue;
                }
                let boundary = u2c.feed(&up_buf[..n]);
                let forward = match (closing, boundary) { (Some(_), Some(b)) => b, _ => n };
                if write_flush(down, &up_buf[..forward]).await.is_err() { break CloseReason::Error; }
                moved.to_client += forward as u64;
                if let (Some(code), Some(_)) = (closing, boundary) {
                    let _ = write_flush(down, &close_frame(code, "going away", None)).await;
                    sent_down = true;
                }
            }
            command = commands.recv(), if closing.is_none() => {
                let code = match command {
                    Some(Command::Close(code)) => code,
                    // Between two reads nothing is held here: the sockets can move as they are.
                    Some(Command::HandOver(to)) if can_hand_over => {
                        hand_over_to = Some(to);
                        break CloseReason::HandedOver;
                    }
                    _ => continue,
                };
                closing = Some(code);
                if c2u.at_boundary() {
                    let _ = up.write_all(&close_frame(code, "", Some(mask_key()))).await;
                    sent_up = true;
                }
                if u2c.at_boundary() {
                    let _ = write_flush(down, &close_frame(code, "going away", None)).await;
                    sent_down = true;
                }
                // A frame still in flight gets a bounded time to finish.
                idle_timer.as_mut().reset(Instant::now() + CLOSE_LINGER);
            }
            _ = &mut idle_timer => break if closing.is_some() { CloseReason::Gateway } else { CloseReason::Idle },
        }
        if sent_up && sent_down {
            break CloseReason::Gateway;
        }
    };

    match reason {
        CloseReason::HandedOver => {
            return Outcome {
                reason,
                moved,
                trackers: (c2u, u2c),
                hand_over_to,
            }
        }
        CloseReason::Gateway => linger(down, up).await,
        CloseReason::Idle => {
            if u2c.at_boundary() {
                let _ = write_flush(down, &close_frame(1001, "idle timeout", None)).await;
            }
            if c2u.at_boundary() {
                let _ = up.write_all(&close_frame(1001, "", Some(mask_key()))).await;
            }
        }
        _ => {}
    }
    let _ = down.shutdown().await;
    let _ = up.shutdown().await;
    Outcome {
        reason,
        moved,
        trackers: (c2u, u2c),
        hand_over_to: None,
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    w.write_all(data).await?;
    w.flush().await
}

/// Gives both peers a moment to answer the close frames (their replies are read and
/// dropped), so that the client sees an orderly close rather than a reset.
async fn linger<D, U>(down: &mut D, up: &mut U)
where
    D: AsyncRead + Unpin,
    U: AsyncRead + Unpin,
{
    let (mut sink_down, mut sink_up) = ([0u8; 1024], [0u8; 1024]);
    let deadline = tokio::time::sleep(CLOSE_LINGER);
    tokio::pin!(deadline);
    let (mut down_done, mut up_done) = (false, false);
    while !(down_done && up_done) {
        tokio::select! {
            r = down.read(&mut sink_down), if !down_done => down_done = !matches!(r, Ok(n) if n > 0),
            r = up.read(&mut sink_up), if !up_done => up_done = !matches!(r, Ok(n) if n > 0),
            _ = &mut deadline => break,
        }
    }
}

/// Masking keys need not be secret here (the gateway is the only writer on this
/// connection); they only have to vary.
fn mask_key() -> [u8; 4] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0x5a5a_5a5a);
    (nanos ^ 0x9e37_79b9).to_le_bytes()
}
