//! Reading a request body before it goes upstream, for plugins that must see it (signatures,
//! the WAF). Pingora replays what was read to the upstream from its retry buffer, which holds
//! [`tidegate_plugins::MAX_BODY_INSPECT`] bytes; so only bodies whose declared length fits
//! are read here. Anything else streams as usual and the plugins are told it was not read.

use pingora_core::Result;
use pingora_proxy::Session;

/// The whole body, `Some(vec![])` for a request without one, or `None` when it was left to
/// stream (chunked, or longer than `limit`).
pub async fn read(session: &mut Session, limit: usize) -> Result<Option<Vec<u8>>> {
    let headers = &session.req_header().headers;
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Ok(None);
    }
    let length = match headers.get(http::header::CONTENT_LENGTH) {
        None => return Ok(Some(Vec::new())),
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<usize>().ok()) {
            Some(n) => n,
            None => return Ok(None),
        },
    };
    let limit = limit.min(tidegate_plugins::MAX_BODY_INSPECT);
    if length == 0 {
        return Ok(Some(Vec::new()));
    }
    if length > limit {
        return Ok(None);
    }
    session.as_downstream_mut().enable_retry_buffering();
    let mut body = Vec::with_capacity(length);
    while let Some(chunk) = session.read_request_body().await? {
        body.extend_from_slice(&chunk);
        if body.len() > length {
            break;
        }
    }
    Ok(Some(body))
}
