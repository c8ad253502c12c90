//! `tidegate upgrade`: replace a running gateway with this binary, with no refused
//! connection and without the host leaving the load balancer's rotation. Checks first what
//! could make the new process fail (its config, a listen address another program holds),
//! starts it with `--upgrade`, waits until it is listening on the upgrade socket, and only
//! then sends SIGQUIT to the old one (which hands over its listeners and its WebSocket
//! tunnels, then finishes what is open). SIGQUIT is the point of no return — Pingora's old
//! process leaves once signalled — so every check happens before it: a failed upgrade leaves
//! the old process serving and ready, and exits non-zero with the reason.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    pub config: PathBuf,
    /// Every address the new process will listen on (proxy and admin).
    pub listen: Vec<std::net::SocketAddr>,
    pub pid_file: String,
    pub upgrade_sock: String,
    pub grace_period_seconds: u64,
    /// The old process may stay on for its TLS tunnels (`tls_tunnel_linger_seconds`).
    pub lingers: bool,
    pub graceful_shutdown_timeout_seconds: u64,
    pub daemon: bool,
    pub log: Option<PathBuf>,
}

/// Running, and not a zombie waiting for its parent to reap it.
fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

pub fn run(o: Options) -> ExitCode {
    let old = match std::fs::read_to_string(&o.pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        Some(pid) if alive(pid) => pid,
        _ => {
            eprintln!(
                "upgrade: no running tidegate found through pid file {}",
                o.pid_file
            );
            return ExitCode::from(1);
        }
    };
    if let Err(e) = ports_free_or_ours(old, &o.listen) {
        eprintln!("upgrade: {e}; the old process {old} keeps serving");
        return ExitCode::from(1);
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("upgrade: cannot find this binary: {e}");
            return ExitCode::from(1);
        }
    };
    let mut cmd = Command::new(&exe);
    cmd.arg("-c").arg(&o.config).arg("--upgrade");
    if o.daemon {
        cmd.arg("--daemon");
    }
    if let Some(log) = &o.log {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log);
        match file.and_then(|f| Ok((f.try_clone()?, f))) {
            Ok((out, err)) => {
                cmd.stdout(out).stderr(err);
            }
            Err(e) => {
                eprintln!("upgrade: cannot open log {}: {e}", log.display());
                return ExitCode::from(1);
            }
        }
    }
    cmd.stdin(Stdio::null());
    // The socket file is created by the new process; a stale one would fool the wait below.
    let _ = std::fs::remove_file(&o.upgrade_sock);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("upgrade: cannot start {}: {e}", exe.display());
            return ExitCode::from(1);
        }
    };
    // The new process checks its config before it listens on the upgrade socket; one that
    // exits first (a refused config, a bad binary) has failed while the old one serves.
    // Pingora's new process gives up waiting for the listeners after a few seconds.
    let mut exited = None;
    let listening = wait_for(Duration::from_secs(10), || {
        if let Ok(Some(status)) = child.try_wait() {
            exited = Some(status);
            return true;
        }
        Path::new(&o.upgrade_sock).exists()
    });
    if let Some(status) = exited.filter(|_| !o.daemon) {
        eprintln!(
            "upgrade: the new process exited before taking over ({status}); the old process {old} keeps serving"
        );
        return ExitCode::from(1);
    }
    if !listening || !Path::new(&o.upgrade_sock).exists() {
        eprintln!(
            "upgrade: the new process never listened on {}; the old process {old} keeps serving",
            o.upgrade_sock
        );
        let _ = child.kill();
        return ExitCode::from(1);
    }
    if let Err(e) = kill(Pid::from_raw(old), Signal::SIGQUIT) {
        eprintln!("upgrade: cannot signal the old process {old}: {e}");
        let _ = child.kill();
        return ExitCode::from(1);
    }
    eprintln!("upgrade: new process {} takes over from {old}", child.id());
    // Hand-off (5 s of accepting on both), the grace period and the runtime stop.
    // (With TLS tunnels lingering, the old process stays on longer by design: the wait ends
    // with the grace period.)
    let limit = if o.lingers {
        Duration::from_secs(5 + o.grace_period_seconds + 2)
    } else {
        Duration::from_secs(5 + o.grace_period_seconds + o.graceful_shutdown_timeout_seconds + 10)
    };
    if !wait_for(limit, || !alive(old)) {
        if o.lingers {
            // The listeners are the new process's; the old one only serves its TLS tunnels.
            eprintln!(
                "upgrade: done; the old process {old} keeps serving its wss:// tunnels until they end or tls_tunnel_linger_seconds pass"
            );
            return ExitCode::SUCCESS;
        }
        eprintln!("upgrade: the old process {old} is still running after {limit:?}");
        return ExitCode::from(1);
    }
    if !o.daemon {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!("upgrade: the new process exited ({status})");
            return ExitCode::from(1);
        }
    }
    eprintln!(
        "upgrade: done in {:.1}s; old process {old} exited",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Each address must be one the old process listens on (it hands it over) or free now; an
/// address another program holds would make the new process fail after the hand-off.
fn ports_free_or_ours(old: i32, addrs: &[std::net::SocketAddr]) -> Result<(), String> {
    let held = listening_addrs(old);
    for addr in addrs {
        let ours = held.iter().any(|h| h == addr);
        if !ours {
            if let Err(e) = std::net::TcpListener::bind(addr) {
                return Err(format!(
                    "{addr} is not the old process's and cannot be bound: {e}"
                ));
            }
        }
    }
    Ok(())
}

/// The TCP addresses process `pid` listens on: its socket inodes joined with the kernel's
/// table of listening sockets.
fn listening_addrs(pid: i32) -> Vec<std::net::SocketAddr> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                if let Some(addr) = parse_proc_addr(f[1]) {
                    out.push(addr);
                }
            }
        }
    }
    out
}

/// `0100007F:1F90`: the kernel prints each 32-bit word of the address as a number in the
/// machine's byte order (one word for IPv4, four for IPv6), then the port in hex.
fn parse_proc_addr(field: &str) -> Option<std::net::SocketAddr> {
    let (ip, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for i in 0..ip.len() / 8 {
        let word = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_kernel_socket_addresses() {
        assert_eq!(
            super::parse_proc_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            super::parse_proc_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
    }

    #[test]
    fn finds_its_own_listeners() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let pid = std::process::id() as i32;
        assert!(super::listening_addrs(pid).contains(&addr));
        assert!(super::ports_free_or_ours(pid, &[addr]).is_ok());
    }
}
