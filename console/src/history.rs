//! Every saved config is a version (text + author, time, message) in `history_dir/versions/`,
//! so any earlier one can be restored; every action is a line in `history_dir/audit.jsonl`.
//! Files, not a database: an operator can read, back up and diff them with plain tools.

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: u64,
    pub author: String,
    pub at: String,
    pub message: String,
    pub hash: String,
    pub added: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    pub action: String,
    pub detail: String,
    pub ok: bool,
}

pub struct History {
    dir: PathBuf,
    /// One writer at a time: versions are numbered in order.
    lock: Mutex<()>,
}

pub fn now() -> String {
    tidegate::access_log::rfc3339_millis(std::time::SystemTime::now())
}

/// A unified diff, and the counts of added and removed lines.
pub fn diff(old: &str, new: &str) -> (String, usize, usize) {
    let d = similar::TextDiff::from_lines(old, new);
    let (mut added, mut removed) = (0, 0);
    for change in d.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => added += 1,
            similar::ChangeTag::Delete => removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text = d
        .unified_diff()
        .context_radius(3)
        .header("previous", "this version")
        .to_string();
    (text, added, removed)
}

impl History {
    pub fn open(dir: &str) -> Result<History, String> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(dir.join("versions"))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(History {
            dir,
            lock: Mutex::new(()),
        })
    }

    fn path(&self, version: u64, ext: &str) -> PathBuf {
        self.dir
            .join("versions")
            .join(format!("{version:06}.{ext}"))
    }

    pub fn list(&self) -> Vec<VersionMeta> {
        let mut out: Vec<VersionMeta> = std::fs::read_dir(self.dir.join("versions"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        out.sort_by_key(|m| std::cmp::Reverse(m.version));
        out
    }

    pub fn latest(&self) -> Option<(VersionMeta, String)> {
        let meta = self.list().into_iter().next()?;
        let text = self.text(meta.version)?;
        Some((meta, text))
    }

    pub fn get(&self, version: u64) -> Option<VersionMeta> {
        let bytes = std::fs::read(self.path(version, "json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn text(&self, version: u64) -> Option<String> {
        std::fs::read_to_string(self.path(version, "toml")).ok()
    }

    /// Records `text` as the next version; returns it.
    pub fn record(&self, text: &str, author: &str, message: &str) -> Result<VersionMeta, String> {
        let _one = self.lock.lock();
        let previous = self.latest();
        let (_, added, removed) = diff(previous.as_ref().map_or("", |(_, t)| t), text);
        let meta = VersionMeta {
            version: previous.map_or(1, |(m, _)| m.version + 1),
            author: author.into(),
            at: now(),
            message: message.into(),
            hash: tidegate::snapshot::content_hash(text),
            added,
            removed,
        };
        std::fs::write(self.path(meta.version, "toml"), text)
            .and_then(|_| {
                std::fs::write(
                    self.path(meta.version, "json"),
                    serde_json::to_vec_pretty(&meta).expect("serializable"),
                )
            })
            .map_err(|e| format!("cannot record version {}: {e}", meta.version))?;
        Ok(meta)
    }

    pub fn audit(&self, user: &str, action: &str, detail: &str, ok: bool) {
        let entry = AuditEntry {
            at: now(),
            user: user.into(),
            action: action.into(),
            detail: detail.into(),
            ok,
        };
        let mut line = serde_json::to_string(&entry).expect("serializable");
        line.push('\n');
        use std::io::Write;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("audit.jsonl"))
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            log::error!("cannot write the audit log: {e}");
        }
    }

    pub fn audit_entries(&self, limit: usize) -> Vec<AuditEntry> {
        let text = std::fs::read_to_string(self.dir.join("audit.jsonl")).unwrap_or_default();
        let mut out: Vec<AuditEntry> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        out.reverse();
        out.truncate(limit);
        out
    }
}
