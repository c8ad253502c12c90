//! Malformed and borderline HTTP/1.1 requests for the edge policy: request framing
//! (RFC 9112 §6.1–6.3, §7.1, §11.2; RFC 9110 §5.5, §8.6) and request-target / path
//! normalisation (RFC 9112 §3.2, RFC 3986 §5.2.4, §6.2.2). Every case was written for this
//! corpus from the RFC sections and public write-ups named in `SOURCES.md`.
//!
//! How a test uses it: `#[path = "edge/corpus.rs"] mod corpus;`, then for each case in
//! [`CASES`] open a new connection, send [`request_for`]`(case, host)` followed at once
//! (same write or back to back) by a pipelined probe such as
//! `GET /probe HTTP/1.1\r\nHost: HOST\r\n\r\n`, and check:
//!
//! * [`Expect::Refused`]: the response is that status and nothing of the refused request
//!   reached the upstream (in particular never [`SMUGGLED_PATH`]). When `closes`, the
//!   connection is closed after the response, the probe is never answered and the upstream
//!   saw nothing at all from the connection. When not `closes`, the probe is answered (and
//!   forwarded) as a normal request.
//! * [`Expect::Forwarded`]: the upstream saw exactly one request with that method and
//!   request-target (`path` is the origin-form target the upstream receives: the normalised
//!   path plus `?query` when there is one), with exactly that body when given, and then the
//!   probe.
//!
//! Conventions of the bytes:
//!
//! * `HOST` (upper case) is a placeholder for a bare host name **without a port** (e.g.
//!   `edge.test`): [`request_for`] replaces every occurrence. It appears only in the request
//!   line and header section, never in a body, so replacing it changes no length.
//! * No request carries `Connection: close`, and every HTTP/1.0 request that expects to be
//!   forwarded asks for `Connection: keep-alive`, so the probe can be answered.
//! * `last_chunk_without_final_crlf` relies on the probe starting with a request line (its
//!   first line is then read as a trailer line without a colon).
//! * Embedded ("smuggled") requests use [`SMUGGLED_PATH`] and `Host: smuggled.invalid`.
//!   Whatever the gateway does, the upstream must never see that path as a request.
//! * `closes`: a refusal of the request line, a field line, the framing headers or the
//!   body framing must close (where the next request starts is in doubt: RFC 9112 §6.3
//!   rules 3–4, §9.6, §11.2). Refusals of a well-formed head for a Host or target-form rule
//!   close too: the edge's head check closes on every refusal, which nothing forbids and is
//!   never unsafe. Only the path policy, which refuses a complete bodiless request after it
//!   has been framed, keeps the connection (`closes: false`).
//!
//! Source labels: "RFC 9112 §6.3 rule 4" means the fourth numbered rule of §6.3.
#![allow(dead_code)]

#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Unique, snake_case.
    pub name: &'static str,
    /// Where the case comes from: RFC section(s) and/or public write-up (see SOURCES.md).
    pub source: &'static str,
    /// Exact bytes; `HOST` is the Host placeholder; no trailing probe.
    pub request: &'static [u8],
    pub expect: Expect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refused with this status; the connection is closed afterwards (framing in doubt) when `closes`.
    Refused { status: u16, closes: bool },
    /// Forwarded exactly once; the upstream sees this method and path (after normalisation) and,
    /// if given, this body.
    Forwarded {
        method: &'static str,
        path: &'static str,
        body: Option<&'static [u8]>,
    },
}

/// The placeholder for the Host value (a bare name, no port) in [`Case::request`].
pub const HOST: &str = "HOST";

/// The path of every embedded (smuggled) request: the upstream must never receive it.
pub const SMUGGLED_PATH: &str = "/admin/smuggled";

/// The case's bytes with every `HOST` replaced by `host`.
pub fn request_for(case: &Case, host: &str) -> Vec<u8> {
    let needle = HOST.as_bytes();
    let src = case.request;
    let mut out = Vec::with_capacity(src.len() + host.len() * 2);
    let mut i = 0;
    while i < src.len() {
        if src[i..].starts_with(needle) {
            out.extend_from_slice(host.as_bytes());
            i += needle.len();
        } else {
            out.push(src[i]);
            i += 1;
        }
    }
    out
}

/// Looks a case up by name (for focused tests and failure messages).
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// Concatenates string literals (and `smuggled!()`) into one `&'static [u8]`.
macro_rules! req {
    ($($t:tt)*) => {
        concat!($($t)*).as_bytes()
    };
}

/// A complete request for [`SMUGGLED_PATH`], 56 (0x38) bytes. Never contains `HOST`.
macro_rules! smuggled {
    () => {
        "GET /admin/smuggled HTTP/1.1\r\nHost: smuggled.invalid\r\n\r\n"
    };
}

const fn refused(status: u16, closes: bool) -> Expect {
    Expect::Refused { status, closes }
}

const fn fwd(method: &'static str, path: &'static str) -> Expect {
    Expect::Forwarded {
        method,
        path,
        body: None,
    }
}

const fn fwd_body(method: &'static str, path: &'static str, body: &'static [u8]) -> Expect {
    Expect::Forwarded {
        method,
        path,
        body: Some(body),
    }
}

/// 400 and close: malformed framing, request line or field line.
const BAD_CLOSE: Expect = refused(400, true);
/// 400 and keep the connection: the path policy refused a complete, well-framed request
/// that has no body, so where the next request starts is known.
const PATH_BAD: Expect = refused(400, false);

pub const CASES: &[Case] = &[
    // ───────────────────────────── Valid baselines ─────────────────────────────
    Case {
        name: "get_origin_form",
        source: "RFC 9112 §3, §3.2.1 (baseline)",
        request: req!("GET / HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/"),
    },
    Case {
        name: "post_content_length_body",
        source: "RFC 9112 §6.2, §6.3 rule 6 (baseline)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "post_chunked_two_chunks_with_extensions",
        source: "RFC 9112 §7.1, §7.1.1 (unrecognised chunk extensions are ignored)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5;sig=abc\r\n",
            "hello\r\n",
            "6;note=\"x y\"\r\n",
            " world\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello world"),
    },
    Case {
        name: "post_chunked_with_trailer_field",
        source: "RFC 9112 §7.1.2 (trailer section)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "X-Checksum: 1234\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "post_chunked_empty_body",
        source: "RFC 9112 §7.1 (last-chunk only)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b""),
    },
    Case {
        name: "post_chunked_uppercase_hex_size",
        source: "RFC 9112 §7.1 (chunk-size = 1*HEXDIG, HEXDIG case-insensitive)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "A\r\n",
            "0123456789\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"0123456789"),
    },
    Case {
        name: "head_request",
        source: "RFC 9110 §9.3.2 (baseline; the response has no body)",
        request: req!("HEAD /public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("HEAD", "/public/x"),
    },
    // Decision: asterisk-form is forwarded as `OPTIONS *`, routed as if its path were "/"
    // (host-only routing), not answered by the gateway and not refused.
    Case {
        name: "options_asterisk_form",
        source: "RFC 9112 §3.2.4; RFC 9110 §9.3.7",
        request: req!("OPTIONS * HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("OPTIONS", "*"),
    },
    Case {
        name: "host_with_port",
        source: "RFC 9110 §7.2 (Host = uri-host [ \":\" port ])",
        request: req!("GET /public/x HTTP/1.1\r\n", "Host: HOST:8080\r\n", "\r\n"),
        expect: fwd("GET", "/public/x"),
    },
    Case {
        name: "absolute_form_same_authority_as_host",
        source: "RFC 9112 §3.2.2 (a server MUST accept absolute-form)",
        request: req!("GET http://HOST/public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/public/x"),
    },
    Case {
        name: "http10_without_host_keep_alive",
        source: "RFC 9112 §3.2 (Host is required only for HTTP/1.1), §9.3",
        request: req!("GET /public/x HTTP/1.0\r\n", "Connection: keep-alive\r\n", "\r\n"),
        expect: fwd("GET", "/public/x"),
    },
    Case {
        name: "http10_post_content_length_keep_alive",
        source: "RFC 9112 §6.2, §9.3 (HTTP/1.0 persistence by keep-alive)",
        request: req!(
            "POST /public/x HTTP/1.0\r\n",
            "Host: HOST\r\n",
            "Connection: keep-alive\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "keep_alive_explicit",
        source: "RFC 9112 §9.3 (persistent connections)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Connection: keep-alive\r\n",
            "\r\n",
        ),
        expect: fwd("GET", "/public/x"),
    },
    Case {
        name: "empty_line_before_request_line",
        source: "RFC 9112 §2.2 (SHOULD ignore at least one empty line before the request-line)",
        request: req!("\r\n", "GET /public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/public/x"),
    },
    // A body on GET has no defined semantics but valid framing: forwarded with its
    // Content-Length (a back end that ignored it would be open to CL.0).
    Case {
        name: "get_with_content_length_body",
        source: "RFC 9110 §9.3.1; PortSwigger browser-powered desync (CL.0)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("GET", "/public/x", b"hello"),
    },
    // ───────────────────────────── Content-Length ─────────────────────────────
    // Forwarded with a single `Content-Length: 5` (the duplicate folded into one).
    Case {
        name: "cl_duplicate_identical_lines",
        source: "RFC 9112 §6.3 rule 4; RFC 9110 §8.6",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "cl_list_identical_values",
        source: "RFC 9110 §8.6 (\"42, 42\" MAY be replaced by one value); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5, 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "cl_list_identical_values_no_space",
        source: "RFC 9110 §5.6.1, §8.6; RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5,5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "cl_leading_ows",
        source: "RFC 9112 §5.1 (field-line = field-name \":\" OWS field-value OWS)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: \t 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    // Decision: trailing whitespace is OWS, not part of the value, so `5 ` is valid.
    Case {
        name: "cl_trailing_ows",
        source: "RFC 9112 §5.1 (trailing OWS excluded from the field value)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5 \t\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    // Decision: 1*DIGIT allows leading zeros; the value is 5.
    Case {
        name: "cl_leading_zeros",
        source: "RFC 9110 §8.6 (Content-Length = 1*DIGIT)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 005\r\n",
            "\r\n",
            "hello",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    // CL.CL: a parser taking the first value forwards an empty POST and then the
    // smuggled request; one taking the last forwards it as body.
    Case {
        name: "cl_duplicate_different_lines_smuggle",
        source: "RFC 9112 §6.3 rule 4; RFC 9110 §8.6; Watchfire 2005 (double Content-Length)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 0\r\n",
            "Content-Length: 56\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_list_different_values",
        source: "RFC 9112 §6.3 rule 4 (differing list values: unrecoverable, 400 and close)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5, 6\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_plus_sign",
        source: "RFC 9110 §8.6 (1*DIGIT: no sign); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: +5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_negative",
        source: "RFC 9110 §8.6 (1*DIGIT: no sign); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: -1\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_hex_value",
        source: "RFC 9110 §8.6 (decimal only); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 0x5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_internal_space",
        source: "RFC 9110 §8.6 (1*DIGIT); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_decimal_point",
        source: "RFC 9110 §8.6 (1*DIGIT); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5.0\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_empty_value",
        source: "RFC 9110 §8.6 (1*DIGIT: at least one digit); RFC 9112 §6.3 rule 4",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: \r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    // 2^64 + 5: a parser that wraps in 64 bits reads 5 and forwards "hello".
    Case {
        name: "cl_u64_overflow_wraps_to_5",
        source: "RFC 9110 §8.6 (anticipate large numerals, prevent overflow); HAProxy integer-overflow smuggling",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 18446744073709551621\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_far_too_many_digits",
        source: "RFC 9110 §8.6 (prevent integer conversion overflow)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 99999999999999999999999999\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    // ───────────────────────────── Transfer-Encoding ─────────────────────────────
    Case {
        name: "te_chunked_case_insensitive",
        source: "RFC 9112 §7 (transfer-coding names are case-insensitive); RFC 9110 §5.1",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "transfer-encoding: Chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    // HTAB before the value is OWS; the gateway must forward a clean TE (or re-frame).
    Case {
        name: "te_chunked_leading_htab",
        source: "RFC 9112 §5.1 (OWS); PortSwigger TE.TE obfuscation (tab before value)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding:\tchunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "te_chunked_trailing_ows",
        source: "RFC 9112 §5.1 (trailing OWS)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked \t\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "te_chunked_listed_twice",
        source: "RFC 9112 §6.1 (MUST NOT apply chunked more than once), §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked, chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_two_lines_chunked",
        source: "RFC 9112 §6.1 (lines combine to \"chunked, chunked\"); RFC 9110 §5.3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Chunked is final, so the length is known, but gzip is not implemented: 501.
    // Decision: close anyway rather than decode and discard the body.
    Case {
        name: "te_gzip_then_chunked",
        source: "RFC 9112 §6.1 (unknown coding SHOULD be 501); RFC 9110 §15.6.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: gzip, chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: refused(501, true),
    },
    Case {
        name: "te_chunked_not_final",
        source: "RFC 9112 §6.3 rule 3 (chunked not final in a request: MUST 400 and close)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Decision: 400 (not 501): without a final chunked the length cannot be determined,
    // and RFC 9112 §6.3 rule 3 (MUST 400 and close) outranks §6.1's SHOULD 501.
    Case {
        name: "te_identity",
        source: "RFC 9112 §6.3 rule 3; RFC 7230 Appendix A.2 (identity removed)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: identity\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_chunked_empty_parameter",
        source: "RFC 9112 §7 (transfer-parameter grammar), §7.1",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked;\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_chunked_with_parameter",
        source: "RFC 9112 §7.1 (chunked defines no parameters; SHOULD be an error)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked;foo=bar\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_quoted_chunked",
        source: "RFC 9112 §7 (transfer-coding is a token); PortSwigger TE.TE obfuscation",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: \"chunked\"\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_vertical_tab_before_value",
        source: "RFC 9110 §5.5 (CTL in a field value), §5.6.3 (VT is not OWS); PortSwigger TE.TE obfuscation",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: \x0bchunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_form_feed_after_value",
        source: "RFC 9110 §5.5, §5.6.3 (FF is not OWS)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\x0c\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_empty_value_with_cl",
        source: "RFC 9112 §6.1 (Transfer-Encoding = #transfer-coding), §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: \r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_on_http10",
        source: "RFC 9112 §6.1 (HTTP/1.0 with Transfer-Encoding: framing faulty, close)",
        request: req!(
            "POST /public/x HTTP/1.0\r\n",
            "Host: HOST\r\n",
            "Connection: keep-alive\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // ─────────────── TE and CL together: CL.TE / TE.CL classics ───────────────
    // Content-Length covers the whole body; chunked ends after "0\r\n\r\n", leaving
    // the smuggled request for a TE-honouring back end.
    Case {
        name: "cl_te_smuggle",
        source: "PortSwigger CL.TE; Kettle 2019 HTTP Desync Attacks; RFC 9112 §6.3 rule 3, §11.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    // Chunked covers the whole body; Content-Length covers only "38\r\n", leaving the
    // smuggled request for a CL-honouring back end.
    Case {
        name: "te_cl_smuggle",
        source: "PortSwigger TE.CL; Kettle 2019 HTTP Desync Attacks; RFC 9112 §6.3 rule 3, §11.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 4\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "38\r\n",
            smuggled!(),
            "\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_before_cl_smuggle",
        source: "PortSwigger CL.TE (header order reversed); RFC 9112 §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Content-Length: 61\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "te_chunked_with_cl_zero",
        source: "RFC 9112 §6.3 rule 3 (both present: ought to be handled as an error)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 0\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Both framings agree on the length: still refused (the policy is one framing).
    Case {
        name: "te_and_cl_consistent_lengths",
        source: "RFC 9112 §6.3 rule 3, §11.2; issue policy (exactly one framing)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 15\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // ───────────── TE.TE obfuscations (each with CL.TE-shaped body) ─────────────
    // A parser that does not recognise the obfuscated TE falls back to Content-Length
    // (61) while another honours chunked and finds the smuggled request after "0".
    Case {
        name: "tete_xchunked",
        source: "PortSwigger TE.TE obfuscation (xchunked); RFC 9112 §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding: xchunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_chunked_then_bogus_line",
        source: "PortSwigger TE.TE obfuscation (second TE line); RFC 9112 §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding: chunked\r\n",
            "Transfer-Encoding: x\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_bogus_then_chunked_line",
        source: "PortSwigger TE.TE obfuscation (first-vs-last TE line); RFC 9112 §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding: x\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_space_before_colon",
        source: "PortSwigger TE.TE obfuscation; RFC 9112 §5.1 (whitespace before colon: MUST 400)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding : chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_htab_value_with_cl",
        source: "PortSwigger TE.TE obfuscation (tab before value); RFC 9112 §6.3 rule 3",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding:\tchunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    // A leading-space line is obs-fold: it continues the Content-Length value.
    Case {
        name: "tete_leading_space_line",
        source: "PortSwigger TE.TE obfuscation (space before name); RFC 9112 §5.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "\x20Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_obs_fold_value",
        source: "RFC 9112 §5.2 (obs-fold in a request: 400 or unfold; decision 400)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding:\r\n",
            "\x20chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    // Bare LF inside a field value: a lenient parser sees a Transfer-Encoding line.
    Case {
        name: "tete_bare_lf_injects_te",
        source: "PortSwigger TE.TE obfuscation (X: X[\\n]Transfer-Encoding); RFC 9112 §2.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "X-Note: x\nTransfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_bare_lf_in_name",
        source: "PortSwigger TE.TE obfuscation (Transfer-Encoding[\\n]: chunked); RFC 9112 §2.2, §5.1",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding\n: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    // Bare CR inside a field value: some parsers end the line at CR.
    Case {
        name: "tete_bare_cr_injects_te",
        source: "RFC 9112 §2.2 (bare CR: invalid or replace by SP); RFC 9110 §5.5",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "X-Note: x\rTransfer-Encoding: chunked\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "tete_nul_after_value",
        source: "RFC 9110 §5.5 (NUL in a field value: reject or replace by SP; decision reject)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length: 61\r\n",
            "Transfer-Encoding: chunked\x00\r\n",
            "\r\n",
            "0\r\n",
            "\r\n",
            smuggled!(),
        ),
        expect: BAD_CLOSE,
    },
    // ───────────────────────────── Chunk-size lines ─────────────────────────────
    // Note: for errors after the header section, "nothing reaches the upstream" holds only
    // if the gateway validates the chunked body before it sends the request head upstream
    // (or the upstream discards a request whose body is cut off).
    Case {
        name: "chunk_size_not_hex",
        source: "RFC 9112 §7.1 (chunk-size = 1*HEXDIG)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "zz\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_size_0x_prefix",
        source: "RFC 9112 §7.1 (1*HEXDIG, no prefix); Http11Probe chunk tests",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0x5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_size_negative",
        source: "RFC 9112 §7.1 (1*HEXDIG, no sign)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "-5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_size_17_hex_digits_overflow",
        source: "RFC 9112 §7.1 (anticipate large hex numerals, prevent overflow)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "fffffffffffffffff\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // 0x1_0000_0000_0000_0005 = 2^64 + 5: wraps to 5 in a u64 and then "hello" fits.
    Case {
        name: "chunk_size_overflow_wraps_to_5",
        source: "RFC 9112 §7.1 (prevent integer overflow); HAProxy/ATS chunk-size overflow reports",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "10000000000000005\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Decision: leading zeros are valid HEXDIGs; the value (5) is what counts.
    Case {
        name: "chunk_size_leading_zeros",
        source: "RFC 9112 §7.1 (chunk-size = 1*HEXDIG)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "0005\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: fwd_body("POST", "/public/x", b"hello"),
    },
    Case {
        name: "chunk_size_leading_space",
        source: "RFC 9112 §7.1 (no whitespace before chunk-size); Http11Probe SMUG-CHUNK-LEADING-SP",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            " 5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Decision: BWS is allowed only before ";" of an extension; "5 " alone is invalid.
    Case {
        name: "chunk_size_trailing_space",
        source: "RFC 9112 §7.1, §7.1.1 (BWS only inside chunk-ext)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5 \r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_size_empty_line",
        source: "RFC 9112 §7.1 (chunk-size needs at least one HEXDIG)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_data_missing_crlf",
        source: "RFC 9112 §7.1 (chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_data_bare_lf_terminator",
        source: "RFC 9112 §7.1; funky chunks research (LF as chunk-data terminator)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_size_line_bare_lf",
        source: "RFC 9112 §7.1, §2.2 (decision: bare LF rejected everywhere)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // TERM.EXT: a parser that ends the extension at a bare LF reads "xx" as data, one that
    // skips to CRLF swallows "xx" into the extension.
    Case {
        name: "chunk_ext_bare_lf",
        source: "funky chunks research (TERM.EXT); RFC 9112 §7.1.1; Http11Probe SMUG-CHUNK-EXT-LF",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "2;a\nxx\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_ext_bare_semicolon",
        source: "RFC 9112 §7.1.1 (chunk-ext-name is a token, required after \";\")",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5;\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "chunk_ext_nul",
        source: "RFC 9112 §7.1.1 (token chars only); RFC 9110 §5.6.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5;\x00a\r\n",
            "hello\r\n",
            "0\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // The body stops after "0\r\n": the pipelined probe's request line is then read as a
    // trailer field line, which has no colon. Depends on the probe starting with a
    // request line, as every probe does.
    Case {
        name: "last_chunk_without_final_crlf",
        source: "RFC 9112 §7.1 (chunked-body ends with trailer-section CRLF), §7.1.2",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "5\r\n",
            "hello\r\n",
            "0\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // ─────────────── Control bytes in the request target and field values ───────────────
    Case {
        name: "target_nul",
        source: "RFC 9112 §3.2 (request-target grammar); RFC 3986 §3.3",
        request: req!("GET /public/a\x00b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "target_bare_cr",
        source: "RFC 9112 §2.2 (bare CR), §3 (lenient whitespace parsing is a smuggling risk)",
        request: req!("GET /public/a\rb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "target_bare_lf",
        source: "RFC 9112 §2.2, §3.2 (no whitespace in request-target)",
        request: req!("GET /public/a\nb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "target_del",
        source: "RFC 9112 §3.2; RFC 3986 §2 (DEL is not a URI character)",
        request: req!("GET /public/a\x7fb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "target_htab",
        source: "RFC 9112 §3 (whitespace-delimited leniency is a MAY; decision strict), §3.2",
        request: req!("GET /public/a\tb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "target_inner_space",
        source: "RFC 9112 §3.2 (no whitespace allowed in the request-target)",
        request: req!("GET /public/a b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_value_nul",
        source: "RFC 9110 §5.5 (NUL: MUST reject or replace by SP; decision reject)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Note: a\x00b\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_value_bare_cr",
        source: "RFC 9112 §2.2; RFC 9110 §5.5 (CR: MUST reject or replace by SP; decision reject)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Note: a\rb\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // CR LF injection that survives as bytes: a lenient parser ends the line at CR and
    // reads a second Host.
    Case {
        name: "header_value_bare_cr_injects_host",
        source: "RFC 9112 §2.2; RFC 9110 §5.5; PortSwigger request smuggling (header injection)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Note: a\rHost: smuggled.invalid\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_value_del",
        source: "RFC 9110 §5.5 (other CTLs invalid; MAY be kept only in a safe context; decision reject)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Note: a\x7fb\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_value_vertical_tab",
        source: "RFC 9110 §5.5 (CTL in a field value; decision reject)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Note: a\x0bb\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_value_nul",
        source: "RFC 9110 §5.5, §7.2 (NUL in Host could truncate it downstream)",
        request: req!("GET /public/x HTTP/1.1\r\n", "Host: HOST\x00.evil\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // Decision: bare LF is not accepted as a line terminator anywhere (RFC: MAY accept).
    Case {
        name: "head_bare_lf_line_endings",
        source: "RFC 9112 §2.2 (MAY recognise a single LF; decision reject), §11.2",
        request: req!("GET /public/x HTTP/1.1\n", "Host: HOST\n", "\n"),
        expect: BAD_CLOSE,
    },
    // ─────────────── Field-line syntax: whitespace, obs-fold, names ───────────────
    Case {
        name: "cl_space_before_colon",
        source: "RFC 9112 §5.1 (whitespace between name and colon: MUST 400)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length : 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "cl_htab_before_colon",
        source: "RFC 9112 §5.1 (whitespace between name and colon: MUST 400)",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Content-Length\t: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_space_before_colon",
        source: "RFC 9112 §5.1; Kettle 2025 HTTP/1.1 must die (visible/hidden header discrepancies)",
        request: req!("GET /public/x HTTP/1.1\r\n", "Host : HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // RFC allows "reject" or "ignore the whitespace-preceded lines"; decision: reject.
    Case {
        name: "whitespace_before_first_header",
        source: "RFC 9112 §2.2 (whitespace between start-line and first field); Kettle 2025",
        request: req!(
            "POST /public/x HTTP/1.1\r\n",
            "\x20Transfer-Encoding: chunked\r\n",
            "Host: HOST\r\n",
            "Content-Length: 5\r\n",
            "\r\n",
            "hello",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "obs_fold_space",
        source: "RFC 9112 §5.2 (obs-fold: 400 or unfold; decision 400)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Folded: a\r\n",
            "\x20b\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "obs_fold_htab",
        source: "RFC 9112 §5.2 (obs-fold = OWS CRLF RWS; decision 400)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-Folded: a\r\n",
            "\tb\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_without_colon",
        source: "RFC 9112 §5 (field-line = field-name \":\" OWS field-value OWS)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X-No-Colon\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "empty_header_name",
        source: "RFC 9110 §5.1 (field-name = token, at least one tchar)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            ": value\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_name_inner_space",
        source: "RFC 9110 §5.1, §5.6.2 (SP is not a tchar)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X Note: a\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "header_name_delimiter_chars",
        source: "RFC 9110 §5.6.2 (\"(\" and \")\" are delimiters, not tchar)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "X(Note): a\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // ─────────────── Request line: method, separators, version ───────────────
    Case {
        name: "method_not_a_token",
        source: "RFC 9110 §9.1 (method = token), §5.6.2",
        request: req!("G(E)T /public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "request_line_leading_space",
        source: "RFC 9112 §3 (request-line = method SP request-target SP HTTP-version)",
        request: req!(" GET /public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "request_line_double_spaces",
        source: "RFC 9112 §3 (single SP; whitespace leniency is a MAY, decision strict), §11.2",
        request: req!("GET  /public/x  HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "request_line_htab_separators",
        source: "RFC 9112 §3 (HTAB as separator is a MAY; decision strict)",
        request: req!("GET\t/public/x\tHTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "request_line_trailing_space",
        source: "RFC 9112 §3 (nothing between HTTP-version and CRLF)",
        request: req!("GET /public/x HTTP/1.1 \r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // An HTTP/0.9-style simple request.
    Case {
        name: "version_missing",
        source: "RFC 9112 §3 (HTTP-version required), Appendix C.1 (HTTP/0.9 not supported)",
        request: req!("GET /public/x\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "version_lowercase_name",
        source: "RFC 9112 §2.3 (HTTP-name = %s\"HTTP\", case-sensitive)",
        request: req!("GET /public/x http/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "version_two_digit_minor",
        source: "RFC 9112 §2.3 (HTTP-version = HTTP-name \"/\" DIGIT \".\" DIGIT)",
        request: req!("GET /public/x HTTP/1.10\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "version_without_minor",
        source: "RFC 9112 §2.3 (DIGIT \".\" DIGIT)",
        request: req!("GET /public/x HTTP/1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // Decision: 505 and close. RFC 9110 §6.2 says a higher minor version SHOULD be handled
    // as HTTP/1.1; the gateway refuses it instead of guessing its framing rules.
    Case {
        name: "version_1_2",
        source: "RFC 9110 §6.2, §15.6.6 (505)",
        request: req!("GET /public/x HTTP/1.2\r\n", "Host: HOST\r\n", "\r\n"),
        expect: refused(505, true),
    },
    Case {
        name: "version_2_0_in_h1_request_line",
        source: "RFC 9110 §15.6.6 (505 for an unsupported major version); RFC 9113 §3.4",
        request: req!("GET /public/x HTTP/2.0\r\n", "Host: HOST\r\n", "\r\n"),
        expect: refused(505, true),
    },
    // ─────────────── Host header and request-target forms ───────────────
    // Refused by the head check (which closes on every refusal); framing itself is fine.
    Case {
        name: "host_missing_http11",
        source: "RFC 9112 §3.2 (HTTP/1.1 without Host: MUST 400)",
        request: req!("GET /public/x HTTP/1.1\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_duplicate_identical",
        source: "RFC 9112 §3.2 (more than one Host line: MUST 400)",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Host: HOST\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_duplicate_different",
        source: "RFC 9112 §3.2 (more than one Host line: MUST 400); PortSwigger Host header attacks",
        request: req!(
            "GET /public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "Host: smuggled.invalid\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_with_userinfo",
        source: "RFC 9112 §3.2 (invalid Host value: MUST 400); RFC 9110 §7.2, §4.2.4",
        request: req!("GET /public/x HTTP/1.1\r\n", "Host: user@HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "host_with_path",
        source: "RFC 9112 §3.2 (invalid Host value: MUST 400); RFC 9110 §7.2",
        request: req!("GET /public/x HTTP/1.1\r\n", "Host: HOST/admin\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // The authority wins over Host; the upstream should also receive `Host: HOST`
    // (a proxy MUST generate Host from the request-target).
    Case {
        name: "absolute_form_authority_overrides_host",
        source: "RFC 9112 §3.2.2 (ignore received Host, use the target's authority), §3.3",
        request: req!(
            "GET http://HOST/admin/x HTTP/1.1\r\n",
            "Host: other.invalid\r\n",
            "\r\n",
        ),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "absolute_form_dot_segments",
        source: "RFC 9112 §3.2.2; RFC 3986 §5.2.4, §6.2.2.2 (ACL bypass through absolute-form)",
        request: req!(
            "GET http://HOST/public/%2e%2e/admin/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "\r\n",
        ),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "absolute_form_empty_path",
        source: "RFC 9112 §3.2.1 (an empty path is sent as \"/\"), §3.2.2",
        request: req!("GET http://HOST HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/"),
    },
    Case {
        name: "absolute_form_uppercase_scheme",
        source: "RFC 3986 §3.1, §6.2.2.1 (scheme is case-insensitive)",
        request: req!("GET HTTP://HOST/public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/public/x"),
    },
    Case {
        name: "absolute_form_without_host_header",
        source: "RFC 9112 §3.2 (HTTP/1.1 without Host: MUST 400, whatever the target form), §3.2.2",
        request: req!("GET http://HOST/public/x HTTP/1.1\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "absolute_form_with_userinfo",
        source: "RFC 9110 §4.2.4 (userinfo SHOULD be treated as an error)",
        request: req!(
            "GET http://user@HOST/public/x HTTP/1.1\r\n",
            "Host: HOST\r\n",
            "\r\n",
        ),
        expect: BAD_CLOSE,
    },
    // Decision: only http and https absolute-form targets are accepted.
    Case {
        name: "absolute_form_non_http_scheme",
        source: "RFC 9112 §3.2.2; RFC 9110 §4.2",
        request: req!("GET ftp://HOST/public/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "asterisk_form_not_options",
        source: "RFC 9112 §3.2.4 (asterisk-form only for OPTIONS)",
        request: req!("GET * HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    Case {
        name: "authority_form_not_connect",
        source: "RFC 9112 §3.2.3 (authority-form only for CONNECT)",
        request: req!("GET HOST:80 HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // Decision: the gateway is no forward proxy: 501, and close (the client may already be
    // sending tunnel bytes).
    Case {
        name: "connect_not_implemented",
        source: "RFC 9110 §9.3.6, §15.6.2 (501); RFC 9112 §3.2.3",
        request: req!("CONNECT HOST:443 HTTP/1.1\r\n", "Host: HOST:443\r\n", "\r\n"),
        expect: refused(501, true),
    },
    // Decision: a fragment is not part of origin-form; refused rather than stripped.
    Case {
        name: "target_with_fragment",
        source: "RFC 9112 §3.2.1 (origin-form = absolute-path [ \"?\" query ])",
        request: req!("GET /public/x#frag HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: BAD_CLOSE,
    },
    // ─────────────── Path normalisation (routing and forwarding) ───────────────
    Case {
        name: "path_encoded_dot_dot_acl_bypass",
        source: "RFC 3986 §2.3, §6.2.2.2, §5.2.4; Envoy normalize_path; CVE-2021-31920 (Istio)",
        request: req!("GET /public/%2e%2e/admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_encoded_dot_dot_uppercase",
        source: "RFC 3986 §2.1 (hex digits case-insensitive), §6.2.2.2, §5.2.4",
        request: req!("GET /public/%2E%2E/admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_half_encoded_dot_dot_first",
        source: "RFC 3986 §6.2.2.2, §5.2.4; PayloadsAllTheThings directory traversal encodings",
        request: req!("GET /public/.%2e/admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_half_encoded_dot_dot_second",
        source: "RFC 3986 §6.2.2.2, §5.2.4",
        request: req!("GET /public/%2e./admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_encoded_single_dot",
        source: "RFC 3986 §6.2.2.2, §5.2.4",
        request: req!("GET /a/%2E/b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a/b"),
    },
    // Decision: %2F/%5C are refused before any dot-segment handling, even when a decode
    // would produce a traversal.
    Case {
        name: "path_encoded_dot_dot_encoded_slash",
        source: "Envoy path_with_escaped_slashes_action (REJECT_REQUEST); Istio normalization; issue policy",
        request: req!("GET /public/%2e%2e%2fadmin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_slash_uppercase",
        source: "Envoy path_with_escaped_slashes_action; RFC 3986 §2.2 (%2F is not \"/\"); issue policy",
        request: req!("GET /a%2Fb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_slash_lowercase",
        source: "Envoy path_with_escaped_slashes_action; RFC 3986 §2.1; issue policy",
        request: req!("GET /a%2fb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_backslash_uppercase",
        source: "Envoy path_with_escaped_slashes_action (%5C); Istio normalization; issue policy",
        request: req!("GET /a%5Cb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_backslash_traversal",
        source: "Istio normalization (%5c); PayloadsAllTheThings directory traversal; issue policy",
        request: req!("GET /public/..%5cadmin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    // Decision: a raw backslash is not a URI character; refused (not turned into "/").
    Case {
        name: "path_raw_backslash",
        source: "RFC 3986 §3.3 (\"\\\" is not a pchar); Istio BASE normalization (\\ → /) for contrast",
        request: req!("GET /a\\b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_tilde_decoded",
        source: "RFC 3986 §2.3, §6.2.2.2 (decode percent-encoded unreserved)",
        request: req!("GET /%7Euser HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/~user"),
    },
    Case {
        name: "path_encoded_letter_acl_bypass",
        source: "RFC 3986 §2.3, §6.2.2.2; Istio normalization (%41-%5A, %61-%7A)",
        request: req!("GET /%61dmin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_encoded_hyphen_underscore_decoded",
        source: "RFC 3986 §2.3 (\"-\" and \"_\" are unreserved), §6.2.2.2",
        request: req!("GET /a%2Db%5Fc HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a-b_c"),
    },
    Case {
        name: "path_encoded_space_kept",
        source: "RFC 3986 §2.1, §6.2.2.2 (only unreserved are decoded)",
        request: req!("GET /a%20b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a%20b"),
    },
    // Escapes that stay encoded have their hex digits upper-cased (as the router does).
    Case {
        name: "path_other_escapes_uppercased",
        source: "RFC 3986 §2.2, §6.2.2.1 (percent-encoding hex digits normalised to upper case)",
        request: req!("GET /a%2ab%3Bc HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a%2Ab%3Bc"),
    },
    // One decoding pass only: %25 is "%", not unreserved, so nothing changes.
    Case {
        name: "path_double_encoded_not_decoded",
        source: "RFC 3986 §2.4 (never decode twice); Istio normalization (no double decoding)",
        request: req!("GET /public/%252e%252e/admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/public/%252e%252e/admin/x"),
    },
    Case {
        name: "path_merge_slashes",
        source: "Envoy merge_slashes; Istio MERGE_SLASHES; issue policy",
        request: req!("GET //a///b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a/b"),
    },
    Case {
        name: "path_plain_dot_segments",
        source: "RFC 3986 §5.2.4 (remove_dot_segments)",
        request: req!("GET /a/./b/../c HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a/c"),
    },
    Case {
        name: "path_dot_dot_back_to_root",
        source: "RFC 3986 §5.2.4",
        request: req!("GET /a/.. HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/"),
    },
    Case {
        name: "path_trailing_single_dot",
        source: "RFC 3986 §5.2.4 (a final \".\" leaves a trailing \"/\")",
        request: req!("GET /a/b/. HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a/b/"),
    },
    // Decision: slashes are merged before dot segments are resolved (as the router does
    // today), so "//..//" climbs one real segment: "/admin/x", not "/public/admin/x".
    Case {
        name: "path_merge_then_dot_segments",
        source: "RFC 3986 §5.2.4; Envoy merge_slashes + normalize_path; issue policy",
        request: req!("GET /public//..//admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/admin/x"),
    },
    Case {
        name: "path_climbs_above_root",
        source: "RFC 3986 §5.2.4 (decision: 400 rather than clamp at the root)",
        request: req!("GET /../x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_encoded_climbs_above_root",
        source: "RFC 3986 §6.2.2.2, §5.2.4 (decision: 400 rather than clamp)",
        request: req!("GET /%2e%2e/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    // Decision: an encoded NUL is refused (back ends that decode it may truncate).
    Case {
        name: "path_encoded_nul",
        source: "Istio normalization (%00 always rejected with 400); Http11Probe MAL-URL-PERCENT-NULL",
        request: req!("GET /a%00b HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_malformed_percent",
        source: "RFC 3986 §2.1 (pct-encoded = \"%\" HEXDIG HEXDIG)",
        request: req!("GET /a%zzb HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    Case {
        name: "path_truncated_percent",
        source: "RFC 3986 §2.1 (pct-encoded = \"%\" HEXDIG HEXDIG)",
        request: req!("GET /a%2 HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: PATH_BAD,
    },
    // Decision: the policy applies to the path only; the query is forwarded untouched.
    Case {
        name: "path_query_untouched",
        source: "RFC 3986 §3.4 (query is not part of the path); RFC 9112 §3.2.1",
        request: req!("GET /a/./b?x=%2F&y=../z HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a/b?x=%2F&y=../z"),
    },
    // Decision: "..;" is an ordinary segment per RFC 3986, so it is forwarded unchanged and
    // routed under /public/. Servlet containers treat it as "..": see the report.
    Case {
        name: "path_dot_dot_semicolon_segment",
        source: "RFC 3986 §3.3, §5.2.4; Orange Tsai, Breaking Parser Logic (BH USA 2018)",
        request: req!("GET /public/..;/admin/x HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/public/..;/admin/x"),
    },
    // Decision: encoded CR/LF are not unreserved, so they stay encoded (upper-cased) and are
    // forwarded; they never become raw bytes in the forwarded request line.
    Case {
        name: "path_encoded_crlf_kept",
        source: "RFC 3986 §2.1, §6.2.2.1, §6.2.2.2 (only unreserved are decoded)",
        request: req!("GET /a%0d%0ab HTTP/1.1\r\n", "Host: HOST\r\n", "\r\n"),
        expect: fwd("GET", "/a%0D%0Ab"),
    },
];

#[cfg(test)]
mod corpus_checks {
    //! Checks of the corpus itself (no gateway): names, placeholders, and that every
    //! forwarded case is one complete message whose body is the expected one.
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// Decodes a chunked body; returns (body, bytes after the message).
    fn dechunk(mut rest: &[u8]) -> (Vec<u8>, &[u8]) {
        let mut body = Vec::new();
        loop {
            let eol = find(rest, b"\r\n").expect("chunk-size line");
            let line = std::str::from_utf8(&rest[..eol]).expect("ascii chunk line");
            let size_hex = line.split(';').next().expect("size");
            let size = usize::from_str_radix(size_hex, 16).expect("hex chunk size");
            rest = &rest[eol + 2..];
            if size == 0 {
                // Trailer section, then the final CRLF.
                loop {
                    let eol = find(rest, b"\r\n").expect("trailer line");
                    let empty = eol == 0;
                    rest = &rest[eol + 2..];
                    if empty {
                        return (body, rest);
                    }
                }
            }
            body.extend_from_slice(&rest[..size]);
            assert_eq!(&rest[size..size + 2], b"\r\n", "CRLF after chunk data");
            rest = &rest[size + 2..];
        }
    }

    #[test]
    fn names_are_unique_snake_case_and_sourced() {
        assert!(CASES.len() >= 60, "{} cases", CASES.len());
        let mut seen = std::collections::HashSet::new();
        for c in CASES {
            assert!(seen.insert(c.name), "duplicate name {}", c.name);
            assert!(
                c.name.starts_with(|ch: char| ch.is_ascii_lowercase())
                    && c.name
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_'),
                "not snake_case: {}",
                c.name
            );
            assert!(!c.source.trim().is_empty(), "{} has no source", c.name);
            if let Expect::Forwarded { path, .. } = c.expect {
                assert!(
                    path.starts_with('/') || path == "*",
                    "{}: path {path}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn host_placeholder_only_in_the_head() {
        for c in CASES {
            if let Some(end) = find(c.request, b"\r\n\r\n") {
                assert!(
                    find(&c.request[end..], HOST.as_bytes()).is_none(),
                    "{}: HOST in the body would change lengths",
                    c.name
                );
            }
            assert!(
                request_for(c, "edge.test")
                    .windows(HOST.len())
                    .all(|w| w != HOST.as_bytes()),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn forwarded_cases_are_one_complete_message_with_the_expected_body() {
        for c in CASES {
            let Expect::Forwarded { method, body, .. } = c.expect else {
                continue;
            };
            let req = c.request.strip_prefix(b"\r\n").unwrap_or(c.request);
            assert!(req.starts_with(method.as_bytes()), "{}: method", c.name);
            let end = find(req, b"\r\n\r\n").expect("end of head");
            let head = std::str::from_utf8(&req[..end]).expect("ascii head");
            let rest = &req[end + 4..];
            let mut cl: Vec<String> = Vec::new();
            let mut chunked = false;
            for line in head.split("\r\n").skip(1) {
                let (name, value) = line.split_once(':').expect("field line");
                let value = value.trim_matches([' ', '\t']);
                if name.eq_ignore_ascii_case("content-length") {
                    cl.extend(value.split(',').map(|v| v.trim().to_string()));
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    assert!(value.eq_ignore_ascii_case("chunked"), "{}", c.name);
                    chunked = true;
                }
            }
            let (got, left): (Vec<u8>, &[u8]) = if chunked {
                assert!(cl.is_empty(), "{}: TE and CL", c.name);
                dechunk(rest)
            } else if let Some(first) = cl.first() {
                assert!(
                    cl.iter().all(|v| v == first),
                    "{}: CL values differ",
                    c.name
                );
                let n: usize = first.parse().expect("decimal CL");
                assert!(rest.len() >= n, "{}: body shorter than CL", c.name);
                (rest[..n].to_vec(), &rest[n..])
            } else {
                (Vec::new(), rest)
            };
            assert!(left.is_empty(), "{}: bytes after the message", c.name);
            if let Some(b) = body {
                assert_eq!(got, b, "{}: body", c.name);
            }
        }
    }

    #[test]
    fn smuggling_lengths_are_exact() {
        assert_eq!(smuggled!().len(), 0x38);
        // CL.TE shape: "0\r\n\r\n" + smuggled request.
        assert_eq!(concat!("0\r\n\r\n", smuggled!()).len(), 61);
        for name in ["cl_te_smuggle", "te_before_cl_smuggle", "tete_xchunked"] {
            let c = case(name).expect("case");
            let end = find(c.request, b"\r\n\r\n").expect("head");
            assert_eq!(c.request.len() - end - 4, 61, "{name}");
        }
        // TE.CL: the chunked body is complete and holds the smuggled request.
        let c = case("te_cl_smuggle").expect("case");
        let end = find(c.request, b"\r\n\r\n").expect("head");
        let (body, left) = dechunk(&c.request[end + 4..]);
        assert_eq!(body, smuggled!().as_bytes());
        assert!(left.is_empty());
    }
}
