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
use std::sync::Arc;
use tidegate_plugins::consumers::constant_time_eq;

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
                if let Some(reason) = self.gateway.readiness().unready_reason() {
                    json(
                        StatusCode::SERVICE_UNAVAILABLE,
                        serde_json::json!({"ready": false, "reason": reason}),
                    )
                } else {
                    // Registry trouble degrades (last known instances keep serving); it is
                    // shown here, not made a reason to take the gateway out of the SLB.
                    json(
                        StatusCode::OK,
                        serde_json::json!({
                            "ready": true,
                            "registry": self.gateway.discovery().status(),
                            "kubernetes": self.gateway.discovery().kubernetes.status(),
                        }),
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
                    (None, "POST" | "DELETE", "/api/drain") => {
                        // Before host maintenance: the SLB moves traffic away on /readyz 503
                        // while requests are still served; DELETE puts the host back.
                        let drain = method == "POST";
                        self.gateway.readiness().set_drained(drain);
                        log::warn!(
                            "{}",
                            if drain {
                                "drained by the admin API: /readyz answers 503"
                            } else {
                                "drain lifted by the admin API: /readyz answers 200"
                            }
                        );
                        json(
                            StatusCode::OK,
                            serde_json::json!({"drained": drain, "ready": self.gateway.readiness().is_ready()}),
                        )
                    }
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

/// One call to a gateway's admin API from the command line (`tidegate drain`): a plain
/// HTTP/1.1 request on loopback or the host's admin address, answered with its status and
/// body.
pub fn call(
    addr: &str,
    token: Option<&str>,
    method: &str,
    path: &str,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(5);
    let sockaddr: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&sockaddr, timeout)
        .map_err(|e| format!("cannot reach the admin listener {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Ok((status, body))
}
