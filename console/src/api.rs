//! The console's JSON API (see console/API.md). Every change goes the same way: read the
//! stored text, apply the edit to the TOML document, validate with the gateway's own code,
//! write the store, record a version and an audit line. Reads mask secrets.

use crate::auth::{Auth, Session};
use crate::document::{self as doc, Kind};
use crate::error::ApiError;
use crate::fleet::Fleet;
use crate::history::History;
use crate::secrets;
use crate::store::Store;
use crate::validate::{field_errors, Validator};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

pub struct App {
    pub auth: Auth,
    pub store: Store,
    pub history: History,
    pub validator: Validator,
    pub fleet: Arc<Fleet>,
    /// Hash of the config as last saved (gateways with another hash are stale).
    pub current_hash: Arc<Mutex<String>>,
    /// One change at a time, so versions follow each other.
    pub write_lock: tokio::sync::Mutex<()>,
}

type AppState = State<Arc<App>>;
type ApiResult<T> = Result<T, ApiError>;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/config", get(get_config).put(put_config))
        .route("/api/validate", post(validate))
        .route("/api/history", get(history))
        .route("/api/history/{version}", get(history_version))
        .route("/api/history/{version}/restore", post(restore))
        .route("/api/audit", get(audit))
        .route("/api/routes", get(routes))
        .route("/api/routes/{name}", put(put_route).delete(delete_route))
        .route("/api/routes/{name}/split", put(put_split))
        .route("/api/services", get(services))
        .route(
            "/api/services/{name}",
            put(put_service).delete(delete_service),
        )
        .route("/api/consumers", get(consumers))
        .route(
            "/api/consumers/{name}",
            put(put_consumer).delete(delete_consumer),
        )
        .route("/api/limits", get(limits))
        .route("/api/limits/{plugin}", put(put_limits))
        .route("/api/plugins", get(plugins))
        .route("/api/plugins/{name}", put(put_plugin).delete(delete_plugin))
        .route("/api/fleet", get(fleet))
        .fallback(crate::assets::serve)
        .with_state(app)
}

// ---- sessions ----

#[derive(Deserialize)]
struct Login {
    user: String,
    password: String,
}

async fn login(
    State(app): AppState,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(body): Json<Login>,
) -> ApiResult<Response> {
    match app.auth.login(&body.user, &body.password, peer.ip()).await {
        Ok((token, session)) => {
            app.history
                .audit(&session.user, "login", &peer.ip().to_string(), true);
            let mut resp = Json(&session).into_response();
            resp.headers_mut().insert(
                http::header::SET_COOKIE,
                app.auth.set_cookie(&token).parse().expect("a valid header"),
            );
            Ok(resp)
        }
        Err(e) => {
            app.history
                .audit(&body.user, "login failed", &peer.ip().to_string(), false);
            Err(e)
        }
    }
}

async fn logout(State(app): AppState, headers: HeaderMap) -> ApiResult<Response> {
    let session = app.auth.session(&headers)?;
    app.auth.logout(&headers);
    app.history.audit(&session.user, "logout", "", true);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        http::header::SET_COOKIE,
        app.auth.clear_cookie().parse().expect("a valid header"),
    );
    Ok(resp)
}

async fn me(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Session>> {
    Ok(Json(app.auth.session(&headers)?))
}

/// A changing request's session; a refusal is written to the audit log.
fn operator(app: &App, headers: &HeaderMap, action: &str) -> ApiResult<Session> {
    app.auth.operator(headers).inspect_err(|e| {
        if let (ApiError::Forbidden(why), Ok(s)) = (e, app.auth.session(headers)) {
            app.history
                .audit(&s.user, action, &format!("refused: {why}"), false);
        }
    })
}

// ---- the change pipeline ----

async fn stored(app: &App) -> ApiResult<String> {
    app.store.read().await.map_err(ApiError::Unavailable)
}

/// Validates and saves `text`; returns the new version.
async fn commit(
    app: &App,
    session: &Session,
    text: String,
    message: &str,
    item: Option<(Option<Kind>, &str)>,
) -> ApiResult<Json<Value>> {
    if let Err(errors) = app.validator.check(&text) {
        let errors = field_errors(errors, &text, item);
        app.history.audit(
            &session.user,
            "change refused",
            &format!(
                "{message}: {}",
                errors.first().map_or("", |e| e.message.as_str())
            ),
            false,
        );
        return Err(ApiError::Invalid(errors));
    }
    app.store
        .write(&text)
        .await
        .map_err(ApiError::Unavailable)?;
    let meta = app
        .history
        .record(&text, &session.user, message)
        .map_err(ApiError::Unavailable)?;
    *app.current_hash.lock() = meta.hash.clone();
    app.history.audit(
        &session.user,
        "change saved",
        &format!("version {}: {message}", meta.version),
        true,
    );
    Ok(Json(json!({"version": meta.version, "hash": meta.hash})))
}

/// Runs one edit of the stored document under the write lock.
async fn change(
    app: &App,
    session: &Session,
    message: String,
    item: Option<(Option<Kind>, &str)>,
    edit: impl FnOnce(&mut toml_edit::DocumentMut) -> ApiResult<()>,
) -> ApiResult<Json<Value>> {
    let _one = app.write_lock.lock().await;
    let text = stored(app).await?;
    sync_outside_changes(app, &text);
    let mut document = doc::parse(&text).map_err(ApiError::Unavailable)?;
    edit(&mut document)?;
    commit(app, session, document.to_string(), &message, item).await
}

/// A store changed by someone else (an editor, another tool) gets a version of its own, so
/// history stays complete and a restore can go back past it.
fn sync_outside_changes(app: &App, text: &str) {
    let hash = tidegate::snapshot::content_hash(text);
    if app.history.latest().is_none_or(|m| m.hash != hash) {
        if let Ok(meta) =
            app.history
                .record(text, "(outside the console)", "changed outside the console")
        {
            *app.current_hash.lock() = meta.hash;
        }
    }
}

fn object(value: Value) -> ApiResult<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::BadRequest("a JSON object is expected".into())),
    }
}

// ---- config, validation, history ----

async fn get_config(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    sync_outside_changes(&app, &text);
    let version = app.history.latest().map(|m| m.version);
    Ok(Json(json!({
        "text": secrets::mask(&text),
        "version": version,
        "hash": tidegate::snapshot::content_hash(&text),
        "store": app.store.describe(),
    })))
}

#[derive(Deserialize)]
struct TextBody {
    text: String,
    #[serde(default)]
    message: String,
}

async fn validate(
    State(app): AppState,
    headers: HeaderMap,
    Json(body): Json<TextBody>,
) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = secrets::unmask(&body.text, &stored(&app).await?).map_err(ApiError::BadRequest)?;
    match app.validator.check(&text) {
        Ok(()) => Ok(Json(json!({"valid": true}))),
        Err(errors) => Err(ApiError::Invalid(field_errors(errors, &text, None))),
    }
}

async fn put_config(
    State(app): AppState,
    headers: HeaderMap,
    Json(body): Json<TextBody>,
) -> ApiResult<Json<Value>> {
    let session = operator(&app, &headers, "edit config")?;
    let _one = app.write_lock.lock().await;
    let current = stored(&app).await?;
    sync_outside_changes(&app, &current);
    let text = secrets::unmask(&body.text, &current).map_err(ApiError::BadRequest)?;
    let message = if body.message.is_empty() {
        "edited as TOML".to_string()
    } else {
        body.message
    };
    commit(&app, &session, text, &message, None).await
}

async fn history(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    Ok(Json(json!(app.history.list())))
}

async fn history_version(
    State(app): AppState,
    headers: HeaderMap,
    Path(version): Path<u64>,
) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let meta = app
        .history
        .get(version)
        .ok_or_else(|| ApiError::NotFound(format!("no version {version}")))?;
    let text = app.history.text(version).unwrap_or_default();
    let previous = (1..version)
        .rev()
        .find_map(|v| app.history.text(v))
        .unwrap_or_default();
    let (diff, _, _) = crate::history::diff(&secrets::mask(&previous), &secrets::mask(&text));
    let mut out = serde_json::to_value(meta).expect("serializable");
    out["text"] = json!(secrets::mask(&text));
    out["diff"] = json!(diff);
    Ok(Json(out))
}

async fn restore(
    State(app): AppState,
    headers: HeaderMap,
    Path(version): Path<u64>,
) -> ApiResult<Json<Value>> {
    let session = operator(&app, &headers, "restore")?;
    let text = app
        .history
        .text(version)
        .ok_or_else(|| ApiError::NotFound(format!("no version {version}")))?;
    let _one = app.write_lock.lock().await;
    sync_outside_changes(&app, &stored(&app).await?);
    commit(
        &app,
        &session,
        text,
        &format!("restored version {version}"),
        None,
    )
    .await
}

async fn audit(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    Ok(Json(json!(app.history.audit_entries(500))))
}

// ---- routes ----

async fn routes(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    let document = doc::parse(&text).map_err(ApiError::Unavailable)?;
    Ok(Json(json!(doc::list(&document, Kind::Route))))
}

/// Create, replace or rename an item of `kind` from a form's JSON.
async fn upsert_item(
    app: &App,
    headers: &HeaderMap,
    kind: Kind,
    name: String,
    body: Value,
) -> ApiResult<Json<Value>> {
    let session = operator(app, headers, &format!("save {}", kind.key()))?;
    let mut fields = object(body)?;
    let new_name = fields
        .get("name")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| name.clone());
    if new_name.trim().is_empty() {
        return Err(ApiError::Invalid(vec![crate::error::FieldError {
            line: 0,
            column: 0,
            message: "a name is required".into(),
            field: Some("name".into()),
        }]));
    }
    fields.insert("name".into(), json!(new_name));
    // Derived, read-only parts of a listing are not config.
    fields.remove("instances");
    let singular = kind.singular();
    let message = format!("{singular} {new_name} saved");
    let target = new_name.clone();
    change(
        app,
        &session,
        message,
        Some((Some(kind), &target)),
        |document| {
            if new_name != name {
                if doc::exists(document, kind, &new_name) {
                    return Err(ApiError::Conflict(format!(
                        "a {singular} named {new_name:?} exists already"
                    )));
                }
                // A rename keeps the item's other keys.
                if doc::exists(document, kind, &name) {
                    doc::upsert(document, kind, &name, &fields);
                    return Ok(());
                }
            }
            doc::upsert(document, kind, &new_name, &fields);
            Ok(())
        },
    )
    .await
}

async fn delete_item(
    app: &App,
    headers: &HeaderMap,
    kind: Kind,
    name: String,
) -> ApiResult<StatusCode> {
    let session = operator(app, headers, &format!("delete {}", kind.key()))?;
    let singular = kind.singular();
    let _saved = change(
        app,
        &session,
        format!("{singular} {name} deleted"),
        None,
        |document| {
            if doc::remove(document, kind, &name) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!("no {singular} named {name:?}")))
            }
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn put_route(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    upsert_item(&app, &headers, Kind::Route, name, body).await
}

async fn delete_route(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete_item(&app, &headers, Kind::Route, name).await
}

#[derive(Deserialize)]
struct SplitBody {
    split: Vec<Value>,
}

async fn put_split(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<SplitBody>,
) -> ApiResult<Json<Value>> {
    let session = operator(&app, &headers, "move traffic")?;
    let summary: Vec<String> = body
        .split
        .iter()
        .map(|s| format!("{} {}", s["labels"], s["weight"]))
        .collect();
    let message = format!("route {name} split: {}", summary.join(", "));
    let value = (!body.split.is_empty())
        .then(|| doc::to_value(&json!(body.split)))
        .flatten();
    let target = name.clone();
    change(
        &app,
        &session,
        message,
        Some((Some(Kind::Route), &target)),
        |document| {
            if doc::set_field(document, Kind::Route, &name, "split", value) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!("no route named {name:?}")))
            }
        },
    )
    .await
}

// ---- services ----

async fn services(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    let document = doc::parse(&text).map_err(ApiError::Unavailable)?;
    let views = app.fleet.views();
    let list: Vec<Value> = doc::list(&document, Kind::Service)
        .into_iter()
        .map(|mut service| {
            let name = service["name"].as_str().unwrap_or_default().to_string();
            let mut instances = Vec::new();
            for view in &views {
                for s in view.services.as_array().into_iter().flatten() {
                    if s["name"] == name.as_str() {
                        for e in s["endpoints"].as_array().into_iter().flatten() {
                            let mut e = e.clone();
                            e["gateway"] = json!(view.name);
                            instances.push(e);
                        }
                    }
                }
            }
            service["instances"] = json!(instances);
            service
        })
        .collect();
    Ok(Json(json!(list)))
}

async fn put_service(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    upsert_item(&app, &headers, Kind::Service, name, body).await
}

async fn delete_service(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete_item(&app, &headers, Kind::Service, name).await
}

// ---- consumers and limits ----

async fn consumers(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    let document = doc::parse(&text).map_err(ApiError::Unavailable)?;
    let list: Vec<Value> = doc::list(&document, Kind::Consumer)
        .into_iter()
        .map(|c| {
            let keys: Vec<String> = c["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .map(|k| {
                    if k.starts_with("env:") || k.starts_with("file:") {
                        k.to_string()
                    } else {
                        secrets::mask_key(k)
                    }
                })
                .collect();
            json!({
                "name": c["name"],
                "tenant": c["tenant"],
                "keys": keys,
                "basic": c.get("basic").is_some(),
                "hmac": c.get("hmac").is_some(),
            })
        })
        .collect();
    Ok(Json(json!(list)))
}

async fn put_consumer(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let mut fields = object(body)?;
    // Keys omitted or null: keep the stored ones (they are never sent back in full).
    if fields.get("keys").is_none_or(serde_json::Value::is_null) {
        fields.remove("keys");
    }
    for secret_field in ["basic", "hmac"] {
        if fields
            .get(secret_field)
            .is_some_and(serde_json::Value::is_boolean)
        {
            fields.remove(secret_field);
        }
    }
    upsert_item(&app, &headers, Kind::Consumer, name, Value::Object(fields)).await
}

async fn delete_consumer(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    delete_item(&app, &headers, Kind::Consumer, name).await
}

async fn limits(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    let document = doc::parse(&text).map_err(ApiError::Unavailable)?;
    let list: Vec<Value> = doc::plugins(&document)
        .into_iter()
        .filter(|(_, p)| p["type"] == "key-rate-limit")
        .map(|(name, p)| {
            json!({
                "plugin": name,
                "key": p["key"],
                "scope": p.get("scope").cloned().unwrap_or(json!("local")),
                "limits": p.get("limits").cloned().unwrap_or(json!([])),
                "overrides": p.get("overrides").cloned().unwrap_or(json!({})),
            })
        })
        .collect();
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
struct LimitsBody {
    limits: Value,
    #[serde(default)]
    overrides: Value,
}

async fn put_limits(
    State(app): AppState,
    headers: HeaderMap,
    Path(plugin): Path<String>,
    Json(body): Json<LimitsBody>,
) -> ApiResult<Json<Value>> {
    let session = operator(&app, &headers, "change limits")?;
    let message = format!(
        "limits of {plugin}: {} overrides {}",
        body.limits, body.overrides
    );
    let target = plugin.clone();
    change(&app, &session, message, Some((None, &target)), |document| {
        let table = doc::plugin_table(document, &plugin)
            .filter(|t| t.get("type").and_then(|v| v.as_str()) == Some("key-rate-limit"))
            .ok_or_else(|| {
                ApiError::NotFound(format!("no key-rate-limit plugin named {plugin:?}"))
            })?;
        match doc::to_value(&body.limits) {
            Some(v) => {
                table.insert("limits", toml_edit::Item::Value(v));
            }
            None => {
                table.remove("limits");
            }
        }
        match doc::to_value(&body.overrides)
            .filter(|v| v.as_inline_table().is_none_or(|t| !t.is_empty()))
        {
            Some(v) => {
                table.insert("overrides", toml_edit::Item::Value(v));
            }
            None => {
                table.remove("overrides");
            }
        }
        Ok(())
    })
    .await
}

// ---- plugins ----

async fn plugins(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let text = stored(&app).await?;
    let masked = doc::parse(&secrets::mask(&text)).map_err(ApiError::Unavailable)?;
    let routes = doc::list(&masked, Kind::Route);
    let list: Vec<Value> = doc::plugins(&masked)
        .into_iter()
        .map(|(name, mut config)| {
            let kind = config["type"].clone();
            if let Some(map) = config.as_object_mut() {
                map.remove("type");
            }
            let used_by: Vec<Value> = routes
                .iter()
                .filter(|r| {
                    r["plugins"]
                        .as_array()
                        .is_some_and(|p| p.iter().any(|x| x == name.as_str()))
                })
                .map(|r| r["name"].clone())
                .collect();
            json!({"name": name, "type": kind, "config": config, "routes": used_by})
        })
        .collect();
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
struct PluginBody {
    r#type: String,
    #[serde(default)]
    config: Map<String, Value>,
}

async fn put_plugin(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<PluginBody>,
) -> ApiResult<Json<Value>> {
    let session = operator(&app, &headers, "save plugin")?;
    let _one = app.write_lock.lock().await;
    let current = stored(&app).await?;
    sync_outside_changes(&app, &current);
    let mut document = doc::parse(&current).map_err(ApiError::Unavailable)?;
    doc::set_plugin(&mut document, &name, &body.r#type, &body.config);
    let text = secrets::unmask(&document.to_string(), &current).map_err(ApiError::BadRequest)?;
    commit(
        &app,
        &session,
        text,
        &format!("plugin {name} saved"),
        Some((None, &name)),
    )
    .await
}

async fn delete_plugin(
    State(app): AppState,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let session = operator(&app, &headers, "delete plugin")?;
    let _saved = change(
        &app,
        &session,
        format!("plugin {name} deleted"),
        None,
        |document| {
            let used = doc::list(document, Kind::Route).iter().any(|r| {
                r["plugins"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|x| x == name.as_str()))
            });
            if used {
                return Err(ApiError::Conflict(format!(
                    "plugin {name:?} is used by a route"
                )));
            }
            if doc::remove_plugin(document, &name) {
                Ok(())
            } else {
                Err(ApiError::NotFound(format!("no plugin named {name:?}")))
            }
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- fleet ----

async fn fleet(State(app): AppState, headers: HeaderMap) -> ApiResult<Json<Value>> {
    app.auth.session(&headers)?;
    let version = app.history.latest().map(|m| m.version);
    let hash = app.current_hash.lock().clone();
    Ok(Json(json!({
        "gateways": app.fleet.views(),
        "config": {"version": version, "hash": hash},
    })))
}
