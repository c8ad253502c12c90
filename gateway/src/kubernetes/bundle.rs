//! The config Secret's files away from their mount: the Ingress controller checks a
//! translation, and a gateway following the Secret through the API serves it, before the
//! kubelet has put its certificates where the config names them. Both write the Secret's
//! other keys into a directory of their own and point the config's paths there.

use std::path::Path;

/// Writes each `(key, bytes)` into `dir` (atomically: a reader never sees half a key).
pub fn write_files<'a>(
    dir: &Path,
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<(), String> {
    for (key, bytes) in files {
        // A Secret's keys are file names ([-._a-zA-Z0-9]+); anything else is not written.
        if key.is_empty() || key.starts_with('.') || key.contains('/') {
            continue;
        }
        let path = dir.join(key);
        // Unchanged files are not touched: a rewritten certificate would look renewed.
        if std::fs::read(&path).ok().as_deref() == Some(bytes) {
            continue;
        }
        crate::discovery::cache::write_atomic(&path, bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `text` with every quoted path under `mount` moved under `dir`.
pub fn relocate(text: &str, mount: &str, dir: &Path) -> String {
    let from = format!("\"{}/", mount.trim_end_matches('/'));
    let to = format!("\"{}/", dir.display());
    text.replace(&from, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_the_mount_move_and_others_stay() {
        let text = "cert = \"/etc/tidegate/config/a.crt\"\nx = \"/etc/tidegate/configs/b\"\n";
        let moved = relocate(text, "/etc/tidegate/config/", Path::new("/tmp/s"));
        assert_eq!(
            moved,
            "cert = \"/tmp/s/a.crt\"\nx = \"/etc/tidegate/configs/b\"\n"
        );
    }

    #[test]
    fn only_plain_file_names_are_written() {
        // Under a directory of this test's own, so that `../x` is looked for where nothing
        // else could have put an `x` (a scratch `/tmp/x` once failed this test).
        let root = std::env::temp_dir().join(format!("tidegate-bundle-{}", std::process::id()));
        let dir = root.join("files");
        write_files(
            &dir,
            [("a.crt", &b"A"[..]), ("../x", b"X"), (".hidden", b"H")],
        )
        .unwrap();
        assert_eq!(std::fs::read(dir.join("a.crt")).unwrap(), b"A");
        assert!(!dir.join(".hidden").exists());
        assert!(!root.join("x").exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
