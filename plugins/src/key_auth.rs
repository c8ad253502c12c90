//! `type = "key-auth"`: API keys in a header (or a query parameter), checked in constant
//! time against the consumers' keys. It names the consumer and tenant for later plugins and
//! the upstream, and removes the credential before the request goes upstream.

use crate::{order, parse_config, BuildContext, Ctx, Plugin, Reply};
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

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[401, 403]);
    }

    async fn on_request(&self, req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let challenge = |message: &str| Reply::challenge("ApiKey", message);
        let Some(key) = self.presented(req) else {
            return Err(challenge("an API key is required"));
        };
        let Some(consumer) = self.consumers.by_key(key) else {
            return Err(challenge("the API key is not valid"));
        };
        consumer.admit(&self.allow, cx)
    }

    fn on_upstream_request(&self, req: &mut RequestHeader, _cx: &mut Ctx<'_>) {
        if self.hide {
            req.remove_header(&self.header);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;
    use crate::{Chain, Plugin};
    use std::sync::Arc;

    const CONSUMERS: &str = "[[consumers]]\nname = \"alice\"\ntenant = \"t1\"\nkeys = [\"k-alice-0001\"]\n\n[[consumers]]\nname = \"bob\"\nkeys = [\"k-bob-000001\"]\n";

    fn plugin(extra: &str) -> Arc<dyn Plugin> {
        let cx = testing::context(CONSUMERS);
        testing::try_plugin(&format!("type = \"key-auth\"\n{extra}"), &cx).unwrap()
    }

    #[tokio::test]
    async fn a_missing_key_is_401_with_an_apikey_challenge() {
        let req = testing::request("GET", "/", &[]);
        let (result, state) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        let reply = result.unwrap_err();
        assert_eq!(reply.status, 401);
        assert_eq!(testing::header(&reply, "www-authenticate"), Some("ApiKey"));
        assert_eq!(state.caller.consumer, None);
    }

    #[tokio::test]
    async fn a_wrong_key_is_401() {
        for key in ["k-alice-0002", "k-alice-000", "k-alice-00011", ""] {
            let req = testing::request("GET", "/", &[("x-api-key", key)]);
            let (result, state) = testing::run(&plugin(""), &req, "192.0.2.1").await;
            assert_eq!(result.unwrap_err().status, 401, "{key:?}");
            assert_eq!(state.caller.consumer, None);
        }
    }

    #[tokio::test]
    async fn the_right_key_names_the_consumer_and_tenant() {
        let req = testing::request("GET", "/", &[("x-api-key", "k-alice-0001")]);
        let (result, state) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        assert_eq!(state.caller.tenant.as_deref(), Some("t1"));
        let req = testing::request("GET", "/", &[("x-api-key", "k-bob-000001")]);
        let (result, state) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("bob"));
        assert_eq!(state.caller.tenant, None);
    }

    #[tokio::test]
    async fn a_consumer_off_the_allow_list_is_403() {
        let p = plugin("allow = [\"bob\"]");
        let req = testing::request("GET", "/", &[("x-api-key", "k-alice-0001")]);
        let (result, state) = testing::run(&p, &req, "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 403);
        assert_eq!(state.caller.consumer, None);
        let req = testing::request("GET", "/", &[("x-api-key", "k-bob-000001")]);
        assert!(testing::run(&p, &req, "192.0.2.1").await.0.is_ok());
    }

    #[tokio::test]
    async fn a_custom_header_is_where_the_key_is_looked_for() {
        let p = plugin("header = \"x-token\"");
        let req = testing::request("GET", "/", &[("x-token", "k-alice-0001")]);
        assert!(testing::run(&p, &req, "192.0.2.1").await.0.is_ok());
        let req = testing::request("GET", "/", &[("x-api-key", "k-alice-0001")]);
        assert_eq!(
            testing::run(&p, &req, "192.0.2.1")
                .await
                .0
                .unwrap_err()
                .status,
            401
        );
    }

    #[tokio::test]
    async fn the_key_may_come_in_the_query_only_when_configured() {
        let req = testing::request("GET", "/items?page=2&api_key=k-alice-0001", &[]);
        let (result, state) = testing::run(&plugin("query = \"api_key\""), &req, "192.0.2.1").await;
        result.unwrap();
        assert_eq!(state.caller.consumer.as_deref(), Some("alice"));
        let (result, _) = testing::run(&plugin(""), &req, "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 401);
        let other = testing::request("GET", "/items?key=k-alice-0001", &[]);
        let (result, _) = testing::run(&plugin("query = \"api_key\""), &other, "192.0.2.1").await;
        assert_eq!(result.unwrap_err().status, 401);
    }

    #[tokio::test]
    async fn the_key_header_is_removed_before_the_upstream_unless_told_otherwise() {
        for (extra, kept) in [("", false), ("hide_credentials = false", true)] {
            let chain = Chain::new(vec![plugin(extra)]);
            let mut req = testing::request("GET", "/", &[("x-api-key", "k-alice-0001")]);
            let mut state = chain.start("r".into(), "192.0.2.1".into());
            chain.request(&req, &mut state).await.unwrap();
            chain.upstream_request(&mut req, &mut state);
            assert_eq!(req.headers.contains_key("x-api-key"), kept, "{extra:?}");
        }
    }

    #[test]
    fn a_bad_header_name_is_refused() {
        let error = testing::refusal("type = \"key-auth\"\nheader = \"x api key\"");
        assert!(error.starts_with("plugin \"p\""), "{error}");
        assert!(error.contains("bad header name"), "{error}");
    }
}
