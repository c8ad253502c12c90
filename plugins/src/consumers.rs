//! Consumers (callers) and their tenant, defined once under `[[consumers]]` and used by the
//! authentication plugins, the limits (`key = "consumer"` / `"tenant"`) and the access log.

use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    pub tenant: Option<String>,
    /// API keys for key-auth: literal, `env:VAR` or `file:PATH` (the file's trimmed text).
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug)]
pub struct Consumer {
    pub name: String,
    pub tenant: Option<String>,
}

/// The compiled consumers of one snapshot.
#[derive(Debug, Default)]
pub struct Consumers {
    keys: Vec<(Vec<u8>, Arc<Consumer>)>,
}

/// Resolves a secret reference: `env:VAR`, `file:PATH`, or the literal itself.
pub fn secret(reference: &str) -> Result<String, String> {
    if let Some(var) = reference.strip_prefix("env:") {
        std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
    } else if let Some(path) = reference.strip_prefix("file:") {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("cannot read secret file {path}: {e}"))
    } else {
        Ok(reference.to_string())
    }
}

impl Consumers {
    pub fn build(configs: &[ConsumerConfig]) -> Result<Consumers, String> {
        let mut keys: Vec<(Vec<u8>, Arc<Consumer>)> = Vec::new();
        let mut names = std::collections::HashSet::new();
        for c in configs {
            if c.name.is_empty() || !names.insert(c.name.as_str()) {
                return Err(format!("consumer name {:?} is empty or used twice", c.name));
            }
            let consumer = Arc::new(Consumer {
                name: c.name.clone(),
                tenant: c.tenant.clone(),
            });
            for k in &c.keys {
                let key = secret(k).map_err(|e| format!("consumer {:?}: {e}", c.name))?;
                if key.len() < 8 {
                    return Err(format!(
                        "consumer {:?}: API keys must have at least 8 characters",
                        c.name
                    ));
                }
                if keys.iter().any(|(existing, _)| existing == key.as_bytes()) {
                    return Err(format!("consumer {:?}: an API key is used twice", c.name));
                }
                keys.push((key.into_bytes(), consumer.clone()));
            }
        }
        Ok(Consumers { keys })
    }

    /// The consumer owning `presented`. Every key is compared in constant time and all are
    /// compared, so timing tells nothing about which key, or how much of one, matched.
    pub fn by_key(&self, presented: &[u8]) -> Option<Arc<Consumer>> {
        let mut found = None;
        for (key, consumer) in &self.keys {
            if constant_time_eq(key, presented) {
                found = Some(consumer.clone());
            }
        }
        found
    }
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
