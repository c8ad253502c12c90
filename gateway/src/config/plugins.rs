//! `[plugins.NAME]` and `global_plugins`: plugin instances by name, each a table with a
//! `type`. Their settings are checked when the plugin is built (the compile step); here only
//! what the text alone shows: a type is given, and every name a route or `global_plugins`
//! uses exists.

use super::RouteConfig;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// Plugin tables by instance name, in name order.
pub type PluginTables = BTreeMap<String, Spanned<toml::Table>>;

pub fn validate(plugins: &PluginTables, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
    for (name, table) in plugins {
        if !table.get_ref().get("type").is_some_and(toml::Value::is_str) {
            report(
                Some(table.span()),
                format!("plugin {name:?} needs a `type`"),
            );
        }
    }
}

/// Every plugin name in `global_plugins` and in a route's `plugins` names a `[plugins.NAME]`.
pub fn check_references(
    plugins: &PluginTables,
    global: &[Spanned<String>],
    routes: &[RouteConfig],
    report: &mut dyn FnMut(Option<Range<usize>>, String),
) {
    for name in global {
        if !plugins.contains_key(name.get_ref()) {
            report(
                Some(name.span()),
                format!("unknown plugin {:?} in global_plugins", name.get_ref()),
            );
        }
    }
    for route in routes {
        for name in &route.plugins {
            if !plugins.contains_key(name.get_ref()) {
                report(
                    Some(name.span()),
                    format!(
                        "route {:?} uses unknown plugin {:?}",
                        route.name.get_ref(),
                        name.get_ref()
                    ),
                );
            }
        }
    }
}
