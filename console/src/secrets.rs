//! Secrets are never shown in full after saving: API keys show their first four characters,
//! hashes, passwords and tokens show a mask. A text edited in the advanced view comes back
//! with the masks; they are put back to the stored values before saving (matched by the
//! item's name, so reordering consumers keeps their secrets).

use toml_edit::{DocumentMut, Item, Value};

pub const MASK: &str = "••••";

/// Keys whose values are secret.
const SECRET_KEYS: [&str; 5] = ["password_hash", "secret", "password", "token", "keys"];

pub fn mask_key(key: &str) -> String {
    let shown: String = key.chars().take(4).collect();
    format!("{shown}{MASK}")
}

fn mask_value(key: &str, value: &mut Value) {
    match value {
        Value::String(_) if key == "keys" => {}
        Value::String(s) => {
            // `env:` and `file:` references are not secrets themselves.
            let v = s.value();
            if !(v.starts_with("env:") || v.starts_with("file:")) {
                *value = Value::from(MASK);
            }
        }
        Value::Array(items) if key == "keys" => {
            for item in items.iter_mut() {
                if let Some(s) = item.as_str() {
                    if !(s.starts_with("env:") || s.starts_with("file:")) {
                        let masked = mask_key(s);
                        *item = Value::from(masked);
                    }
                }
            }
        }
        Value::InlineTable(_) => mask_nested(value),
        _ => {}
    }
}

fn mask_nested(value: &mut Value) {
    match value {
        Value::InlineTable(t) => {
            for (k, v) in t.iter_mut() {
                let k = k.get().to_string();
                if SECRET_KEYS.contains(&k.as_str()) {
                    mask_value(&k, v);
                } else {
                    mask_nested(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_nested),
        _ => {}
    }
}

fn mask_table(table: &mut dyn toml_edit::TableLike) {
    for (key, item) in table.iter_mut() {
        let key = key.get().to_string();
        match item {
            Item::Value(v) if SECRET_KEYS.contains(&key.as_str()) => mask_value(&key, v),
            Item::Value(v) => mask_nested(v),
            Item::Table(t) => mask_table(t),
            Item::ArrayOfTables(a) => a.iter_mut().for_each(|t| mask_table(t)),
            Item::None => {}
        }
    }
}

/// The text with every secret masked.
pub fn mask(text: &str) -> String {
    match text.parse::<DocumentMut>() {
        Ok(mut doc) => {
            mask_table(doc.as_table_mut());
            doc.to_string()
        }
        Err(_) => String::new(),
    }
}

/// Puts stored secrets back where `edited` has masks. Paths are matched by table keys, and
/// array-of-table entries by their `name` (else position).
pub fn unmask(edited: &str, stored: &str) -> Result<String, String> {
    if !edited.contains(MASK) {
        return Ok(edited.to_string());
    }
    let mut doc: DocumentMut = edited.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    let stored: DocumentMut = stored.parse().map_err(|e| format!("stored config: {e}"))?;
    restore_table(doc.as_table_mut(), Some(stored.as_table()));
    let text = doc.to_string();
    if text.contains(MASK) {
        return Err(
            "a masked secret has no stored value to keep; type the new secret instead".into(),
        );
    }
    Ok(text)
}

fn restore_table(edited: &mut dyn toml_edit::TableLike, stored: Option<&dyn toml_edit::TableLike>) {
    for (key, item) in edited.iter_mut() {
        let key = key.get().to_string();
        let old = stored.and_then(|s| s.get(&key));
        match item {
            Item::Value(v) => restore_value(v, old.and_then(|o| o.as_value())),
            Item::Table(t) => restore_table(t, old.and_then(|o| o.as_table_like())),
            Item::ArrayOfTables(a) => {
                let old_tables = old.and_then(|o| o.as_array_of_tables());
                for (i, t) in a.iter_mut().enumerate() {
                    let name = t.get("name").and_then(|n| n.as_str()).map(str::to_string);
                    let partner = old_tables.and_then(|o| match &name {
                        Some(n) => o
                            .iter()
                            .find(|x| x.get("name").and_then(|v| v.as_str()) == Some(n)),
                        None => o.get(i),
                    });
                    restore_table(t, partner.map(|p| p as &dyn toml_edit::TableLike));
                }
            }
            Item::None => {}
        }
    }
}

fn restore_value(value: &mut Value, old: Option<&Value>) {
    match value {
        Value::String(s) if s.value() == MASK => {
            if let Some(old) = old {
                *value = old.clone();
            }
        }
        Value::Array(items) => {
            let old_items: Vec<String> = old
                .and_then(|o| o.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for item in items.iter_mut() {
                if let Some(s) = item.as_str() {
                    if let Some(prefix) = s.strip_suffix(MASK) {
                        if let Some(found) = old_items.iter().find(|o| o.starts_with(prefix)) {
                            *item = Value::from(found.as_str());
                        }
                    }
                }
            }
        }
        Value::InlineTable(t) => {
            let old_table = old.and_then(|o| o.as_inline_table());
            for (k, v) in t.iter_mut() {
                restore_value(v, old_table.and_then(|o| o.get(k.get())));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_round_trip_to_the_stored_secrets() {
        let stored = "[admin]\ntoken = \"adm-secret\"\n[[consumers]]\nname = \"a\"\nkeys = [\"k-alice-1\", \"env:KEY\"]\nhmac = { key_id = \"a\", secret = \"s3cr3t-s3cr3t-s3cr3t\" }\n[[consumers]]\nname = \"b\"\nbasic = { password_hash = \"$argon2id$x\" }\n";
        let masked = mask(stored);
        assert!(!masked.contains("adm-secret") && !masked.contains("k-alice-1"));
        assert!(!masked.contains("s3cr3t") && !masked.contains("argon2id"));
        assert!(masked.contains("\"k-al••••\"") && masked.contains("env:KEY"));
        // The operator reorders the consumers and changes a tenant: secrets come back.
        let edited = masked.replace("name = \"a\"", "name = \"a\"\ntenant = \"t\"");
        let restored = unmask(&edited, stored).unwrap();
        assert!(restored.contains("adm-secret") && restored.contains("k-alice-1"));
        assert!(restored.contains("s3cr3t-s3cr3t-s3cr3t") && restored.contains("$argon2id$x"));
        assert!(restored.contains("tenant = \"t\""));
        // A mask for a new item has nothing to restore from.
        assert!(unmask(
            "[[consumers]]\nname = \"c\"\nkeys = [\"k-zz••••\"]\n",
            stored
        )
        .is_err());
    }
}
