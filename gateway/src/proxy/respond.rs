//! Responses the gateway writes itself: errors with short JSON bodies, direct responses and
//! redirects. Every one carries the request id.

use super::RequestCtx;
use crate::router::DirectResponse;
use bytes::Bytes;
use http::HeaderValue;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// `{"error":"Not Found","message":"…","request_id":"…"}` with the given status.
pub async fn error(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    message: &str,
) -> pingora_core::Result<()> {
    if super::grpc::is_grpc(session.req_header()) {
        return write_grpc(session, ctx, status, message).await;
    }
    let body = error_body(status, message, &ctx.request_id);
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    write(session, ctx, resp, Bytes::from(body)).await
}

/// A gRPC call gets the gateway's answer as a gRPC status (trailers-only, HTTP 200).
async fn write_grpc(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    message: &str,
) -> pingora_core::Result<()> {
    let mut resp = super::grpc::answer(status, message)?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    ctx.status = status;
    use pingora_core::protocols::http::ServerSession;
    match session.as_downstream_mut() {
        // Trailers-only: one HEADERS frame that ends the stream, as gRPC clients expect.
        ServerSession::H2(h2) => h2.write_response_header(Box::new(resp), true),
        // gRPC-Web over HTTP/1.1 reads the status from the headers of an empty answer.
        _ => {
            resp.insert_header(http::header::CONTENT_LENGTH, 0)?;
            session.write_response_header(Box::new(resp), true).await
        }
    }
}

pub fn error_body(status: u16, message: &str, request_id: &str) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    serde_json::json!({ "error": reason, "message": message, "request_id": request_id }).to_string()
}

/// A plugin's answer (401, 403, 429, …).
pub async fn reply(
    session: &mut Session,
    ctx: &mut RequestCtx,
    reply: tidegate_plugins::Reply,
) -> pingora_core::Result<()> {
    if super::grpc::is_grpc(session.req_header()) {
        let message = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return write_grpc(session, ctx, reply.status, &message).await;
    }
    let mut resp = ResponseHeader::build(reply.status, Some(reply.headers.len() + 2))?;
    for (name, value) in reply.headers {
        resp.insert_header(name, value)?;
    }
    let body = with_request_id(reply.body, &ctx.request_id);
    write(session, ctx, resp, body).await
}

/// A plugin's standard error body (`Reply::json`) gets the request id, like the gateway's
/// own errors, so a refused client can quote it to support. Other bodies are left alone.
fn with_request_id(body: Bytes, request_id: &str) -> Bytes {
    if !body.starts_with(b"{\"error\":") {
        return body;
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("request_id".into(), request_id.into());
            Bytes::from(serde_json::Value::Object(fields).to_string())
        }
        _ => body,
    }
}

pub async fn direct(
    session: &mut Session,
    ctx: &mut RequestCtx,
    response: &DirectResponse,
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build(response.status, Some(response.headers.len() + 3))?;
    for (name, value) in &response.headers {
        resp.insert_header(name.clone(), value.clone())?;
    }
    write(session, ctx, resp, response.body.clone()).await
}

pub async fn redirect(
    session: &mut Session,
    ctx: &mut RequestCtx,
    location: &HeaderValue,
    status: u16,
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(3))?;
    resp.insert_header(http::header::LOCATION, location.clone())?;
    write(session, ctx, resp, Bytes::new()).await
}

async fn write(
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut resp: ResponseHeader,
    body: Bytes,
) -> pingora_core::Result<()> {
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header("x-request-id", ctx.request_id.as_str())?;
    ctx.add_hsts(&mut resp)?;
    ctx.status = resp.status.as_u16();
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only)
        .await?;
    if !head_only {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}
