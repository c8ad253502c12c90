//! `tidegate upgrade`: replace a running gateway with this binary, with no refused
//! connection. Starts the new process with `--upgrade`, waits until it is listening on the
//! upgrade socket, sends SIGQUIT to the old one (which hands over its listeners and its
//! WebSocket tunnels, then drains) and reports when the old process has exited.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    pub config: PathBuf,
    pub pid_file: String,
    pub upgrade_sock: String,
    pub grace_period_seconds: u64,
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
    !matches!(state, Some('Z') | Some('X') | None)
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
    let exe = std::env::current_exe().expect("own path");
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
    // Pingora's new process gives up waiting for the listeners after a few seconds.
    if !wait_for(Duration::from_secs(10), || {
        Path::new(&o.upgrade_sock).exists()
    }) {
        eprintln!(
            "upgrade: the new process never listened on {}",
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
    let limit =
        Duration::from_secs(5 + o.grace_period_seconds + o.graceful_shutdown_timeout_seconds + 10);
    if !wait_for(limit, || !alive(old)) {
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
