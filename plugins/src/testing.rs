//! Test helpers for plugin units: build a plugin from a TOML snippet (its `[plugins.NAME]`
//! table body), make a request header, and run the request phase on it.

use crate::consumers::{ConsumerConfig, Consumers};
use crate::{build, BuildContext, Chain, Plugin, Reply, RequestState, Stores};
use pingora_http::RequestHeader;
use std::sync::Arc;

/// A build context with fresh stores and the consumers of `consumers_toml` (the body of a
/// TOML document with `[[consumers]]` tables; "" for none).
pub fn context(consumers_toml: &str) -> BuildContext {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        consumers: Vec<ConsumerConfig>,
    }
    let doc: Doc = toml::from_str(consumers_toml).expect("consumers TOML");
    BuildContext {
        stores: Arc::new(Stores::default()),
        consumers: Arc::new(Consumers::build(&doc.consumers).expect("consumers build")),
    }
}

/// Builds plugin "p" from its table, e.g. `type = "request-size"\nmax_bytes = 10`.
pub fn plugin(table_toml: &str) -> Arc<dyn Plugin> {
    try_plugin(table_toml, &context("")).expect("plugin builds")
}

/// The build's result, for tests of refused settings.
pub fn try_plugin(table_toml: &str, cx: &BuildContext) -> Result<Arc<dyn Plugin>, String> {
    let table: toml::Table = toml::from_str(table_toml).expect("plugin TOML");
    build("p", &table, cx)
}

pub fn chain(tables: &[&str]) -> Chain {
    Chain::new(tables.iter().map(|t| plugin(t)).collect())
}

/// A request header with `headers` added in order.
pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> RequestHeader {
    let mut req = RequestHeader::build(method, uri.as_bytes(), None).expect("request");
    for (name, value) in headers {
        req.append_header(name.to_string(), *value).expect("header");
    }
    req
}

/// Runs the request phase of `plugin` alone for a client at `client_ip`; the state shows
/// what it decided about the caller.
pub async fn run(
    plugin: &Arc<dyn Plugin>,
    req: &RequestHeader,
    client_ip: &str,
) -> (Result<(), Reply>, RequestState) {
    let chain = Chain::new(vec![plugin.clone()]);
    let mut state = chain.start("r".into(), client_ip.into());
    let result = chain.request(req, &mut state).await;
    (result, state)
}

/// The error building plugin "p" from `table_toml` gives; panics if it builds.
pub fn refusal(table_toml: &str) -> String {
    match try_plugin(table_toml, &context("")) {
        Ok(_) => panic!("plugin should be refused: {table_toml}"),
        Err(e) => e,
    }
}

/// The first value of header `name` (lowercase) of a reply, as text.
pub fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
}

/// A reply's JSON body.
pub fn body(reply: &Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).expect("JSON body")
}
