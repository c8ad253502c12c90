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
    /// The newest version, kept in memory (every change and the fleet view ask for it). Its
    /// lock also makes writers take turns, so versions are numbered in order.
    latest: Mutex<Option<VersionMeta>>,
}

pub fn now() -> String {
    tidegate::time::rfc3339_millis(std::time::SystemTime::now())
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
        let mut history = History {
            dir,
            latest: Mutex::new(None),
        };
        *history.latest.get_mut() = history.list().into_iter().next();
        Ok(history)
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

    pub fn latest(&self) -> Option<VersionMeta> {
        self.latest.lock().clone()
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
        let mut latest = self.latest.lock();
        let previous = latest
            .as_ref()
            .and_then(|m| self.text(m.version))
            .unwrap_or_default();
        let (_, added, removed) = diff(&previous, text);
        let meta = VersionMeta {
            version: latest.as_ref().map_or(1, |m| m.version + 1),
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
        *latest = Some(meta.clone());
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
