//! Every change is checked by the gateway's own snapshot build — the same parser, the same
//! semantic checks, the same plugin builds — before it is saved. One config model, no second
//! parser. Positioned errors are turned into form fields where they point into the item an
//! operator is editing.

use crate::config::StoreConfig;
use crate::document::{field_lines, Kind};
use crate::error::FieldError;
use std::sync::Arc;
use tidegate::config::{ConfigError, Overlay, Source};

pub struct Validator {
    /// For a shared config in Nacos: the gateways' own sections are not in the text.
    overlay: Option<Arc<Overlay>>,
}

impl Validator {
    pub fn new(store: &StoreConfig) -> Validator {
        let overlay = match store {
            StoreConfig::File { .. } => None,
            StoreConfig::Nacos {
                nacos,
                data_id,
                group,
                ..
            } => Some(Arc::new(Overlay {
                server: Default::default(),
                admin: Default::default(),
                access_log: Default::default(),
                nacos: Some(toml::Spanned::new(0..0, (**nacos).clone())),
                config: toml::Spanned::new(
                    0..0,
                    tidegate::config::ConfigSourceConfig {
                        source: tidegate::config::ConfigSourceKind::Nacos,
                        data_id: data_id.clone(),
                        group: group.clone(),
                    },
                ),
            })),
        };
        Validator { overlay }
    }

    /// Builds a snapshot of `text` as a gateway would, and throws it away.
    pub fn check(&self, text: &str) -> Result<(), Vec<ConfigError>> {
        let mut source = Source::new("console", text);
        if let Some(overlay) = &self.overlay {
            source = source.with_overlay(overlay.clone());
        }
        tidegate::snapshot::Snapshot::check(source)
            .map(|_| ())
            .map_err(|e| e.errors)
    }
}

/// Positioned errors, each with the form field it falls on when it falls inside `item`
/// (a kind and name; `None` kind for a `[plugins.NAME]` table).
pub fn field_errors(
    errors: Vec<ConfigError>,
    text: &str,
    item: Option<(Option<Kind>, &str)>,
) -> Vec<FieldError> {
    let lines = item
        .map(|(kind, name)| field_lines(text, kind, name))
        .unwrap_or_default();
    let last_line = lines.last().map(|(l, _)| *l);
    errors
        .into_iter()
        .map(|e| {
            // The key on or above the error's line, within the item.
            let field = (e.line > 0)
                .then(|| {
                    lines
                        .iter()
                        .rev()
                        .find(|(line, _)| *line <= e.line)
                        .filter(|_| last_line.is_some_and(|last| e.line <= last + 1))
                        .map(|(_, key)| key.clone())
                })
                .flatten();
            FieldError {
                line: e.line,
                column: e.column,
                message: e.message,
                field,
            }
        })
        .collect()
}
