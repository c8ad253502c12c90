//! `type = "cors"`: answers preflight requests at the gateway and adds the CORS headers to
//! responses for allowed origins.

use crate::{order, parse_config, Ctx, Plugin, Reply};
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

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[403]);
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
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
            cx.keep(AllowedOrigin(origin));
        }
        Ok(())
    }

    fn on_response(&self, resp: &mut ResponseHeader, cx: &mut Ctx<'_>) {
        let Some(AllowedOrigin(origin)) = cx.kept::<AllowedOrigin>() else {
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

#[cfg(test)]
mod tests {
    use crate::testing;
    use pingora_http::ResponseHeader;

    const APP: &str = "https://app.example.com";
    const PLUGIN: &str = "type = \"cors\"\norigins = [\"https://app.example.com\"]\nheaders = [\"content-type\", \"x-api-key\"]\nmax_age_seconds = 120";

    fn preflight(origin: &str) -> pingora_http::RequestHeader {
        testing::request(
            "OPTIONS",
            "/api/items",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "x-custom"),
            ],
        )
    }

    /// The response headers of a GET from `origin` (None: no Origin) through `table`.
    async fn response(table: &str, origin: Option<&str>) -> ResponseHeader {
        let chain = testing::chain(&[table]);
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let req = testing::request("GET", "/api/items", &headers);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        chain.request(&req, &mut state).await.unwrap();
        let mut resp = ResponseHeader::build(200u16, None).unwrap();
        chain.response(&mut resp, &mut state);
        resp
    }

    fn get<'a>(resp: &'a ResponseHeader, name: &str) -> Option<&'a str> {
        resp.headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn a_preflight_from_an_allowed_origin_is_answered_by_the_gateway() {
        let (result, _) =
            testing::run(&testing::plugin(PLUGIN), &preflight(APP), "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());
        let h = |name: &str| testing::header(&reply, name);
        assert_eq!(h("access-control-allow-origin"), Some(APP));
        assert_eq!(h("vary"), Some("Origin"));
        assert_eq!(
            h("access-control-allow-methods"),
            Some("GET, POST, PUT, PATCH, DELETE")
        );
        assert_eq!(
            h("access-control-allow-headers"),
            Some("content-type, x-api-key")
        );
        assert_eq!(h("access-control-max-age"), Some("120"));
        assert_eq!(h("access-control-allow-credentials"), None);
    }

    #[tokio::test]
    async fn a_preflight_without_configured_headers_allows_the_requested_ones() {
        let table = "type = \"cors\"\norigins = [\"https://app.example.com\"]\nmethods = [\"GET\"]";
        let (result, _) = testing::run(&testing::plugin(table), &preflight(APP), "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(
            testing::header(&reply, "access-control-allow-headers"),
            Some("x-custom")
        );
        assert_eq!(
            testing::header(&reply, "access-control-allow-methods"),
            Some("GET")
        );
        assert_eq!(
            testing::header(&reply, "access-control-max-age"),
            Some("600")
        );
    }

    #[tokio::test]
    async fn a_preflight_from_another_origin_is_403() {
        let req = preflight("https://evil.example.com");
        let (result, _) = testing::run(&testing::plugin(PLUGIN), &req, "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 403);
        assert_eq!(testing::header(&reply, "access-control-allow-origin"), None);
    }

    #[tokio::test]
    async fn an_options_request_without_a_requested_method_is_not_a_preflight() {
        let req = testing::request("OPTIONS", "/api/items", &[("origin", APP)]);
        let (result, _) = testing::run(&testing::plugin(PLUGIN), &req, "192.0.2.1").await;
        assert!(result.is_ok());
    }

    #[tokio::test]
    async fn a_request_from_an_allowed_origin_gets_the_origin_headers_on_its_response() {
        let resp = response(PLUGIN, Some(APP)).await;
        assert_eq!(get(&resp, "access-control-allow-origin"), Some(APP));
        assert_eq!(get(&resp, "vary"), Some("Origin"));
        assert_eq!(get(&resp, "access-control-expose-headers"), None);
    }

    #[tokio::test]
    async fn a_request_from_another_origin_or_none_gets_no_cors_headers() {
        for origin in [Some("https://evil.example.com"), None] {
            let resp = response(PLUGIN, origin).await;
            assert_eq!(
                get(&resp, "access-control-allow-origin"),
                None,
                "{origin:?}"
            );
            assert_eq!(get(&resp, "vary"), None, "{origin:?}");
        }
    }

    #[tokio::test]
    async fn any_origin_answers_star_without_vary() {
        let table = "type = \"cors\"\norigins = [\"*\"]\nexpose_headers = [\"x-request-id\"]";
        let resp = response(table, Some("https://whoever.example")).await;
        assert_eq!(get(&resp, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&resp, "vary"), None);
        assert_eq!(
            get(&resp, "access-control-expose-headers"),
            Some("x-request-id")
        );
    }

    #[tokio::test]
    async fn credentials_are_allowed_for_listed_origins_only() {
        let table = "type = \"cors\"\norigins = [\"https://app.example.com\"]\ncredentials = true";
        let resp = response(table, Some(APP)).await;
        assert_eq!(get(&resp, "access-control-allow-credentials"), Some("true"));
        let error = testing::refusal("type = \"cors\"\norigins = [\"*\"]\ncredentials = true");
        assert!(error.starts_with("plugin \"p\""), "{error}");
        assert!(error.contains("credentials"), "{error}");
    }
}
