//! The framing policy (RFC 9112 §2–3, §6–7; RFC 9110 §5.5), applied to a request head before
//! anything is routed or forwarded. A request has exactly one framing, and nothing another
//! parser along the way could read differently gets through: a front end and a back end that
//! disagree on where a request ends is how requests are smuggled.
//!
//! - `Transfer-Encoding` only as a single final `chunked` (other codings 501; `chunked`
//!   twice, or two TE lines, 400; TE on HTTP/1.0 400).
//! - `Content-Length` one decimal value; repeats only when identical, folded into one line.
//! - Both TE and CL: 400.
//! - Control bytes in the target or in header values, obsolete line folding, whitespace
//!   before a colon, a bad request line: 400 (the parser refuses them).
//! - HTTP/1.1 without exactly one `Host`: 400; a version other than 1.0/1.1: 505.
//! - A target that is not origin-form, absolute-form, `*` (OPTIONS) or authority-form
//!   (CONNECT), or that has a fragment: 400.
//!
//! Every refusal closes the connection: when the framing is in doubt, so is where the next
//! request would start.

/// How the body of an accepted request is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// An accepted head.
#[derive(Debug)]
pub struct Head {
    /// Bytes of the head (request line, fields, the empty line) at the front of the input.
    pub len: usize,
    pub body: Body,
    /// The head to hand on instead, when it had to be normalised (repeated Content-Length
    /// lines folded into one).
    pub rewritten: Option<Vec<u8>>,
    /// `Expect: 100-continue`: the body follows only after an interim answer.
    pub expects_continue: bool,
}

/// A refused head: the status to answer and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    /// A short, stable name (a metric label).
    pub reason: &'static str,
    pub message: String,
}

fn refuse(status: u16, reason: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        reason,
        message: message.into(),
    }
}

/// The most header fields a request may have.
pub const MAX_FIELDS: usize = 128;

/// Where the head ends in `buf` (the index after the empty line), if it is all there. A bare
/// LF also ends it here, so that such a head is refused (below) instead of waited on.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = memchr(b'\n', &buf[i..]) {
        let lf = i + p;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => {}
        }
        i = lf + 1;
    }
    None
}

/// Every line ends with CRLF: a bare LF is how some parsers end a line and others do not
/// (RFC 9112 §2.2 only lets a recipient accept it), so it is refused.
fn has_bare_lf(head: &[u8]) -> bool {
    head.iter()
        .enumerate()
        .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

/// Checks the head at the front of `buf` (which holds at least `len` = [`head_end`] bytes).
pub fn check(buf: &[u8], len: usize) -> Result<Head, Refusal> {
    let bytes = &buf[..len];
    if has_bare_lf(bytes) {
        return Err(refuse(400, "bare_lf", "a line ends with a bare LF"));
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) if n == len => {}
        Ok(_) => return Err(refuse(400, "bad_head", "the request head is malformed")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(refuse(
                431,
                "too_many_fields",
                format!("more than {MAX_FIELDS} header fields"),
            ))
        }
        Err(httparse::Error::Version) => {
            let line = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
            return Err(if looks_like_http_version(line) {
                refuse(
                    505,
                    "bad_version",
                    "only HTTP/1.0 and HTTP/1.1 are served here",
                )
            } else {
                refuse(400, "bad_request_line", "the request line is malformed")
            });
        }
        Err(e) => {
            return Err(refuse(
                400,
                "bad_syntax",
                match e {
                    httparse::Error::HeaderName => {
                        "a header name is malformed (or a line is folded)"
                    }
                    httparse::Error::HeaderValue => "a header value holds a control byte",
                    httparse::Error::Token => "the method is malformed",
                    httparse::Error::NewLine => "a line ending is malformed",
                    _ => "the request line or a header is malformed",
                },
            ))
        }
    }
    let version = req.version.unwrap_or(1);
    let method = req.method.unwrap_or("");
    check_target(method, req.path.unwrap_or(""))?;

    let mut hosts = 0;
    let mut te_lines = 0;
    let mut te: Option<&[u8]> = None;
    let mut cl_lines = 0;
    let mut length: Option<u64> = None;
    let mut expects_continue = false;
    for field in req.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            check_host(field.value)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_lines += 1;
            te = Some(field.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            cl_lines += 1;
            for value in field.value.split(|b| *b == b',') {
                let n = parse_length(value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(refuse(
                        400,
                        "conflicting_length",
                        "Content-Length values differ",
                    ));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expects_continue = trim(field.value).eq_ignore_ascii_case(b"100-continue");
        }
    }
    if version == 1 && hosts == 0 {
        return Err(refuse(
            400,
            "missing_host",
            "HTTP/1.1 requests need a Host header",
        ));
    }
    if hosts > 1 {
        return Err(refuse(400, "duplicate_host", "more than one Host header"));
    }
    let body = match (te, length) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                400,
                "te_and_cl",
                "both Transfer-Encoding and Content-Length",
            ))
        }
        (Some(_), None) if version == 0 => {
            return Err(refuse(
                400,
                "te_on_http10",
                "Transfer-Encoding is not allowed on HTTP/1.0",
            ))
        }
        (Some(_), None) if te_lines > 1 => {
            return Err(refuse(
                400,
                "repeated_te",
                "more than one Transfer-Encoding header",
            ))
        }
        (Some(value), None) => transfer_coding(value)?,
        (None, Some(0)) => Body::None,
        (None, Some(n)) => Body::Length(n),
        (None, None) => Body::None,
    };
    let folded = cl_lines > 1
        || req
            .headers
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case("content-length") && f.value.contains(&b','));
    let absolute = absolute_form(req.path.unwrap_or(""));
    let rewritten = (folded || absolute.is_some()).then(|| {
        let request_line = absolute.as_ref().map(|(authority, path)| {
            format!("{method} {path} HTTP/1.{version}\r\nHost: {authority}\r\n")
        });
        rewrite(
            bytes,
            request_line.as_deref(),
            folded.then_some(length.unwrap_or(0)),
        )
    });
    Ok(Head {
        len,
        body,
        rewritten,
        expects_continue,
    })
}

fn looks_like_http_version(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let [_, _, version] = parts.as_slice() else {
        return false;
    };
    matches!(version, [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// RFC 9112 §3.2: origin-form (`/path?query`), absolute-form (`http://host/path`), `*` for
/// OPTIONS, authority-form for CONNECT. No fragment anywhere.
fn check_target(method: &str, target: &str) -> Result<(), Refusal> {
    if method == "CONNECT" {
        return Err(refuse(501, "connect", "CONNECT is not served here"));
    }
    if target.contains('#') {
        return Err(refuse(
            400,
            "bad_target",
            "the request target has a fragment",
        ));
    }
    if !target.starts_with('/') {
        // Absolute form: no userinfo in the authority (RFC 9110 §4.2.4).
        let authority = target
            .split_once("://")
            .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
        if authority.contains('@') {
            return Err(refuse(400, "bad_target", "userinfo in the request target"));
        }
    }
    let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
    let ok = target.starts_with('/')
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || (target == "*" && method == "OPTIONS");
    if ok {
        Ok(())
    } else {
        Err(refuse(
            400,
            "bad_target",
            "the request target is not a path or an absolute URL",
        ))
    }
}

fn check_host(value: &[u8]) -> Result<(), Refusal> {
    let v = trim(value);
    let bad = v.is_empty()
        || v.iter()
            .any(|b| matches!(b, b' ' | b'\t' | b'@' | b'/' | b'\\' | b'?' | b'#' | b','));
    if bad {
        Err(refuse(400, "bad_host", "the Host header is malformed"))
    } else {
        Ok(())
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// `Content-Length = 1*DIGIT` (RFC 9110 §8.6), optional whitespace around it.
fn parse_length(value: &[u8]) -> Result<u64, Refusal> {
    let v = trim(value);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(refuse(
            400,
            "bad_length",
            "Content-Length is not a decimal number",
        ));
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| refuse(400, "bad_length", "Content-Length is too large"))
}

/// The only transfer coding served is a single `chunked`.
fn transfer_coding(value: &[u8]) -> Result<Body, Refusal> {
    let codings: Vec<&[u8]> = value.split(|b| *b == b',').map(trim).collect();
    let is_chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
    if codings.iter().any(|c| c.is_empty()) {
        return Err(refuse(400, "bad_te", "an empty transfer coding"));
    }
    if codings.iter().filter(|c| is_chunked(c)).count() > 1 {
        return Err(refuse(
            400,
            "chunked_twice",
            "chunked is applied more than once",
        ));
    }
    if !codings
        .iter()
        .all(|c| c.iter().all(|b| super::is_tchar(*b)))
    {
        return Err(refuse(400, "bad_te", "Transfer-Encoding is malformed"));
    }
    match codings.as_slice() {
        [only] if is_chunked(only) => Ok(Body::Chunked),
        // Without a final chunked the length cannot be known: 400 and close (RFC 9112 §6.3
        // rule 3, a MUST); a final chunked after codings not served here: 501 (§6.1).
        [.., last] if !is_chunked(last) => Err(refuse(
            400,
            "chunked_not_final",
            "chunked must be the final transfer coding",
        )),
        _ => Err(refuse(
            501,
            "unsupported_te",
            "only the chunked transfer coding is supported",
        )),
    }
}

/// An absolute-form target's authority and its origin-form rest (`/` when empty).
fn absolute_form(target: &str) -> Option<(&str, String)> {
    if target.starts_with('/') || target == "*" {
        return None;
    }
    let (_, rest) = target.split_once("://")?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let path = match tail {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    Some((authority, path))
}

/// The head as it is handed on: with an absolute-form target, the request line in origin
/// form and the target's authority as the only Host (RFC 9112 §3.2.2: the authority wins
/// over a Host sent alongside); with repeated Content-Length lines, one `Content-Length: n`
/// in place of the first.
fn rewrite(head: &[u8], request_line: Option<&str>, length: Option<u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + 32);
    let mut written = false;
    for (i, line) in head.split_inclusive(|b| *b == b'\n').enumerate() {
        if i == 0 {
            match request_line {
                Some(new) => out.extend_from_slice(new.as_bytes()),
                None => out.extend_from_slice(line),
            }
            continue;
        }
        let name = line
            .iter()
            .position(|b| *b == b':')
            .map_or(&[][..], |colon| &line[..colon]);
        if request_line.is_some() && name.eq_ignore_ascii_case(b"host") {
            continue;
        }
        match length {
            Some(n) if name.eq_ignore_ascii_case(b"content-length") => {
                if !written {
                    out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
                    written = true;
                }
            }
            _ => out.extend_from_slice(line),
        }
    }
    out
}

/// An upstream's response gets the same scrutiny (RFC 9112 §6): one `Transfer-Encoding`
/// line whose only coding is `chunked`, and `Content-Length` only as one decimal value
/// (repeats identical). Anything else is a 502 for the client, never relayed. (Pingora itself
/// refuses differing lengths, and lets `Transfer-Encoding` override a length, as §6.3 says.)
pub fn check_response(headers: &http::HeaderMap) -> Result<(), &'static str> {
    let mut te = headers.get_all(http::header::TRANSFER_ENCODING).iter();
    if let Some(value) = te.next() {
        if te.next().is_some() {
            return Err("the upstream sent more than one Transfer-Encoding header");
        }
        if !trim(value.as_bytes()).eq_ignore_ascii_case(b"chunked") {
            return Err("the upstream's Transfer-Encoding is not just chunked");
        }
    }
    let mut length: Option<u64> = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = parse_length(part).map_err(|_| "the upstream's Content-Length is malformed")?;
            if length.is_some_and(|l| l != n) {
                return Err("the upstream sent differing Content-Length values");
            }
            length = Some(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(head: &str) -> Result<Head, Refusal> {
        let bytes = head.as_bytes();
        let len = head_end(bytes).expect("complete head");
        check(bytes, len)
    }

    fn status(head: &str) -> u16 {
        verdict(head).map_or_else(|r| r.status, |_| 200)
    }

    #[test]
    fn accepts_plain_requests() {
        let h = verdict("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(h.body, Body::None);
        let h = verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(h.body, Body::Length(5));
        let h =
            verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(h.body, Body::Chunked);
        assert_eq!(status("GET / HTTP/1.0\r\n\r\n"), 200);
        assert_eq!(status("GET http://x/y HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
        assert_eq!(status("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
    }

    #[test]
    fn folds_identical_lengths() {
        let h =
            verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")
                .unwrap();
        assert_eq!(h.body, Body::Length(5));
        let text = String::from_utf8(h.rewritten.unwrap()).unwrap();
        assert_eq!(text.matches("Content-Length").count(), 1, "{text}");
        assert!(
            verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n")
                .unwrap()
                .rewritten
                .is_some()
        );
    }

    #[test]
    fn absolute_form_becomes_origin_form_with_its_authority_as_host() {
        let h = verdict("GET http://a.example/p?q=1 HTTP/1.1\r\nHost: b.example\r\n\r\n").unwrap();
        assert_eq!(
            String::from_utf8(h.rewritten.unwrap()).unwrap(),
            "GET /p?q=1 HTTP/1.1\r\nHost: a.example\r\n\r\n"
        );
        let h = verdict("GET HTTP://a.example HTTP/1.1\r\nHost: a.example\r\n\r\n").unwrap();
        assert!(String::from_utf8(h.rewritten.unwrap())
            .unwrap()
            .starts_with("GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn refuses_ambiguous_framing() {
        let cases = [
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000,1000\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 400),
            ("CONNECT x:443 HTTP/1.1\r\nHost: x\r\n\r\n", 501),
            ("GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET / HTTP/1.1\nHost: x\n\n", 400),
            ("GET / HTTP/1\r\nHost: x\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400),
            ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400),
            ("GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET /a\x7fb HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: u@x\r\n\r\n", 400),
            ("GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505),
            ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            ("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            ("GET x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ];
        for (head, want) in cases {
            assert_eq!(status(head), want, "{head:?}");
        }
    }

    #[test]
    fn checks_upstream_responses_too() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.append(*k, http::HeaderValue::from_static(v));
            }
            h
        };
        assert!(check_response(&headers(&[("transfer-encoding", "chunked")])).is_ok());
        assert!(check_response(&headers(&[
            ("content-length", "5"),
            ("content-length", "5")
        ]))
        .is_ok());
        for bad in [
            headers(&[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ]),
            headers(&[("transfer-encoding", "gzip")]),
            headers(&[("transfer-encoding", "gzip, chunked")]),
            headers(&[("content-length", "5"), ("content-length", "6")]),
            headers(&[("content-length", "abc")]),
        ] {
            assert!(check_response(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_end_of_a_head() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest"), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\nHost: x\n\nrest"), Some(24));
        assert!(has_bare_lf(b"GET / HTTP/1.1\nHost: x\r\n\r\n"));
        assert!(!has_bare_lf(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
