//! The access log: one JSON line per request, written by a thread of its own so the request
//! path never waits on disk or a slow terminal. If the writer falls behind, lines are dropped
//! and counted rather than slowing requests.

use serde::Deserialize;
use std::io::Write;
use std::ops::Range;
use std::sync::mpsc;
use std::time::SystemTime;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLogConfig {
    pub enabled: bool,
    /// `stdout`, `stderr` or a file path (appended to).
    pub path: String,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            path: "stdout".into(),
        }
    }
}

impl AccessLogConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if self.path.is_empty() {
            report(None, "access_log.path must not be empty".into());
        }
    }
}

const QUEUE: usize = 64 * 1024;

pub struct AccessLog {
    lines: Option<mpsc::SyncSender<String>>,
}

impl AccessLog {
    pub fn start(config: &AccessLogConfig) -> std::io::Result<AccessLog> {
        if !config.enabled {
            return Ok(AccessLog { lines: None });
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
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_loop(rx, out))?;
        Ok(AccessLog { lines: Some(tx) })
    }

    pub fn enabled(&self) -> bool {
        self.lines.is_some()
    }

    pub fn write(&self, line: String) {
        if let Some(tx) = &self.lines {
            if tx.try_send(line).is_err() {
                crate::metrics::get().access_log_dropped.inc();
            }
        }
    }
}

fn write_loop(rx: mpsc::Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    while let Ok(line) = rx.recv() {
        let _ = out.write_all(line.as_bytes());
        // Batch whatever else is queued, then flush once.
        while let Ok(line) = rx.try_recv() {
            let _ = out.write_all(line.as_bytes());
        }
        let _ = out.flush();
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

/// RFC 3339 UTC time with milliseconds, e.g. `2026-11-26T23:40:01.123Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_736_401_123);
        assert_eq!(rfc3339_millis(t), "2026-11-26T23:40:01.123Z");
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
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
