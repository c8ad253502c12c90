//! gRPC over the proxy: errors the gateway makes itself are answered as gRPC statuses (HTTP
//! 200, `grpc-status`, `grpc-message`, trailers-only) so a gRPC client reads them, and a call's
//! `grpc-timeout` bounds how long the gateway waits for the upstream.

use pingora_http::{RequestHeader, ResponseHeader};
use std::time::Duration;

/// A gRPC (or gRPC-Web) call: its content type says so.
pub fn is_grpc(req: &RequestHeader) -> bool {
    req.headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The gRPC status for an HTTP status the gateway would answer (the mapping gRPC's own
/// HTTP-to-gRPC table uses, plus the gateway's own cases).
pub fn status_for(http_status: u16) -> u8 {
    match http_status {
        400 => 3,        // INVALID_ARGUMENT
        401 => 16,       // UNAUTHENTICATED
        403 => 7,        // PERMISSION_DENIED
        404 => 12,       // UNIMPLEMENTED: no route for this method
        408 | 504 => 4,  // DEADLINE_EXCEEDED
        413 | 429 => 8,  // RESOURCE_EXHAUSTED
        501 => 12,       // UNIMPLEMENTED
        502 | 503 => 14, // UNAVAILABLE
        _ => 13,         // INTERNAL
    }
}

/// A trailers-only gRPC answer: 200 with the status in the headers and no body.
pub fn answer(http_status: u16, message: &str) -> pingora_core::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/grpc")?;
    resp.insert_header("grpc-status", status_for(http_status).to_string())?;
    resp.insert_header("grpc-message", percent_encode(message))?;
    Ok(resp)
}

/// `grpc-message` is percent-encoded (gRPC over HTTP/2 spec).
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `grpc-timeout: 200m` → 200 ms (units H M S m u n; at most 8 digits).
pub fn timeout(req: &RequestHeader) -> Option<Duration> {
    let v = req.headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_deadlines_and_maps_statuses() {
        let mut req = RequestHeader::build("POST", b"/p.S/M", None).unwrap();
        req.insert_header("grpc-timeout", "250m").unwrap();
        assert_eq!(timeout(&req), Some(Duration::from_millis(250)));
        req.insert_header("grpc-timeout", "3S").unwrap();
        assert_eq!(timeout(&req), Some(Duration::from_secs(3)));
        req.insert_header("grpc-timeout", "x").unwrap();
        assert_eq!(timeout(&req), None);
        assert_eq!(status_for(404), 12);
        assert_eq!(status_for(429), 8);
        assert_eq!(status_for(502), 14);
        assert_eq!(status_for(504), 4);
        assert_eq!(percent_encode("bad ünicode%"), "bad %C3%BCnicode%25");
    }
}
