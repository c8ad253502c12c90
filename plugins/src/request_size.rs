//! `type = "request-size"`: refuses bodies declared larger than a limit with 413, before any
//! byte goes upstream. (Chunked bodies without a length are not counted here.)

use crate::{order, parse_config, Ctx, Plugin, Reply};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    max_bytes: u64,
}

pub struct RequestSize {
    name: String,
    max: u64,
}

impl RequestSize {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        Ok(Arc::new(RequestSize {
            name: name.into(),
            max: config.max_bytes,
        }))
    }
}

#[async_trait]
impl Plugin for RequestSize {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::IP_RESTRICTION + 50
    }

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[413]);
    }

    async fn on_request(&self, req: &RequestHeader, _cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let declared = req
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
        match declared {
            Some(n) if n > self.max => Err(Reply::json(
                413,
                "Payload Too Large",
                &format!("request bodies are limited to {} bytes", self.max),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;

    const PLUGIN: &str = "type = \"request-size\"\nmax_bytes = 10";

    async fn status(headers: &[(&str, &str)]) -> Option<u16> {
        let req = testing::request("POST", "/upload", headers);
        let (result, _) = testing::run(&testing::plugin(PLUGIN), &req, "192.0.2.1").await;
        result.err().map(|reply| reply.status)
    }

    #[tokio::test]
    async fn a_declared_length_above_the_limit_is_413() {
        let req = testing::request("POST", "/upload", &[("content-length", "11")]);
        let (result, _) = testing::run(&testing::plugin(PLUGIN), &req, "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 413);
        assert_eq!(testing::body(&reply)["error"], "Payload Too Large");
        assert!(testing::body(&reply)["message"]
            .as_str()
            .unwrap()
            .contains("10 bytes"));
    }

    #[tokio::test]
    async fn lengths_at_or_below_the_limit_pass() {
        assert_eq!(status(&[("content-length", "10")]).await, None);
        assert_eq!(status(&[("content-length", "0")]).await, None);
        assert_eq!(status(&[("content-length", "1000")]).await, Some(413));
    }

    #[tokio::test]
    async fn a_request_without_content_length_passes() {
        assert_eq!(status(&[]).await, None);
        assert_eq!(status(&[("transfer-encoding", "chunked")]).await, None);
    }

    #[test]
    fn max_bytes_is_required_and_unknown_keys_refused() {
        assert!(testing::refusal("type = \"request-size\"").contains("max_bytes"));
        let error = testing::refusal("type = \"request-size\"\nmax_bytes = 1\nmax = 2");
        assert!(error.starts_with("plugin \"p\""), "{error}");
    }
}
