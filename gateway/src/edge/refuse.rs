//! Answering a request the edge refuses before anything is routed: a short JSON error with a
//! request id and `Connection: close`, a line in the access log, a count by reason — then
//! the connection is closed (its framing is in doubt).

use super::framing::Refusal;
use super::FrontStream;
use crate::gateway::Gateway;
use tokio::io::AsyncWriteExt;

pub fn too_large() -> Refusal {
    Refusal {
        status: 431,
        reason: "head_too_large",
        message: "the request head is larger than edge.max_header_bytes".into(),
    }
}

pub fn timeout() -> Refusal {
    Refusal {
        status: 408,
        reason: "head_timeout",
        message: "the request head did not arrive within edge.header_read_timeout_ms".into(),
    }
}

/// Writes the answer and gives up the connection.
pub async fn answer(gateway: &Gateway, mut front: FrontStream, refusal: &Refusal) {
    let request_id = crate::proxy::new_request_id();
    let body = crate::proxy::respond::error_body(refusal.status, &refusal.message, &request_id);
    let reason = http::StatusCode::from_u16(refusal.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: {request_id}\r\nconnection: close\r\n\r\n",
        refusal.status,
        body.len()
    );
    let out = front.inner_mut();
    let answer = [head.as_bytes(), body.as_bytes()].concat();
    let written = async {
        out.write_all(&answer).await?;
        out.flush().await
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), written).await;
    crate::metrics::get()
        .requests_refused
        .with_label_values(&[refusal.reason])
        .inc();
    let client = super::peer_ip(&front)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    log::debug!(
        "refused a request from {client}: {} {} ({})",
        refusal.status,
        refusal.reason,
        refusal.message
    );
    let log = gateway.access_log();
    if log.enabled() {
        log.write(
            crate::access_log::Line::new()
                .str(
                    "time",
                    &crate::time::rfc3339_millis(std::time::SystemTime::now()),
                )
                .str("request_id", &request_id)
                .str("client_ip", &client)
                .num("status", refusal.status)
                .str("refused", refusal.reason)
                .finish(),
        );
    }
    let _ = front.inner_mut().shutdown().await;
}
