//! The admin listener: health for the SLB, metrics for Prometheus, and the token-protected
//! admin API. It runs as its own Pingora service so a busy proxy cannot starve it.

mod config_api;
mod quota_api;
mod services_api;

use crate::gateway::Gateway;
use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use serde::Deserialize;
use std::ops::Range;
use std::sync::Arc;
use tidegate_plugins::consumers::constant_time_eq;
use toml::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: Spanned<String>,
    /// Bearer token for `/api/*`. Without one the API is closed; health and metrics stay open.
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Spanned::new(0..0, "127.0.0.1:9080".into()),
            token: None,
        }
    }
}

impl AdminConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        if let Err(e) = self.listen.get_ref().parse::<std::net::SocketAddr>() {
            report(
                Some(self.listen.span()),
                format!("bad admin listen address {:?}: {e}", self.listen.get_ref()),
            );
        }
        if self.token.as_deref() == Some("") {
            report(
                None,
                "admin.token must not be empty (leave it out to close the API)".into(),
            );
        }
    }
}

pub struct AdminApp {
    gateway: Arc<Gateway>,
}

impl AdminApp {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        AdminApp { gateway }
    }
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method.as_str(), path.as_str()) {
            ("GET", "/healthz") => text(StatusCode::OK, "ok\n"),
            ("GET", "/readyz") => {
                if self.gateway.is_draining() {
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"ready": false, "reason": "draining"}),
                    )
                } else {
                    // Registry trouble degrades (last known instances keep serving); it is
                    // shown here, not made a reason to take the gateway out of the SLB.
                    json(
                        StatusCode::OK,
                        serde_json::json!({"ready": true, "registry": self.gateway.discovery().status()}),
                    )
                }
            }
            ("GET", "/metrics") => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "text/plain; version=0.0.4")
                .body(crate::metrics::get().render())
                .expect("valid response"),
            (_, p) if p.starts_with("/api/") => {
                if let Err(resp) = self.authorize(session) {
                    return *resp;
                }
                match (p.strip_prefix("/api/quota/"), method.as_str(), p) {
                    (Some(rest), _, _) => {
                        quota_api::handle(&self.gateway, session, method.as_str(), rest).await
                    }
                    (None, "GET", "/api/services") => services_api::list(&self.gateway),
                    (None, _, _) => {
                        config_api::handle(&self.gateway, session, method.as_str(), p).await
                    }
                }
            }
            _ => json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "Not Found"}),
            ),
        }
    }
}

impl AdminApp {
    fn authorize(&self, session: &ServerSession) -> Result<(), Box<Response<Vec<u8>>>> {
        let snapshot = self.gateway.snapshot();
        let Some(token) = snapshot.config.admin.token.as_deref() else {
            return Err(Box::new(unauthorized(
                "the admin API is closed: set admin.token in the config",
            )));
        };
        let sent = session
            .req_header()
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Constant time, so timing does not reveal how much of a guess was right.
        if constant_time_eq(sent.as_bytes(), token.as_bytes()) {
            Ok(())
        } else {
            Err(Box::new(unauthorized("missing or wrong bearer token")))
        }
    }
}

fn unauthorized(message: &str) -> Response<Vec<u8>> {
    let mut resp = json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "Unauthorized", "message": message}),
    );
    resp.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer realm=\"tidegate-admin\""),
    );
    resp
}

pub fn json(status: StatusCode, value: serde_json::Value) -> Response<Vec<u8>> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .expect("valid response")
}

pub fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("content-length", body.len())
        .body(body.as_bytes().to_vec())
        .expect("valid response")
}
