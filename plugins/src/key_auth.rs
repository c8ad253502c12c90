//! `type = "key-auth"`: API keys in a header (or a query parameter), checked in constant
//! time against the consumers' keys. It names the consumer and tenant for later plugins and
//! the upstream, and removes the credential before the request goes upstream.

use crate::{order, parse_config, BuildContext, Plugin, Reply, RequestState};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_header")]
    header: String,
    /// Also accept the key in this query parameter.
    query: Option<String>,
    #[serde(default = "default_true")]
    hide_credentials: bool,
    /// API permission: only these consumers may pass (empty: any known consumer).
    #[serde(default)]
    allow: Vec<String>,
}

fn default_header() -> String {
    "x-api-key".into()
}
fn default_true() -> bool {
    true
}

pub struct KeyAuth {
    name: String,
    header: http::HeaderName,
    query: Option<String>,
    hide: bool,
    allow: Vec<String>,
    consumers: Arc<crate::consumers::Consumers>,
}

impl KeyAuth {
    pub fn build(
        name: &str,
        table: toml::Table,
        cx: &BuildContext,
    ) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let header = http::HeaderName::from_bytes(config.header.as_bytes())
            .map_err(|_| format!("plugin {name:?}: bad header name {:?}", config.header))?;
        Ok(Arc::new(KeyAuth {
            name: name.into(),
            header,
            query: config.query,
            hide: config.hide_credentials,
            allow: config.allow,
            consumers: cx.consumers.clone(),
        }))
    }

    fn presented<'a>(&self, req: &'a RequestHeader) -> Option<&'a [u8]> {
        if let Some(v) = req.headers.get(&self.header) {
            return Some(v.as_bytes());
        }
        let name = self.query.as_deref()?;
        req.uri.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then_some(v.as_bytes())
        })
    }
}

#[async_trait]
impl Plugin for KeyAuth {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::AUTH
    }

    async fn on_request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        let challenge = |message: &str| Reply::challenge("ApiKey", message);
        let Some(key) = self.presented(req) else {
            return Err(challenge("an API key is required"));
        };
        let Some(consumer) = self.consumers.by_key(key) else {
            return Err(challenge("the API key is not valid"));
        };
        consumer.admit(&self.allow, state)
    }

    fn on_upstream_request(
        &self,
        req: &mut RequestHeader,
        _state: &mut RequestState,
        _index: usize,
    ) {
        if self.hide {
            req.remove_header(&self.header);
        }
    }
}
