//! Path patterns (`/prefix`, `=/exact`, `~regex`) and request path normalisation.

use crate::config::EscapedSlashes;
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

/// How a request path is normalised (from `[edge]`).
#[derive(Debug, Clone, Copy)]
pub struct PathPolicy {
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Reject,
        }
    }
}

/// Why a path cannot be routed (each a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `..` would climb above `/`.
    AboveRoot,
    /// `%2F`, `%5C` or `\` with `escaped_slashes = "reject"`.
    EscapedSlash,
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%00`: no back end means the same by it.
    EncodedNul,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::AboveRoot => "path climbs above the root",
            PathError::EscapedSlash => "an encoded slash or a backslash in the path",
            PathError::BadEscape => "a malformed percent-escape in the path",
            PathError::EncodedNul => "an encoded NUL in the path",
        }
    }
}

/// The path as it is routed and forwarded (RFC 3986 §6.2.2): percent-escapes of unreserved
/// characters decoded (so `%2e%2e` is `..`), other escapes upper-cased; encoded `/` and `\`
/// (and a raw `\`) as the policy says; `.` and `..` segments resolved; repeated slashes
/// merged. So `/public/%2e%2e/admin` is routed — and forwarded — as `/admin`, and cannot
/// slip past a route's plugins. Allocates only when the path changes.
pub fn normalize(path: &str, policy: PathPolicy) -> Result<Cow<'_, str>, PathError> {
    if !needs_normalizing(path, policy) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path, policy.escaped_slashes)?;
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = decoded.split('/');
    if !decoded.starts_with('/') {
        // Only origin-form paths reach here; anything else is made absolute.
    } else {
        parts.next();
    }
    for segment in parts {
        match segment {
            "" if policy.merge_slashes => {}
            "." => {}
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
            }
            s => segments.push(s),
        }
    }
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing && !out.ends_with('/') || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

fn needs_normalizing(path: &str, policy: PathPolicy) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return true;
    }
    b.contains(&b'%')
        || b.contains(&b'\\')
        || (policy.merge_slashes && b.windows(2).any(|w| w == b"//"))
        || path.contains("/./")
        || path.contains("/../")
        || path.ends_with("/.")
        || path.ends_with("/..")
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes escapes of unreserved characters, applies the slash policy, upper-cases the rest.
fn decode(path: &str, slashes: EscapedSlashes) -> Result<String, PathError> {
    let b = path.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let c = h * 16 + l;
                match c {
                    0 => return Err(PathError::EncodedNul),
                    b'/' | b'\\' => match slashes {
                        EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
                        EscapedSlashes::Keep => out.push_str(if c == b'/' { "%2F" } else { "%5C" }),
                        EscapedSlashes::Decode => out.push('/'),
                    },
                    c if unreserved(c) => out.push(c as char),
                    c => {
                        out.push('%');
                        out.push_str(&format!("{c:02X}"));
                    }
                }
                i += 3;
            }
            b'\\' => {
                match slashes {
                    EscapedSlashes::Reject => return Err(PathError::EscapedSlash),
                    EscapedSlashes::Keep => out.push_str("%5C"),
                    EscapedSlashes::Decode => out.push('/'),
                }
                i += 1;
            }
            _ => {
                // Copy a run of plain bytes (UTF-8 passes through whole).
                let start = i;
                while i < b.len() && b[i] != b'%' && b[i] != b'\\' {
                    i += 1;
                }
                out.push_str(&path[start..i]);
            }
        }
    }
    if !out.starts_with('/') {
        out.insert(0, '/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize(p, PathPolicy::default()).map(Cow::into_owned)
    }

    #[test]
    fn normalizes_dot_segments() {
        assert_eq!(norm("/a/b").unwrap(), "/a/b");
        assert!(matches!(
            normalize("/a/b", PathPolicy::default()),
            Ok(Cow::Borrowed(_))
        ));
        assert_eq!(norm("/public/../admin").unwrap(), "/admin");
        assert_eq!(norm("/a//b/./c/").unwrap(), "/a/b/c/");
        assert_eq!(norm("/a/..").unwrap(), "/");
        assert_eq!(norm("/../etc/passwd"), Err(PathError::AboveRoot));
    }

    #[test]
    fn decodes_unreserved_escapes_before_resolving_dots() {
        assert_eq!(norm("/public/%2e%2e/admin/x").unwrap(), "/admin/x");
        assert_eq!(norm("/public/%2E%2E/admin").unwrap(), "/admin");
        assert_eq!(norm("/a/%2e/b").unwrap(), "/a/b");
        assert_eq!(norm("/%7Euser/%41").unwrap(), "/~user/A");
        assert_eq!(norm("/a%20b/%c3%a9").unwrap(), "/a%20b/%C3%A9");
        assert_eq!(norm("/x/%2e%2e/%2e%2e/y"), Err(PathError::AboveRoot));
        assert_eq!(norm("/a%2"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%00b"), Err(PathError::EncodedNul));
        assert_eq!(norm("/a%0d%0a").unwrap(), "/a%0D%0A");
    }

    #[test]
    fn escaped_slashes_follow_the_policy() {
        let with = |escaped_slashes| PathPolicy {
            merge_slashes: true,
            escaped_slashes,
        };
        assert_eq!(norm("/a%2Fb"), Err(PathError::EscapedSlash));
        assert_eq!(norm("/a%5cb"), Err(PathError::EscapedSlash));
        assert_eq!(norm("/a\\b"), Err(PathError::EscapedSlash));
        let keep = normalize("/a%2fb/%5C", with(EscapedSlashes::Keep)).unwrap();
        assert_eq!(keep, "/a%2Fb/%5C");
        let decode = normalize("/public%2F..%2Fadmin", with(EscapedSlashes::Decode)).unwrap();
        assert_eq!(decode, "/admin");
    }

    #[test]
    fn merging_slashes_is_a_choice() {
        let keep = PathPolicy {
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::Reject,
        };
        assert_eq!(normalize("//a///b", PathPolicy::default()).unwrap(), "/a/b");
        assert_eq!(normalize("//a///b", keep).unwrap(), "//a///b");
        assert_eq!(normalize("/a//../b", keep).unwrap(), "/a/b");
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
