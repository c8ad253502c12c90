//! `/api/config*`: read, validate and apply configs through the same pipeline as the file.

use super::{json, text};
use crate::config::Source;
use crate::gateway::{Applied, ChangeSource, Gateway};
use http::{Response, StatusCode};
use pingora_core::protocols::http::ServerSession;
use serde_json::json;

/// A config larger than this is refused unread.
const MAX_BODY: usize = 32 * 1024 * 1024;

pub async fn handle(
    gateway: &Gateway,
    session: &mut ServerSession,
    method: &str,
    path: &str,
) -> Response<Vec<u8>> {
    match (method, path) {
        ("GET", "/api/config") => {
            let snapshot = gateway.snapshot();
            let mut resp = text(StatusCode::OK, &snapshot.source.text);
            resp.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/toml; charset=utf-8"),
            );
            resp
        }
        ("GET", "/api/config/status") => status(gateway),
        ("PUT", "/api/config") | ("POST", "/api/config/validate") => {
            let body = match read_body(session).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let serving = gateway.snapshot();
            let mut source = Source::new("admin api", body);
            if let Some(overlay) = &serving.source.overlay {
                // Shared config: checked as the fleet would read it, changed only in Nacos.
                source = source.with_overlay(overlay.clone());
                if path == "/api/config" {
                    return json(
                        StatusCode::CONFLICT,
                        json!({"error": format!("the config comes from {}; publish changes there", serving.source.origin)}),
                    );
                }
            }
            if path == "/api/config/validate" {
                return match crate::snapshot::Snapshot::check(source) {
                    Ok(_) => json(StatusCode::OK, json!({"valid": true})),
                    Err(errors) => refused(&errors),
                };
            }
            match gateway.apply(source, ChangeSource::AdminApi) {
                Ok(Applied::New {
                    version,
                    hash,
                    restart_needed,
                }) => json(
                    StatusCode::OK,
                    json!({"applied": true, "version": version, "hash": hash, "restart_needed": restart_needed}),
                ),
                Ok(Applied::Unchanged { version, hash }) => json(
                    StatusCode::OK,
                    json!({"applied": false, "unchanged": true, "version": version, "hash": hash}),
                ),
                Err(errors) => refused(&errors),
            }
        }
        (_, "/api/config" | "/api/config/status" | "/api/config/validate") => json(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "Method Not Allowed"}),
        ),
        _ => json(StatusCode::NOT_FOUND, json!({"error": "Not Found"})),
    }
}

fn status(gateway: &Gateway) -> Response<Vec<u8>> {
    let snapshot = gateway.snapshot();
    json(
        StatusCode::OK,
        json!({
            "version": snapshot.version,
            "hash": snapshot.hash,
            "applied_at": crate::time::rfc3339_millis(snapshot.applied_at),
            "source": gateway.current_source(),
            "origin": snapshot.source.origin,
            "routes": snapshot.router.routes().len(),
            "services": snapshot.services.len(),
            "tunnels_open": gateway.tunnels().len(),
            "last_refused": gateway.last_refusal(),
            "registry": gateway.discovery().status(),
            "dns": gateway.discovery().dns.status(),
            "kubernetes": gateway.discovery().kubernetes.status(),
            // What the Ingress controller left out of this config (its report.json).
            "translation": crate::translation_report::read(gateway),
        }),
    )
}

/// 400 with `line:column: message` lines, as text a person can read and a tool can split.
fn refused(errors: &crate::config::ConfigErrors) -> Response<Vec<u8>> {
    json(
        StatusCode::BAD_REQUEST,
        json!({
            "error": "invalid config",
            "errors": errors.errors.iter().map(std::string::ToString::to_string).collect::<Vec<_>>(),
        }),
    )
}

async fn read_body(session: &mut ServerSession) -> Result<String, Response<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(json(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        json!({"error": "config too large"}),
                    ));
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "could not read body", "message": e.to_string()}),
                ))
            }
        }
    }
    String::from_utf8(body).map_err(|_| {
        json(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid config", "errors": ["config is not UTF-8"]}),
        )
    })
}
