//! `type = "cors"`: answers preflight requests at the gateway and adds the CORS headers to
//! responses for allowed origins.

use crate::{order, parse_config, Plugin, Reply, RequestState};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Allowed origins (`https://app.example.com`), or `["*"]` for any.
    origins: Vec<String>,
    #[serde(default = "default_methods")]
    methods: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default)]
    credentials: bool,
    #[serde(default = "default_max_age")]
    max_age_seconds: u64,
}

fn default_methods() -> Vec<String> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .map(String::from)
        .to_vec()
}
fn default_max_age() -> u64 {
    600
}

pub struct Cors {
    name: String,
    any_origin: bool,
    origins: Vec<String>,
    methods: HeaderValue,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
}

/// Set on requests from an allowed origin, for the response phase.
struct AllowedOrigin(HeaderValue);

fn joined(list: &[String]) -> Result<Option<HeaderValue>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&list.join(", "))
        .map(Some)
        .map_err(|_| "bad header list".to_string())
}

impl Cors {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let any_origin = config.origins.iter().any(|o| o == "*");
        if any_origin && config.credentials {
            return Err(format!(
                "plugin {name:?}: credentials cannot be allowed for any origin (*)"
            ));
        }
        let err = |e: String| format!("plugin {name:?}: {e}");
        Ok(Arc::new(Cors {
            name: name.into(),
            any_origin,
            origins: config.origins,
            methods: joined(&config.methods)
                .map_err(err)?
                .unwrap_or(HeaderValue::from_static("GET")),
            headers: joined(&config.headers).map_err(err)?,
            expose: joined(&config.expose_headers).map_err(err)?,
            credentials: config.credentials,
            max_age: HeaderValue::from(config.max_age_seconds),
        }))
    }

    fn allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == origin)
    }

    fn origin_headers(&self, origin: &HeaderValue) -> Vec<(HeaderName, HeaderValue)> {
        let mut h = vec![(
            http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            if self.any_origin {
                HeaderValue::from_static("*")
            } else {
                origin.clone()
            },
        )];
        if !self.any_origin {
            h.push((http::header::VARY, HeaderValue::from_static("Origin")));
        }
        if self.credentials {
            h.push((
                http::header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        h
    }
}

#[async_trait]
impl Plugin for Cors {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::CORS
    }

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        index: usize,
    ) -> Result<(), Reply> {
        let Some(origin) = req.headers.get(http::header::ORIGIN).cloned() else {
            return Ok(());
        };
        let allowed = origin.to_str().is_ok_and(|o| self.allowed(o));
        let preflight = req.method == http::Method::OPTIONS
            && req
                .headers
                .contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            if !allowed {
                return Err(Reply::json(403, "Forbidden", "origin not allowed"));
            }
            let mut headers = self.origin_headers(&origin);
            headers.push((
                http::header::ACCESS_CONTROL_ALLOW_METHODS,
                self.methods.clone(),
            ));
            let requested = req
                .headers
                .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned();
            if let Some(h) = self.headers.clone().or(requested) {
                headers.push((http::header::ACCESS_CONTROL_ALLOW_HEADERS, h));
            }
            headers.push((http::header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone()));
            return Err(Reply {
                status: 204,
                headers,
                body: Default::default(),
            });
        }
        if allowed {
            *state.slot(index) = Some(Box::new(AllowedOrigin(origin)));
        }
        Ok(())
    }

    fn on_response(&self, resp: &mut ResponseHeader, state: &mut RequestState, index: usize) {
        let Some(AllowedOrigin(origin)) = state.slot(index).as_ref().and_then(|s| s.downcast_ref())
        else {
            return;
        };
        for (name, value) in self.origin_headers(origin) {
            let _ = resp.insert_header(name, value);
        }
        if let Some(expose) = &self.expose {
            let _ = resp.insert_header(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
    }
}
