//! Changes to the config text as an operator makes them through forms: one item (route,
//! service, consumer, plugin) replaced, added or removed in the TOML document with
//! `toml_edit`, so comments, order and formatting of everything else stay as they were.
//! The result is validated by the gateway's own code before it is saved (see `validate`).

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

/// The `[[routes]]`, `[[services]]` or `[[consumers]]` arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Route,
    Service,
    Consumer,
}

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::Route => "routes",
            Kind::Service => "services",
            Kind::Consumer => "consumers",
        }
    }

    /// One item's word, for messages.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Route => "route",
            Kind::Service => "service",
            Kind::Consumer => "consumer",
        }
    }
}

pub fn parse(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("the stored config is not valid TOML: {e}"))
}

/// JSON → TOML value (objects become inline tables). `null` has no TOML form: `None`.
pub fn to_value(json: &serde_json::Value) -> Option<Value> {
    Some(match json {
        serde_json::Value::Null => return None,
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64()?),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            let mut array = toml_edit::Array::new();
            for item in items.iter().filter_map(to_value) {
                array.push(item);
            }
            Value::Array(array)
        }
        serde_json::Value::Object(map) => {
            let mut table = toml_edit::InlineTable::new();
            for (k, v) in map {
                if let Some(v) = to_value(v) {
                    table.insert(k, v);
                }
            }
            Value::InlineTable(table)
        }
    })
}

/// TOML (any item) → JSON, through the `toml` crate's serde model.
pub fn to_json(item: &Item) -> serde_json::Value {
    let text = match item {
        Item::Table(t) => t.to_string(),
        Item::Value(v) => return value_json(v),
        _ => return serde_json::Value::Null,
    };
    toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn value_json(value: &Value) -> serde_json::Value {
    let text = format!("v = {value}");
    toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|mut t| t.remove("v"))
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or(serde_json::Value::Null)
}

fn array(doc: &mut DocumentMut, kind: Kind) -> &mut ArrayOfTables {
    if !doc.contains_key(kind.key()) {
        doc.insert(kind.key(), Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc[kind.key()]
        .as_array_of_tables_mut()
        .expect("an array of tables (checked by validation of the stored config)")
}

fn name_of(table: &Table) -> Option<&str> {
    table.get("name").and_then(|v| v.as_str())
}

/// The items of a kind, as JSON objects.
pub fn list(doc: &DocumentMut, kind: Kind) -> Vec<serde_json::Value> {
    doc.get(kind.key())
        .and_then(|i| i.as_array_of_tables())
        .map(|a| a.iter().map(|t| to_json(&Item::Table(t.clone()))).collect())
        .unwrap_or_default()
}

pub fn exists(doc: &DocumentMut, kind: Kind, name: &str) -> bool {
    doc.get(kind.key())
        .and_then(|i| i.as_array_of_tables())
        .is_some_and(|a| a.iter().any(|t| name_of(t) == Some(name)))
}

/// Creates or replaces the item named `name` with the fields of `fields`. Fields in `fields`
/// set (or, when `null` or empty, remove) keys; keys the form does not send stay as they were.
pub fn upsert(
    doc: &mut DocumentMut,
    kind: Kind,
    name: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) {
    let items = array(doc, kind);
    let index = items.iter().position(|t| name_of(t) == Some(name));
    let mut table = match index {
        Some(i) => items.get(i).expect("found").clone(),
        None => Table::new(),
    };
    // `name` first, in a new item.
    if index.is_none() {
        table.insert("name", Item::Value(Value::from(name)));
    }
    for (key, value) in fields {
        match to_value(value) {
            Some(v) if !is_empty_collection(&v) || key == "name" => {
                let decor = table
                    .get(key)
                    .and_then(|i| i.as_value())
                    .map(|v| v.decor().clone());
                let mut v = v;
                if let Some(decor) = decor {
                    *v.decor_mut() = decor;
                }
                table.insert(key, Item::Value(v));
            }
            _ => {
                table.remove(key);
            }
        }
    }
    match index {
        Some(i) => *items.get_mut(i).expect("found") = table,
        None => items.push(table),
    }
}

/// Empty arrays and tables are left out of the file (the config defaults them).
fn is_empty_collection(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::InlineTable(t) => t.is_empty(),
        _ => false,
    }
}

/// Removes the item; false when there is none.
pub fn remove(doc: &mut DocumentMut, kind: Kind, name: &str) -> bool {
    let items = array(doc, kind);
    let found = items.iter().position(|t| name_of(t) == Some(name));
    match found {
        Some(i) => {
            items.remove(i);
            true
        }
        None => false,
    }
}

/// Sets one key of an item (used for a route's `split`); `None` removes it.
pub fn set_field(
    doc: &mut DocumentMut,
    kind: Kind,
    name: &str,
    key: &str,
    value: Option<Value>,
) -> bool {
    let items = array(doc, kind);
    let Some(table) = items.iter_mut().find(|t| name_of(t) == Some(name)) else {
        return false;
    };
    match value {
        Some(v) => {
            table.insert(key, Item::Value(v));
        }
        None => {
            table.remove(key);
        }
    }
    true
}

/// `[plugins.NAME]` tables as (name, JSON).
pub fn plugins(doc: &DocumentMut) -> Vec<(String, serde_json::Value)> {
    doc.get("plugins")
        .and_then(|p| p.as_table())
        .map(|t| {
            t.iter()
                .map(|(name, item)| (name.to_string(), to_json(item)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn plugin_table<'a>(doc: &'a mut DocumentMut, name: &str) -> Option<&'a mut Table> {
    doc.get_mut("plugins")?
        .as_table_mut()?
        .get_mut(name)?
        .as_table_mut()
}

/// Replaces `[plugins.NAME]` with `config` (plus its `type`).
pub fn set_plugin(
    doc: &mut DocumentMut,
    name: &str,
    kind: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) {
    if !doc.contains_key("plugins") {
        let mut t = Table::new();
        t.set_implicit(true);
        doc.insert("plugins", Item::Table(t));
    }
    let plugins = doc["plugins"].as_table_mut().expect("a table");
    let mut table = Table::new();
    table.insert("type", Item::Value(Value::from(kind)));
    for (k, v) in config {
        if k == "type" {
            continue;
        }
        if let Some(v) = to_value(v) {
            table.insert(k, Item::Value(v));
        }
    }
    plugins.insert(name, Item::Table(table));
}

pub fn remove_plugin(doc: &mut DocumentMut, name: &str) -> bool {
    doc.get_mut("plugins")
        .and_then(|p| p.as_table_mut())
        .and_then(|t| t.remove(name))
        .is_some()
}

/// Line (1-based) ranges of each key of the named item in `text`, for turning a
/// positioned error into a form field.
pub fn field_lines(text: &str, kind: Option<Kind>, name: &str) -> Vec<(usize, String)> {
    let Ok(doc) = toml_edit::Document::parse(text) else {
        return Vec::new();
    };
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table = match kind {
        Some(kind) => doc
            .get(kind.key())
            .and_then(|i| i.as_array_of_tables())
            .and_then(|a| a.iter().find(|t| name_of(t) == Some(name))),
        None => doc
            .get("plugins")
            .and_then(|p| p.as_table())
            .and_then(|t| t.get(name))
            .and_then(|i| i.as_table()),
    };
    let Some(table) = table else {
        return Vec::new();
    };
    let mut out: Vec<(usize, String)> = table
        .iter()
        .filter_map(|(key, _)| {
            let (k, _) = table.get_key_value(key)?;
            Some((line_of(k.span()?.start), key.to_string()))
        })
        .collect();
    out.sort();
    out
}
