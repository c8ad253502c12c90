//! Path patterns (`/prefix`, `=/exact`, `~regex`) and request path normalisation.

use std::borrow::Cow;

#[derive(Debug, Clone)]
pub enum PathPattern {
    Prefix(String),
    Exact(String),
    Regex(regex::Regex),
}

impl PathPattern {
    pub fn parse(spec: &str) -> Result<PathPattern, String> {
        if let Some(exact) = spec.strip_prefix('=') {
            if !exact.starts_with('/') {
                return Err(format!("exact path {exact:?} must start with '/'"));
            }
            Ok(PathPattern::Exact(exact.to_string()))
        } else if let Some(re) = spec.strip_prefix('~') {
            regex::Regex::new(re)
                .map(PathPattern::Regex)
                .map_err(|e| format!("bad path regex {re:?}: {}", first_line(&e.to_string())))
        } else if spec.starts_with('/') {
            Ok(PathPattern::Prefix(spec.to_string()))
        } else {
            Err(format!(
                "path {spec:?} must start with '/' (prefix), '=' (exact) or '~' (regex)"
            ))
        }
    }
}

fn first_line(s: &str) -> String {
    // regex errors are multi-line with a caret diagram; the last line says what is wrong.
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// Resolves `.` and `..` segments and repeated slashes, so that `/public/../admin` is
/// routed (and forwarded) as `/admin` and cannot slip past a route's plugins.
/// Returns `None` when `..` would climb above the root.
pub fn normalize(path: &str) -> Option<Cow<'_, str>> {
    if !needs_normalizing(path) {
        return Some(Cow::Borrowed(path));
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').skip(1) {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let trailing = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Some(Cow::Owned(out))
}

fn needs_normalizing(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return true;
    }
    b.windows(2).any(|w| w == b"//")
        || path.contains("/./")
        || path.contains("/../")
        || path.ends_with("/.")
        || path.ends_with("/..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_dot_segments() {
        assert_eq!(normalize("/a/b").unwrap(), "/a/b");
        assert_eq!(normalize("/public/../admin").unwrap(), "/admin");
        assert_eq!(normalize("/a//b/./c/").unwrap(), "/a/b/c/");
        assert_eq!(normalize("/a/..").unwrap(), "/");
        assert!(normalize("/../etc/passwd").is_none());
    }

    #[test]
    fn parses_patterns() {
        assert!(matches!(
            PathPattern::parse("/api/"),
            Ok(PathPattern::Prefix(_))
        ));
        assert!(matches!(
            PathPattern::parse("=/x"),
            Ok(PathPattern::Exact(_))
        ));
        assert!(matches!(
            PathPattern::parse("~^/v[0-9]+/"),
            Ok(PathPattern::Regex(_))
        ));
        assert!(PathPattern::parse("~^/v[0-9+/").is_err());
        assert!(PathPattern::parse("api").is_err());
    }
}
