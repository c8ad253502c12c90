//! `type = "headers"`: sets, adds and removes headers of the request on its way upstream and
//! of the response on its way back — the Gateway API's RequestHeaderModifier and
//! ResponseHeaderModifier, and what nginx's `proxy_set_header` / `add_header` were used for.
//!
//! ```toml
//! [plugins.tag]
//! type = "headers"
//! request = { set = { "x-env" = "prod" }, add = { "x-trace" = "gw" }, remove = ["x-debug"] }
//! response = { set = { "cache-control" = "no-store" }, remove = ["server"] }
//! ```
//!
//! `set` replaces every value of the header, `add` appends one more, `remove` drops all of
//! them; within one side, remove runs first, then set, then add. Names and values are
//! checked when the config is built, so a bad one is refused with the plugin's name.

use crate::{order, parse_config, Ctx, Plugin};
use async_trait::async_trait;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideConfig {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    add: BTreeMap<String, String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    request: SideConfig,
    #[serde(default)]
    response: SideConfig,
}

/// One side's edits, parsed.
#[derive(Default)]
struct Edits {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl Edits {
    fn parse(side: &str, config: SideConfig) -> Result<Edits, String> {
        let name = |n: &str| {
            HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| format!("{side}: bad header name {n:?}"))
        };
        let pair = |(n, v): (String, String)| {
            let value =
                HeaderValue::from_str(&v).map_err(|_| format!("{side}: bad value for {n:?}"))?;
            Ok::<_, String>((name(&n)?, value))
        };
        Ok(Edits {
            set: config.set.into_iter().map(pair).collect::<Result<_, _>>()?,
            add: config.add.into_iter().map(pair).collect::<Result<_, _>>()?,
            remove: config
                .remove
                .iter()
                .map(|n| name(n))
                .collect::<Result<_, _>>()?,
        })
    }

    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

pub struct Headers {
    name: String,
    request: Edits,
    response: Edits,
}

impl Headers {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let wrap = |e: String| format!("plugin {name:?}: {e}");
        let request = Edits::parse("request", config.request).map_err(wrap)?;
        let response = Edits::parse("response", config.response).map_err(wrap)?;
        if request.is_empty() && response.is_empty() {
            return Err(format!("plugin {name:?}: no header to set, add or remove"));
        }
        Ok(Arc::new(Headers {
            name: name.into(),
            request,
            response,
        }))
    }
}

#[async_trait]
impl Plugin for Headers {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::REWRITE
    }

    fn on_upstream_request(&self, req: &mut RequestHeader, _cx: &mut Ctx<'_>) {
        // Through RequestHeader's own methods: it keeps the headers' original case too.
        for name in &self.request.remove {
            req.remove_header(name);
        }
        for (name, value) in &self.request.set {
            let _ = req.insert_header(name.clone(), value.clone());
        }
        for (name, value) in &self.request.add {
            let _ = req.append_header(name.clone(), value.clone());
        }
    }

    fn on_response(&self, resp: &mut ResponseHeader, _cx: &mut Ctx<'_>) {
        for name in &self.response.remove {
            resp.remove_header(name);
        }
        for (name, value) in &self.response.set {
            let _ = resp.insert_header(name.clone(), value.clone());
        }
        for (name, value) in &self.response.add {
            let _ = resp.append_header(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    const PLUGIN: &str = r#"type = "headers"
request = { set = { "x-env" = "prod" }, add = { "x-trace" = "gw" }, remove = ["x-debug"] }
response = { set = { "cache-control" = "no-store" }, add = { "vary" = "origin" }, remove = ["server"] }"#;

    #[test]
    fn the_request_and_the_response_are_edited_remove_then_set_then_add() {
        let plugin = testing::plugin(PLUGIN);
        let mut req = testing::request(
            "GET",
            "/x",
            &[
                ("x-env", "dev"),
                ("x-env", "test"),
                ("x-debug", "1"),
                ("x-trace", "client"),
            ],
        );
        let mut state = crate::RequestState::new("r".into(), "192.0.2.1".into(), 1);
        plugin.on_upstream_request(&mut req, &mut state.ctx(0));
        let values = |name: &str| -> Vec<&str> {
            req.headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect()
        };
        assert_eq!(values("x-env"), ["prod"]);
        assert!(values("x-debug").is_empty());
        assert_eq!(values("x-trace"), ["client", "gw"]);

        let mut resp = ResponseHeader::build(200, None).unwrap();
        resp.insert_header("server", "upstream/1.0").unwrap();
        resp.insert_header("vary", "accept").unwrap();
        plugin.on_response(&mut resp, &mut state.ctx(0));
        assert!(resp.headers.get("server").is_none());
        assert_eq!(resp.headers["cache-control"], "no-store");
        let vary: Vec<&str> = resp
            .headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(vary, ["accept", "origin"]);
    }

    #[test]
    fn bad_names_values_and_empty_edits_are_refused_with_the_plugin_s_name() {
        let cx = testing::context("");
        for (table, why) in [
            (
                "type = \"headers\"\nrequest = { set = { \"bad name\" = \"x\" } }",
                "bad header name",
            ),
            (
                "type = \"headers\"\nresponse = { add = { \"x\" = \"a\\nb\" } }",
                "bad value",
            ),
            ("type = \"headers\"", "no header to set"),
            (
                "type = \"headers\"\nrequest = { rename = {} }",
                "unknown field",
            ),
        ] {
            let err = testing::try_plugin(table, &cx).err().unwrap();
            assert!(err.contains(why) && err.contains("\"p\""), "{table}: {err}");
        }
    }
}
