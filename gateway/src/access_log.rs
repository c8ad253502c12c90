//! The access log: one JSON line per request, written by a thread of its own so the request
//! path never waits on disk or a slow terminal. If the writer falls behind, lines are dropped
//! and counted rather than slowing requests.

use crate::config::AccessLogConfig;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

const QUEUE: usize = 64 * 1024;

pub struct AccessLog {
    lines: Option<mpsc::SyncSender<String>>,
    /// Lines queued but not yet written and flushed.
    pending: Arc<AtomicUsize>,
}

impl AccessLog {
    pub fn start(config: &AccessLogConfig) -> std::io::Result<AccessLog> {
        let pending = Arc::new(AtomicUsize::new(0));
        if !config.enabled {
            return Ok(AccessLog {
                lines: None,
                pending,
            });
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
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        let written = pending.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out, &written))?;
        Ok(AccessLog {
            lines: Some(tx),
            pending,
        })
    }

    pub fn enabled(&self) -> bool {
        self.lines.is_some()
    }

    pub fn write(&self, line: String) {
        if let Some(tx) = &self.lines {
            self.pending.fetch_add(1, Ordering::Relaxed);
            if tx.try_send(line).is_err() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                crate::metrics::get().access_log_dropped.inc();
            }
        }
    }

    /// Waits (up to `limit`) until every queued line is written, before the process exits.
    pub fn flush(&self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.pending.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn write_loop(rx: mpsc::Receiver<String>, out: Box<dyn Write + Send>, pending: &AtomicUsize) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        let mut batch = 1;
        // Batch whatever else is queued, then flush once.
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(line.as_bytes());
            batch += 1;
        }
        let _ = out.flush();
        pending.fetch_sub(batch, Ordering::Relaxed);
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
