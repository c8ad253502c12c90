//! The request's host, normalised for routing.

use std::borrow::Cow;

/// The request's host without port, in lower case. Allocates only when the client sent
/// upper-case letters.
pub fn normalize(raw: &str) -> Cow<'_, str> {
    let name = strip_port(raw);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn strip_port(raw: &str) -> &str {
    if raw.starts_with('[') {
        // IPv6 literal: keep the brackets, drop a port after them.
        return match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        };
    }
    match raw.rfind(':') {
        Some(i) if raw[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &raw[..i],
        _ => raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_port_and_trailing_dot() {
        assert_eq!(normalize("Chat.Example.COM:8080"), "chat.example.com");
        assert_eq!(normalize("chat.example.com."), "chat.example.com");
        assert_eq!(normalize("[::1]:80"), "[::1]");
        assert!(matches!(normalize("plain.host"), Cow::Borrowed(_)));
    }
}
