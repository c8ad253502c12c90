//! Handing open WebSocket tunnels to the new process during a binary upgrade.
//!
//! After the 101 a plain-TCP tunnel is two sockets and the state of two frame trackers; the
//! relay holds no bytes between reads. So the old process stops a relay between two reads and
//! sends both descriptors (SCM_RIGHTS) with the tunnel's identity and tracker state, one
//! record per tunnel, over a SOCK_SEQPACKET Unix socket that the new process bound before
//! taking the listeners (`<upgrade_sock>.tunnels`). The new process adopts each record and
//! resumes copying; bytes that arrived meanwhile wait in the kernel's socket buffers. Neither
//! peer sees anything but a short pause.
//!
//! Tunnels over TLS terminated at the gateway cannot move (the TLS session state lives in
//! this process's memory); they are closed with 1001 over the grace period instead.

use super::frames::FrameTracker;
use super::registry::TunnelInfo;
use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A tunnel taken out of its relay, ready to travel.
#[derive(Debug)]
pub struct Parked {
    pub info: TunnelInfo,
    pub client: OwnedFd,
    pub upstream: OwnedFd,
    /// (client → upstream, upstream → client)
    pub trackers: (FrameTracker, FrameTracker),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    info: TunnelInfo,
    c2u: FrameTracker,
    u2c: FrameTracker,
}

const MAX_RECORD: usize = 16 * 1024;

pub fn socket_path(upgrade_sock: &str) -> PathBuf {
    PathBuf::from(format!("{upgrade_sock}.tunnels"))
}

fn io(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

fn seqpacket() -> std::io::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)
}

/// New process: listen for tunnels. Done before taking the listeners, so that the old process
/// finds the socket as soon as it starts handing over.
pub fn bind(path: &Path) -> std::io::Result<OwnedFd> {
    let _ = std::fs::remove_file(path);
    let fd = seqpacket()?;
    socket::bind(fd.as_raw_fd(), &UnixAddr::new(path).map_err(io)?).map_err(io)?;
    socket::listen(&fd, Backlog::new(16).map_err(io)?).map_err(io)?;
    Ok(fd)
}

/// New process: accepts hand-over connections on a thread of its own and calls `adopt` for
/// every tunnel received.
pub fn serve(listener: OwnedFd, adopt: impl Fn(Parked) + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name("tunnel-handover".into())
        .spawn(move || loop {
            let conn = match socket::accept(listener.as_raw_fd()) {
                // SAFETY: accept returned a new descriptor that nothing else owns.
                Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
                Err(e) => {
                    log::error!("tunnel hand-over: accept failed: {e}");
                    return;
                }
            };
            let mut adopted = 0usize;
            loop {
                match receive(&conn) {
                    Ok(Some(parked)) => {
                        adopted += 1;
                        adopt(parked);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        log::error!("tunnel hand-over: receive failed: {e}");
                        break;
                    }
                }
            }
            log::info!("tunnel hand-over: adopted {adopted} tunnels");
        });
    if let Err(e) = spawned {
        log::error!("tunnel hand-over: cannot start its thread: {e}");
    }
}

fn receive(conn: &OwnedFd) -> std::io::Result<Option<Parked>> {
    let mut buf = vec![0u8; MAX_RECORD];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = socket::recvmsg::<UnixAddr>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(io)?;
        let mut fds = Vec::new();
        for c in msg.cmsgs().map_err(io)? {
            if let ControlMessageOwned::ScmRights(received) = c {
                fds.extend(received);
            }
        }
        (msg.bytes, fds)
    };
    // SAFETY: SCM_RIGHTS gave this process new descriptors that nothing else owns.
    let mut owned: Vec<OwnedFd> = fds
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect();
    if len == 0 {
        return Ok(None); // the old process closed the connection: all sent
    }
    let record: Record = serde_json::from_slice(&buf[..len])
        .map_err(|e| std::io::Error::other(format!("bad hand-over record: {e}")))?;
    if owned.len() != 2 {
        return Err(std::io::Error::other(
            "hand-over record without its two sockets",
        ));
    }
    let upstream = owned.pop().expect("two");
    let client = owned.pop().expect("two");
    Ok(Some(Parked {
        info: record.info,
        client,
        upstream,
        trackers: (record.c2u, record.u2c),
    }))
}

/// Old process: the connection to the new process's hand-over socket.
pub struct Sender {
    conn: OwnedFd,
}

impl Sender {
    /// Connects, retrying until `wait` passes (the new process may still be starting).
    pub fn connect(path: &Path, wait: Duration) -> std::io::Result<Sender> {
        let deadline = Instant::now() + wait;
        let addr = UnixAddr::new(path).map_err(io)?;
        loop {
            let fd = seqpacket()?;
            match socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) => return Ok(Sender { conn: fd }),
                Err(e) if Instant::now() >= deadline => return Err(io(e)),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Sends one tunnel. Once this returns the descriptors are in flight in the kernel, so
    /// the caller may drop its copies.
    pub fn send(&self, parked: &Parked) -> std::io::Result<()> {
        let record = Record {
            info: parked.info.clone(),
            c2u: parked.trackers.0.clone(),
            u2c: parked.trackers.1.clone(),
        };
        let payload = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        let fds = [parked.client.as_raw_fd(), parked.upstream.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(&payload)];
        socket::sendmsg::<UnixAddr>(self.conn.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
            .map_err(io)?;
        Ok(())
    }
}
