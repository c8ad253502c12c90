//! The access log: one JSON line per request, written by a thread of its own so the request
//! path never waits on disk or a slow terminal. Requests append their line to a shared buffer;
//! the writer takes the whole buffer every `flush_interval_ms` (or as soon as [`WAKE_AT`] bytes
//! wait) and writes it in one go. So a request costs a short lock and a copy, not a wake-up of
//! the writer thread — which, on a gateway pinned to one core, was a context switch per
//! request. If the writer falls behind by [`MAX_QUEUED`] bytes, lines are dropped and counted
//! rather than slowing requests.

use crate::config::AccessLogConfig;
use parking_lot::{Condvar, Mutex};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Queued bytes that wake the writer before its time.
const WAKE_AT: usize = 256 * 1024;
/// Queued bytes at most; beyond them lines are dropped (the writer is stuck or far behind).
const MAX_QUEUED: usize = 16 * 1024 * 1024;

struct Shared {
    queue: Mutex<Vec<u8>>,
    wake: Condvar,
    /// Bytes accepted but not yet written and flushed.
    unwritten: AtomicUsize,
}

pub struct AccessLog {
    shared: Option<Arc<Shared>>,
}

impl AccessLog {
    pub fn start(config: &AccessLogConfig) -> std::io::Result<AccessLog> {
        if !config.enabled {
            return Ok(AccessLog { shared: None });
        }
        let out: Box<dyn Write + Send> = match config.path.as_str() {
            "stdout" => Box::new(std::io::stdout()),
            "stderr" => Box::new(std::io::stderr()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            unwritten: AtomicUsize::new(0),
        });
        let writer = shared.clone();
        let every = Duration::from_millis(config.flush_interval_ms.max(1));
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(&writer, out, every))?;
        Ok(AccessLog {
            shared: Some(shared),
        })
    }

    pub fn enabled(&self) -> bool {
        self.shared.is_some()
    }

    pub fn write(&self, line: String) {
        let Some(shared) = &self.shared else { return };
        let mut queue = shared.queue.lock();
        if queue.len() + line.len() > MAX_QUEUED {
            drop(queue);
            crate::metrics::get().access_log_dropped.inc();
            return;
        }
        queue.extend_from_slice(line.as_bytes());
        shared.unwritten.fetch_add(line.len(), Ordering::Relaxed);
        if queue.len() >= WAKE_AT {
            shared.wake.notify_one();
        }
    }

    /// Waits (up to `limit`) until every queued line is written, before the process exits.
    pub fn flush(&self, limit: Duration) {
        let Some(shared) = &self.shared else { return };
        shared.wake.notify_one();
        let deadline = Instant::now() + limit;
        while shared.unwritten.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn write_loop(shared: &Shared, mut out: Box<dyn Write + Send>, every: Duration) {
    // Swapped with the queue each round, so neither side allocates once both have grown.
    let mut spare = Vec::new();
    loop {
        {
            let mut queue = shared.queue.lock();
            if queue.len() < WAKE_AT {
                shared.wake.wait_for(&mut queue, every);
            }
            std::mem::swap(&mut *queue, &mut spare);
        }
        if spare.is_empty() {
            continue;
        }
        let _ = out.write_all(&spare);
        let _ = out.flush();
        shared.unwritten.fetch_sub(spare.len(), Ordering::Relaxed);
        spare.clear();
        if spare.capacity() > 4 * WAKE_AT {
            // A burst's buffer is not kept for ever.
            spare = Vec::new();
        }
    }
}

/// Builds one JSON object without an intermediate map.
pub struct Line {
    out: String,
}

impl Line {
    pub fn new() -> Line {
        let mut out = String::with_capacity(384);
        out.push('{');
        Line { out }
    }

    pub fn str(mut self, key: &str, value: &str) -> Line {
        self.key(key);
        escape_into(&mut self.out, value);
        self
    }

    pub fn num(mut self, key: &str, value: impl std::fmt::Display) -> Line {
        use std::fmt::Write;
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    /// A JSON value as it is (an object, an array, a number).
    pub fn json(mut self, key: &str, value: &serde_json::Value) -> Line {
        use std::fmt::Write;
        self.key(key);
        let _ = write!(self.out, "{value}");
        self
    }

    fn key(&mut self, key: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        escape_into(&mut self.out, key);
        self.out.push(':');
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("}\n");
        self.out
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                use std::fmt::Write;
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_file_in_order_and_flush_waits_for_them() {
        let dir = std::env::temp_dir().join(format!("tidegate-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let config = AccessLogConfig {
            path: path.to_string_lossy().into_owned(),
            ..AccessLogConfig::default()
        };
        let log = AccessLog::start(&config).unwrap();
        for i in 0..10_000 {
            log.write(Line::new().num("n", i).finish());
        }
        log.flush(Duration::from_secs(10));
        let text = std::fs::read_to_string(&path).unwrap();
        let numbers: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["n"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (0..10_000).collect::<Vec<u64>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn escapes_json() {
        let line = Line::new()
            .str("p", "a\"b\\c\n\u{1}")
            .num("s", 200)
            .finish();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["p"], "a\"b\\c\n\u{1}");
        assert_eq!(v["s"], 200);
    }
}
