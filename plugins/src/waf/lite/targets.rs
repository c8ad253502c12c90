//! Where the WAF looks: each part of a request decoded as the application will see it, and
//! checked with the checks that suit it (a path is not a SQL string; a whole free-text body
//! is not a query parameter).

use super::detect::{decode, inspect_within, is_scanner, Check};
use pingora_http::RequestHeader;
use std::borrow::Cow;

pub struct Finding {
    pub check: Check,
    /// `path`, `query:NAME`, `cookie:NAME`, `header:user-agent`, `body:NAME`, `body`, …
    pub target: String,
}

fn found(check: Check, target: impl Into<String>) -> Option<Finding> {
    Some(Finding {
        check,
        target: target.into(),
    })
}

const VALUE_CHECKS: [Check; 4] = [Check::Sqli, Check::Xss, Check::Traversal, Check::Cmdi];

/// `checks(param)`: the checks in force for a parameter (None: the request as a whole).
pub fn inspect_head<'a>(
    req: &RequestHeader,
    checks: &dyn Fn(Option<&str>) -> Cow<'a, [Check]>,
) -> Option<Finding> {
    let whole = checks(None);
    if whole.contains(&Check::Protocol) {
        if let Some(anomaly) = protocol_anomaly(req) {
            return found(Check::Protocol, anomaly);
        }
    }
    if whole.contains(&Check::Scanner) {
        if let Some(ua) = req.headers.get(http::header::USER_AGENT) {
            if is_scanner(ua.as_bytes()) {
                return found(Check::Scanner, "header:user-agent");
            }
        }
    }
    // The path: traversal and markup; SQL and shell syntax are looked for in parameters.
    let path = decode(req.uri.path().as_bytes(), false);
    if let Some(check) = inspect_within(&path, &whole, &[Check::Traversal, Check::Xss]) {
        return found(check, "path");
    }
    if let Some(query) = req.uri.query() {
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let (wanted, within) = (&checks(Some(&name)), &VALUE_CHECKS);
            // form_urlencoded decoded once; a second pass catches double encoding.
            for part in [name.as_bytes(), value.as_bytes()] {
                if let Some(check) = inspect_within(&decode(part, false), wanted, within) {
                    return found(check, format!("query:{name}"));
                }
            }
        }
    }
    for cookie in req.headers.get_all(http::header::COOKIE) {
        for pair in cookie.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = String::from_utf8_lossy(name);
            let (wanted, within) = (
                &checks(Some(&name)),
                &[Check::Sqli, Check::Xss, Check::Traversal],
            );
            if let Some(check) = inspect_within(&decode(value, false), wanted, within) {
                return found(check, format!("cookie:{name}"));
            }
        }
    }
    for header in [http::header::USER_AGENT, http::header::REFERER] {
        if let Some(value) = req.headers.get(&header) {
            let (wanted, within) = (&whole, &[Check::Sqli, Check::Xss]);
            if let Some(check) = inspect_within(&decode(value.as_bytes(), false), wanted, within) {
                return found(check, format!("header:{header}"));
            }
        }
    }
    None
}

/// Request smuggling and malformed-request signs that Pingora's parser lets through.
fn protocol_anomaly(req: &RequestHeader) -> Option<&'static str> {
    let headers = &req.headers;
    let lengths: Vec<_> = headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .collect();
    if headers.contains_key(http::header::TRANSFER_ENCODING) && !lengths.is_empty() {
        return Some("both content-length and transfer-encoding");
    }
    if lengths.len() > 1 && lengths.windows(2).any(|w| w[0] != w[1]) {
        return Some("conflicting content-length headers");
    }
    if lengths.iter().any(|v| {
        v.to_str()
            .map_or(true, |s| s.trim().parse::<u64>().is_err())
    }) {
        return Some("content-length is not a number");
    }
    if req.version == http::Version::HTTP_11 && !headers.contains_key(http::header::HOST) {
        return Some("HTTP/1.1 request without host");
    }
    if matches!(req.method.as_str(), "TRACE" | "TRACK" | "DEBUG") {
        return Some("method used for cross-site tracing");
    }
    let raw_path = req.uri.path().as_bytes();
    let decoded = decode(raw_path, false);
    if decoded
        .iter()
        .any(|b| *b == 0 || *b == b'\r' || *b == b'\n')
    {
        return Some("control character in the path");
    }
    None
}

/// The body, by its content type: form fields and JSON strings are parameters; any other
/// text is checked as a whole for markup; binary and multipart bodies are not inspected.
pub fn inspect_body<'a>(
    req: &RequestHeader,
    body: &[u8],
    checks: &dyn Fn(Option<&str>) -> Cow<'a, [Check]>,
) -> Option<Finding> {
    if body.is_empty() {
        return None;
    }
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        for (name, value) in form_urlencoded::parse(body) {
            let (wanted, within) = (&checks(Some(&name)), &VALUE_CHECKS);
            if let Some(check) = inspect_within(&decode(value.as_bytes(), false), wanted, within) {
                return found(check, format!("body:{name}"));
            }
        }
        return None;
    }
    if content_type.contains("json") {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
            return inspect_json(&value, None, checks);
        }
    }
    let texty = content_type.is_empty()
        || content_type.starts_with("text/")
        || content_type.contains("xml")
        || content_type.contains("json");
    if texty {
        let (wanted, within) = (&checks(None), &[Check::Xss]);
        if let Some(check) = inspect_within(body, wanted, within) {
            return found(check, "body");
        }
    }
    None
}

fn inspect_json<'a>(
    value: &serde_json::Value,
    key: Option<&str>,
    checks: &dyn Fn(Option<&str>) -> Cow<'a, [Check]>,
) -> Option<Finding> {
    match value {
        serde_json::Value::String(s) => {
            let (wanted, within) = (&checks(key), &VALUE_CHECKS);
            inspect_within(s.as_bytes(), wanted, within)
                .and_then(|check| found(check, format!("body:{}", key.unwrap_or(""))))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| inspect_json(v, key, checks)),
        serde_json::Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| inspect_json(v, Some(k), checks)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    static ALL: [Check; 6] = Check::ALL;

    fn all(_: Option<&str>) -> Cow<'static, [Check]> {
        Cow::Borrowed(&ALL[..])
    }

    fn head(method: &str, uri: &str, headers: &[(&str, &str)]) -> Option<(Check, String)> {
        let mut with_host = vec![("host", "shop.example.com")];
        with_host.extend_from_slice(headers);
        let req = testing::request(method, uri, &with_host);
        inspect_head(&req, &all).map(|f| (f.check, f.target))
    }

    fn body(content_type: &str, body: &str) -> Option<(Check, String)> {
        let req = testing::request("POST", "/", &[("content-type", content_type)]);
        inspect_body(&req, body.as_bytes(), &all).map(|f| (f.check, f.target))
    }

    fn hit(check: Check, target: &str) -> Option<(Check, String)> {
        Some((check, target.to_string()))
    }

    #[test]
    fn query_parameters_are_decoded_and_named() {
        assert_eq!(
            head(
                "GET",
                "/s?page=1&id=1%27%20OR%20%271%27%3D%271%27%20--",
                &[]
            ),
            hit(Check::Sqli, "query:id")
        );
        // Double encoding is decoded too.
        assert_eq!(
            head(
                "GET",
                "/s?file=%252e%252e%252f%252e%252e%252fetc%252fpasswd",
                &[]
            ),
            hit(Check::Traversal, "query:file")
        );
        assert_eq!(head("GET", "/s?q=blue%20shoes&page=2", &[]), None);
    }

    #[test]
    fn the_path_is_checked_for_traversal_and_markup_only() {
        assert_eq!(
            head("GET", "/static/..%2f..%2fetc%2fpasswd", &[]),
            hit(Check::Traversal, "path")
        );
        assert_eq!(
            head("GET", "/p/%3Cscript%3Ealert(1)%3C%2Fscript%3E", &[]),
            hit(Check::Xss, "path")
        );
        // SQL-looking path segments are not SQL.
        assert_eq!(
            head("GET", "/products/1%27%20OR%20%271%27%3D%271", &[]),
            None
        );
    }

    #[test]
    fn cookies_are_checked_by_name() {
        let cookie = [("cookie", "session=abc123; theme=<script>alert(1)</script>")];
        assert_eq!(head("GET", "/", &cookie), hit(Check::Xss, "cookie:theme"));
        assert_eq!(
            head("GET", "/", &[("cookie", "session=abc123; theme=dark")]),
            None
        );
    }

    #[test]
    fn scanner_user_agents_and_header_payloads_are_caught() {
        assert_eq!(
            head(
                "GET",
                "/",
                &[("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")]
            ),
            hit(Check::Scanner, "header:user-agent")
        );
        assert_eq!(
            head("GET", "/", &[("referer", "<script>alert(1)</script>")]),
            hit(Check::Xss, "header:referer")
        );
        assert_eq!(
            head(
                "GET",
                "/",
                &[(
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
                )]
            ),
            None
        );
    }

    #[test]
    fn protocol_anomalies_are_caught() {
        let both = [("content-length", "5"), ("transfer-encoding", "chunked")];
        assert_eq!(
            head("POST", "/", &both),
            hit(Check::Protocol, "both content-length and transfer-encoding")
        );
        let two = [("content-length", "5"), ("content-length", "6")];
        assert_eq!(
            head("POST", "/", &two),
            hit(Check::Protocol, "conflicting content-length headers")
        );
        assert_eq!(
            head("POST", "/", &[("content-length", "five")]),
            hit(Check::Protocol, "content-length is not a number")
        );
        assert_eq!(
            head("TRACE", "/", &[]),
            hit(Check::Protocol, "method used for cross-site tracing")
        );
        assert_eq!(
            head("GET", "/a%0d%0aSet-Cookie:x", &[]),
            hit(Check::Protocol, "control character in the path")
        );
        let no_host = testing::request("GET", "/", &[]);
        assert_eq!(
            inspect_head(&no_host, &all).map(|f| f.target),
            Some("HTTP/1.1 request without host".to_string())
        );
    }

    #[test]
    fn the_checks_callback_decides_per_parameter() {
        let req = testing::request(
            "GET",
            "/notes?content=%3Cb%3Ehi%3C%2Fb%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &[("host", "shop.example.com")],
        );
        let none_for_content = |param: Option<&str>| -> Cow<'static, [Check]> {
            if param == Some("content") {
                Cow::Owned(Vec::new())
            } else {
                Cow::Borrowed(&ALL[..])
            }
        };
        assert!(inspect_head(&req, &none_for_content).is_none());
        assert!(inspect_head(&req, &all).is_some());
    }

    #[test]
    fn bodies_are_inspected_by_content_type() {
        assert_eq!(
            body(
                "application/x-www-form-urlencoded",
                "name=ann&comment=1%27%20OR%20%271%27%3D%271%27%20--"
            ),
            hit(Check::Sqli, "body:comment")
        );
        assert_eq!(
            body(
                "application/json; charset=utf-8",
                r#"{"user":{"name":"ann","bio":"<script>alert(1)</script>"}}"#
            ),
            hit(Check::Xss, "body:bio")
        );
        assert_eq!(
            body("text/plain", "hello <script>alert(1)</script>"),
            hit(Check::Xss, "body")
        );
        // Binary and multipart bodies are not inspected; benign ones pass.
        assert_eq!(
            body("application/octet-stream", "<script>alert(1)</script>"),
            None
        );
        assert_eq!(
            body(
                "multipart/form-data; boundary=x",
                "<script>alert(1)</script>"
            ),
            None
        );
        assert_eq!(
            body(
                "application/json",
                r#"{"user":{"name":"ann","tags":["a","b"]}}"#
            ),
            None
        );
        assert_eq!(body("application/json", ""), None);
    }
}
