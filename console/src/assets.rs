//! The UI's files, embedded in the binary: the console works offline and ships as one file.
//!
//! Every file under `assets/` is served at its path there (`/app.js`, `/lib/api.js`,
//! `/views/routes.js`…; `/` is `index.html`). The UI is ES modules loaded by the browser as
//! they are, no build step: `app.js` imports `lib/*.js` and `views/*.js`. The tests below
//! check that no file on disk is missing from `FILES` and that every import resolves to one.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// `embed!["a.js", "lib/b.js"]` → `&[("a.js", <text of assets/a.js>), …]`, read at compile time.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../assets/", $path)))),*]
    };
}

/// Path under `assets/` → contents.
const FILES: &[(&str, &str)] = embed![
    "index.html",
    "app.css",
    "app.js",
    "lib/api.js",
    "lib/crud.js",
    "lib/data.js",
    "lib/dom.js",
    "lib/format.js",
    "lib/forms.js",
    "lib/header.js",
    "lib/i18n.js",
    "lib/notice.js",
    "lib/router.js",
    "lib/state.js",
    "lib/ui.js",
    "views/audit.js",
    "views/bluegreen.js",
    "views/consumer-form.js",
    "views/consumers.js",
    "views/fleet.js",
    "views/history.js",
    "views/limits.js",
    "views/login.js",
    "views/plugin-form.js",
    "views/plugins.js",
    "views/route-form.js",
    "views/routes.js",
    "views/service-form.js",
    "views/services.js",
    "views/toml.js",
];

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The embedded file for a request path, as (content type, body).
fn lookup(path: &str) -> Option<(&'static str, &'static str)> {
    let path = if path == "/" {
        "index.html"
    } else {
        path.strip_prefix('/')?
    };
    FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, body)| (content_type(p), *body))
}

pub async fn serve(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": "no such API endpoint"})),
        )
            .into_response();
    }
    match lookup(uri.path()) {
        Some((content_type, body)) => (
            [
                (header::CONTENT_TYPE, content_type),
                // Only our own scripts and styles; no framing by other sites.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn embedded() -> BTreeSet<&'static str> {
        FILES.iter().map(|(path, _)| *path).collect()
    }

    /// The files under `dir` (dot files skipped), as paths relative to `assets/`.
    fn on_disk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with('.') {
                continue;
            }
            let path = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type().unwrap().is_dir() {
                on_disk(&entry.path(), &path, out);
            } else {
                out.push(path);
            }
        }
    }

    /// The specifiers of a module's static imports: `import … from '…'`, `import '…'` and
    /// `export … from '…'`. A statement starts a line and ends at its `;`.
    fn specifiers(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut offset = 0;
        for line in source.split_inclusive('\n') {
            let start = offset;
            offset += line.len();
            let code = line.trim_start();
            let import = code
                .strip_prefix("import")
                .is_some_and(|r| r.starts_with([' ', '{', '*', '\'', '"']));
            let reexport = code
                .strip_prefix("export")
                .is_some_and(|r| r.trim_start().starts_with(['{', '*']));
            if !import && !reexport {
                continue;
            }
            let rest = &source[start..];
            let statement = rest[..rest.find(';').expect("an import ends with ;")].trim_end();
            let Some(quote) = statement.chars().last().filter(|c| *c == '\'' || *c == '"') else {
                assert!(reexport, "cannot read the specifier of {statement:?}");
                continue; // `export { a, b };`: no module
            };
            let inner = &statement[..statement.len() - 1];
            let open = inner.rfind(quote).expect("a quoted specifier");
            out.push(inner[open + 1..].to_string());
        }
        out
    }

    /// What the browser fetches for `specifier` imported by `module` (both relative to
    /// `assets/`); None for a bare specifier (there is no import map) or one above the root.
    fn resolve(module: &str, specifier: &str) -> Option<String> {
        let (mut parts, rest) = if let Some(absolute) = specifier.strip_prefix('/') {
            (Vec::new(), absolute)
        } else if specifier.starts_with("./") || specifier.starts_with("../") {
            let mut dir: Vec<&str> = module.split('/').collect();
            dir.pop();
            (dir, specifier)
        } else {
            return None;
        };
        for part in rest.split('/') {
            match part {
                "." => {}
                ".." => {
                    parts.pop()?;
                }
                "" => return None,
                name => parts.push(name),
            }
        }
        Some(parts.join("/"))
    }

    #[test]
    fn every_file_under_assets_is_embedded() {
        let mut files = Vec::new();
        on_disk(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"),
            "",
            &mut files,
        );
        let embedded = embedded();
        let missing: Vec<&String> = files
            .iter()
            .filter(|f| !embedded.contains(f.as_str()))
            .collect();
        assert!(missing.is_empty(), "not in FILES (assets.rs): {missing:?}");
        assert_eq!(embedded.len(), FILES.len(), "a file is listed twice");
        for (path, _) in FILES {
            assert_ne!(
                content_type(path),
                "application/octet-stream",
                "no content type for {path}"
            );
        }
    }

    #[test]
    fn every_import_resolves_to_an_embedded_module_and_every_module_is_used() {
        let embedded = embedded();
        let source = |path: &str| FILES.iter().find(|(p, _)| *p == path).unwrap().1;
        // Walk the module graph from the entry, as the browser does.
        let mut reached = BTreeSet::from(["app.js".to_string()]);
        let mut todo = vec!["app.js".to_string()];
        while let Some(module) = todo.pop() {
            for specifier in specifiers(source(module.as_str())) {
                let target = resolve(&module, &specifier)
                    .filter(|t| embedded.contains(t.as_str()))
                    .unwrap_or_else(|| {
                        panic!("{module}: import {specifier:?} is no embedded file")
                    });
                assert!(target.ends_with(".js"), "{module} imports {target}");
                if reached.insert(target.clone()) {
                    todo.push(target);
                }
            }
        }
        let modules: BTreeSet<String> = FILES
            .iter()
            .filter(|(p, _)| p.ends_with(".js"))
            .map(|(p, _)| p.to_string())
            .collect();
        let unused: Vec<&String> = modules.difference(&reached).collect();
        assert!(
            unused.is_empty(),
            "modules app.js never imports: {unused:?}"
        );
        assert!(
            reached.len() > 10,
            "the import scan found too little: {reached:?}"
        );
    }

    #[test]
    fn the_page_finds_its_script_and_styles() {
        let page = lookup("/").unwrap();
        assert_eq!(page.0, "text/html; charset=utf-8");
        assert!(page
            .1
            .contains(r#"<script type="module" src="/app.js"></script>"#));
        for attr in [r#"src="/"#, r#"href="/"#] {
            for (at, _) in page.1.match_indices(attr) {
                let rest = &page.1[at + attr.len() - 1..];
                let url = &rest[..rest.find('"').unwrap()];
                assert!(lookup(url).is_some(), "index.html refers to {url}");
            }
        }
        assert_eq!(
            lookup("/views/routes.js").unwrap().0,
            "text/javascript; charset=utf-8"
        );
        assert_eq!(lookup("/app.css").unwrap().0, "text/css; charset=utf-8");
        for missing in [
            "/nothing.js",
            "//app.js",
            "/../Cargo.toml",
            "lib/api.js",
            "",
        ] {
            assert!(lookup(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn imports_are_read_and_resolved_like_a_browser() {
        let source = "import { a, b } from './lib/x.js';\nimport {\n  c,\n} from \"../y.js\";\nimport './side.js';\nexport { d } from '/abs/z.js';\nexport { e };\nconst s = 'import nothing';\n";
        assert_eq!(
            specifiers(source),
            ["./lib/x.js", "../y.js", "./side.js", "/abs/z.js"]
        );
        assert_eq!(
            resolve("views/a.js", "../lib/api.js").as_deref(),
            Some("lib/api.js")
        );
        assert_eq!(
            resolve("views/a.js", "./b.js").as_deref(),
            Some("views/b.js")
        );
        assert_eq!(
            resolve("app.js", "./lib/dom.js").as_deref(),
            Some("lib/dom.js")
        );
        assert_eq!(
            resolve("app.js", "/lib/dom.js").as_deref(),
            Some("lib/dom.js")
        );
        assert_eq!(resolve("app.js", "../x.js"), None);
        assert_eq!(resolve("app.js", "lit"), None);
    }
}
