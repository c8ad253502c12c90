//! `type = "request-size"`: refuses bodies declared larger than a limit with 413, before any
//! byte goes upstream. (Chunked bodies without a length are not counted here.)

use crate::{order, parse_config, Plugin, Reply, RequestState};
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

    async fn on_request(
        &self,
        req: &RequestHeader,
        _state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
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
