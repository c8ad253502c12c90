//! `/api/quota/{plugin}/{key}`: a tenant's usage and limits, and runtime overrides.
//!
//! An override is written into the config text (`[plugins.NAME.overrides]`, comments and
//! layout kept), applied through the same pipeline as any change — so counters are kept and
//! the new limit holds from the next request — and persisted to the config file, so it
//! survives restarts.

use super::json;
use crate::config::Source;
use crate::gateway::{ChangeSource, Gateway};
use http::{Response, StatusCode};
use pingora_core::protocols::http::ServerSession;
use serde_json::json;
use tidegate_plugins::rate_limit::{as_rate_limit, OverrideConfig};

pub async fn handle(
    gateway: &Gateway,
    session: &mut ServerSession,
    method: &str,
    rest: &str,
) -> Response<Vec<u8>> {
    let Some((plugin, key)) = rest
        .split_once('/')
        .filter(|(p, k)| !p.is_empty() && !k.is_empty())
    else {
        return json(
            StatusCode::NOT_FOUND,
            json!({"error": "Not Found", "message": "use /api/quota/PLUGIN/KEY"}),
        );
    };
    let key = percent_decode(key);
    let snapshot = gateway.snapshot();
    let Some(limit) = snapshot
        .plugins
        .get(plugin)
        .and_then(|p| as_rate_limit(p.as_ref()))
    else {
        return json(
            StatusCode::NOT_FOUND,
            json!({"error": "Not Found", "message": format!("no key-rate-limit plugin named {plugin:?}")}),
        );
    };
    match method {
        "GET" => json(
            StatusCode::OK,
            serde_json::to_value(limit.usage(&key)).unwrap_or_default(),
        ),
        "PUT" | "DELETE" => {
            let change = if method == "PUT" {
                let body = match read_json(session).await {
                    Ok(b) => b,
                    Err(resp) => return resp,
                };
                match serde_json::from_value::<OverrideConfig>(body) {
                    Ok(o) => Some(o),
                    Err(e) => {
                        return json(
                            StatusCode::BAD_REQUEST,
                            json!({"error": "invalid override", "errors": [e.to_string()]}),
                        )
                    }
                }
            } else {
                None
            };
            let text = match edit_override(&snapshot.source.text, plugin, &key, change.as_ref()) {
                Ok(t) => t,
                Err(e) => {
                    return json(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "invalid override", "errors": [e]}),
                    )
                }
            };
            let source = Source::new(snapshot.source.origin.clone(), text.clone());
            drop(snapshot);
            match gateway.apply(source, ChangeSource::AdminApi) {
                Ok(_) => {
                    let persisted = crate::config_watch::persist(gateway, &text);
                    let snapshot = gateway.snapshot();
                    let usage = snapshot
                        .plugins
                        .get(plugin)
                        .and_then(|p| as_rate_limit(p.as_ref()))
                        .map(|l| serde_json::to_value(l.usage(&key)).unwrap_or_default());
                    json(
                        StatusCode::OK,
                        json!({"applied": true, "version": snapshot.version, "persisted": persisted, "usage": usage}),
                    )
                }
                Err(errors) => json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "invalid config", "errors": errors.errors.iter().map(std::string::ToString::to_string).collect::<Vec<_>>()}),
                ),
            }
        }
        _ => json(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "Method Not Allowed"}),
        ),
    }
}

/// Sets (or with `None` removes) `plugins.PLUGIN.overrides.KEY` in the TOML text.
fn edit_override(
    text: &str,
    plugin: &str,
    key: &str,
    change: Option<&OverrideConfig>,
) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut =
        text.parse().map_err(|e| format!("current config: {e}"))?;
    let overrides = doc["plugins"][plugin]
        .as_table_like_mut()
        .ok_or_else(|| format!("plugin {plugin:?} is not a table"))?
        .entry("overrides")
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
    let overrides = overrides
        .as_table_like_mut()
        .ok_or("overrides is not a table")?;
    match change {
        None => {
            overrides.remove(key);
        }
        Some(o) => {
            let mut inline = toml_edit::InlineTable::new();
            if let Some(limits) = &o.limits {
                let mut array = toml_edit::Array::new();
                for w in limits {
                    let mut t = toml_edit::InlineTable::new();
                    t.insert("per", w.per.as_str().into());
                    t.insert("count", (w.count as i64).into());
                    array.push(t);
                }
                inline.insert("limits", toml_edit::Value::Array(array));
            }
            if let Some(c) = o.concurrency {
                inline.insert("concurrency", (c as i64).into());
            }
            overrides.insert(
                key,
                toml_edit::Item::Value(toml_edit::Value::InlineTable(inline)),
            );
        }
    }
    Ok(doc.to_string())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read_json(session: &mut ServerSession) -> Result<serde_json::Value, Response<Vec<u8>>> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = session.read_request_body().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            return Err(json(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"error": "body too large"}),
            ));
        }
    }
    serde_json::from_slice(&body).map_err(|e| {
        json(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid JSON", "message": e.to_string()}),
        )
    })
}
