//! `type = "request-block"`: refuses requests whose path, User-Agent or chosen headers match
//! configured patterns (a known bad crawler, an internal path that must never be public).

use crate::{order, parse_config, Ctx, Plugin, Reply};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Regexes on the request path.
    #[serde(default)]
    paths: Vec<String>,
    /// Regexes on the User-Agent (a request without one matches `""`).
    #[serde(default)]
    user_agents: Vec<String>,
    /// Header name → regex on its value (a missing header never matches).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_status")]
    status: u16,
    #[serde(default = "default_message")]
    message: String,
}

fn default_status() -> u16 {
    403
}
fn default_message() -> String {
    "this request is blocked".into()
}

pub struct RequestBlock {
    name: String,
    paths: RegexSet,
    user_agents: RegexSet,
    headers: Vec<(http::HeaderName, Regex)>,
    status: u16,
    message: String,
}

impl RequestBlock {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let err = |e: regex::Error| format!("plugin {name:?}: {e}");
        if !(400..=599).contains(&config.status) {
            return Err(format!("plugin {name:?}: status must be 4xx or 5xx"));
        }
        let mut headers = Vec::new();
        for (header, pattern) in &config.headers {
            let header = http::HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("plugin {name:?}: bad header name {header:?}"))?;
            headers.push((header, Regex::new(pattern).map_err(err)?));
        }
        if config.paths.is_empty() && config.user_agents.is_empty() && headers.is_empty() {
            return Err(format!(
                "plugin {name:?}: give paths, user_agents or headers to block"
            ));
        }
        Ok(Arc::new(RequestBlock {
            name: name.into(),
            paths: RegexSet::new(&config.paths).map_err(err)?,
            user_agents: RegexSet::new(&config.user_agents).map_err(err)?,
            headers,
            status: config.status,
            message: config.message,
        }))
    }
}

#[async_trait]
impl Plugin for RequestBlock {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        // With the IP rules: the cheapest refusals come first.
        order::IP_RESTRICTION + 10
    }

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[self.status]);
    }

    async fn on_request(&self, req: &RequestHeader, _cx: &mut Ctx<'_>) -> Result<(), Reply> {
        let ua = req
            .headers
            .get(http::header::USER_AGENT)
            .map_or(&b""[..], |v| v.as_bytes());
        let blocked = self.paths.is_match(req.uri.path())
            || (!self.user_agents.is_empty()
                && self.user_agents.is_match(&String::from_utf8_lossy(ua)))
            || self.headers.iter().any(|(name, pattern)| {
                req.headers
                    .get_all(name)
                    .iter()
                    .any(|v| pattern.is_match(&String::from_utf8_lossy(v.as_bytes())))
            });
        if blocked {
            let error = http::StatusCode::from_u16(self.status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Blocked");
            return Err(Reply::json(self.status, error, &self.message));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;

    async fn refused(table: &str, uri: &str, headers: &[(&str, &str)]) -> Option<crate::Reply> {
        let req = testing::request("GET", uri, headers);
        let (result, _) = testing::run(&testing::plugin(table), &req, "192.0.2.1").await;
        result.err()
    }

    #[tokio::test]
    async fn a_matching_path_is_refused_with_the_configured_status_and_message() {
        let table = "type = \"request-block\"\npaths = [\"^/internal/\"]\nstatus = 404\nmessage = \"no such page\"";
        let reply = refused(table, "/internal/metrics", &[]).await.unwrap();
        assert_eq!(reply.status, 404);
        assert_eq!(testing::body(&reply)["error"], "Not Found");
        assert_eq!(testing::body(&reply)["message"], "no such page");
        assert!(refused(table, "/public/internal/", &[]).await.is_none());
    }

    #[tokio::test]
    async fn a_matching_user_agent_is_refused_with_403_by_default() {
        let table = "type = \"request-block\"\nuser_agents = [\"(?i)badbot\"]";
        let reply = refused(table, "/", &[("user-agent", "BadBot/2.1")])
            .await
            .unwrap();
        assert_eq!(reply.status, 403);
        assert_eq!(testing::body(&reply)["message"], "this request is blocked");
        assert!(refused(table, "/", &[("user-agent", "curl/8.5")])
            .await
            .is_none());
        assert!(refused(table, "/", &[]).await.is_none());
    }

    #[tokio::test]
    async fn a_missing_user_agent_matches_the_empty_string() {
        let table = "type = \"request-block\"\nuser_agents = [\"^$\"]";
        assert_eq!(refused(table, "/", &[]).await.unwrap().status, 403);
        assert!(refused(table, "/", &[("user-agent", "curl/8.5")])
            .await
            .is_none());
    }

    #[tokio::test]
    async fn a_matching_header_value_is_refused_and_a_missing_header_is_not() {
        let table =
            "type = \"request-block\"\nheaders = { \"x-debug\" = \"^(1|true)$\" }\nstatus = 400";
        let reply = refused(table, "/", &[("x-debug", "true")]).await.unwrap();
        assert_eq!(reply.status, 400);
        assert_eq!(testing::body(&reply)["error"], "Bad Request");
        // Any of several values of the header matches.
        let both = [("x-debug", "0"), ("x-debug", "1")];
        assert_eq!(refused(table, "/", &both).await.unwrap().status, 400);
        assert!(refused(table, "/", &[("x-debug", "0")]).await.is_none());
        assert!(refused(table, "/", &[]).await.is_none());
    }

    #[test]
    fn bad_settings_are_refused_naming_the_plugin() {
        for (table, says) in [
            ("paths = [\"(unclosed\"]", "regex"),
            ("headers = { \"x-a\" = \"[\" }", "regex"),
            ("headers = { \"bad header\" = \"x\" }", "bad header name"),
            ("paths = [\"^/x\"]\nstatus = 200", "4xx or 5xx"),
            ("paths = [\"^/x\"]\nstatus = 600", "4xx or 5xx"),
            ("status = 403", "give paths"),
        ] {
            let error = testing::refusal(&format!("type = \"request-block\"\n{table}"));
            assert!(error.starts_with("plugin \"p\""), "{table}: {error}");
            assert!(error.to_lowercase().contains(says), "{table}: {error}");
        }
    }
}
