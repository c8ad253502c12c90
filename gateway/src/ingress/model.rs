//! The Tidegate config an import produces, before it is written: services bound to
//! Kubernetes Services, routes, plugin instances and certificates — and the TOML text of
//! it (through `toml_edit`, so every string is quoted as TOML wants).

use crate::config::PortRef;
use std::collections::BTreeMap;
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// One Kubernetes Service port a service is bound to.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub namespace: String,
    pub service: String,
    /// None: the Service's one port.
    pub port: Option<PortRef>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceOut {
    /// One, or several weighed by a route's split on `kubernetes.io/service-name`.
    pub bindings: Vec<Binding>,
    /// `https`, `grpc`, `grpcs` (None: http).
    pub protocol: Option<&'static str>,
    /// Backends over TLS are not verified, as ingress-nginx does not verify them by default.
    pub tls_verify: bool,
    pub read_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    /// `lb = "hash"` with this key.
    pub hash_key: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RouteOut {
    pub name: String,
    /// The object it came from, written as a comment above it.
    pub from: String,
    pub hosts: Vec<String>,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub cookies: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub methods: Vec<String>,
    pub service: Option<String>,
    /// `(Kubernetes Service name, weight)`: a split of a service bound to several.
    pub split: Vec<(String, u32)>,
    pub redirect: Option<(String, u16)>,
    /// The gateway answers this status itself.
    pub respond: Option<u16>,
    pub strip_prefix: bool,
    pub https_redirect: bool,
    pub websocket_idle_timeout_ms: Option<u64>,
    pub plugins: Vec<String>,
}

#[derive(Default)]
pub struct Model {
    pub services: BTreeMap<String, ServiceOut>,
    pub routes: Vec<RouteOut>,
    /// Plugin instances by name: `type` and settings.
    pub plugins: BTreeMap<String, Table>,
    /// `(cert, key, names)`.
    pub certificates: Vec<(String, String, Vec<String>)>,
    /// The TLS Secrets those come from (`namespace`, `name`).
    pub secrets: std::collections::BTreeSet<(String, String)>,
}

impl Model {
    /// Adds `service` under `wanted` (or `wanted-2`, … when another service of that name has
    /// other settings) and returns the name used.
    pub fn add_service(&mut self, wanted: &str, service: ServiceOut) -> String {
        let mut name = wanted.to_string();
        let mut n = 1;
        loop {
            match self.services.get(&name) {
                None => {
                    self.services.insert(name.clone(), service);
                    return name;
                }
                Some(existing) if *existing == service => return name,
                Some(_) => {
                    n += 1;
                    name = format!("{wanted}-{n}");
                }
            }
        }
    }

    /// Adds a plugin instance (the same settings under the same name are shared).
    pub fn add_plugin(&mut self, name: &str, table: Table) -> String {
        let mut candidate = name.to_string();
        let mut n = 1;
        loop {
            match self.plugins.get(&candidate) {
                None => {
                    self.plugins.insert(candidate.clone(), table);
                    return candidate;
                }
                Some(existing) if existing.to_string() == table.to_string() => return candidate,
                Some(_) => {
                    n += 1;
                    candidate = format!("{name}-{n}");
                }
            }
        }
    }

    /// The config text; `kubernetes_section`: write `[kubernetes]` (in the cluster), which a
    /// caller that puts its own sections first may already have.
    pub fn to_toml(&self, header: &str, kubernetes_section: bool) -> String {
        let mut doc = DocumentMut::new();
        doc.decor_mut().set_prefix(header);
        if kubernetes_section {
            // In the cluster: the gateway's service account (the chart's discovery.namespaces).
            doc["kubernetes"] = Item::Table(Table::new());
        }
        if !self.plugins.is_empty() {
            let mut plugins = Table::new();
            plugins.set_implicit(true);
            for (name, table) in &self.plugins {
                plugins.insert(name, Item::Table(table.clone()));
            }
            doc["plugins"] = Item::Table(plugins);
        }
        let mut certificates = ArrayOfTables::new();
        for (cert, key, names) in &self.certificates {
            let mut t = Table::new();
            t["cert"] = value(cert.as_str());
            t["key"] = value(key.as_str());
            t["names"] = value(strings(names));
            certificates.push(t);
        }
        if !certificates.is_empty() {
            doc["certificates"] = Item::ArrayOfTables(certificates);
        }
        let mut services = ArrayOfTables::new();
        for (name, s) in &self.services {
            services.push(service_table(name, s));
        }
        doc["services"] = Item::ArrayOfTables(services);
        let mut routes = ArrayOfTables::new();
        for r in &self.routes {
            routes.push(route_table(r));
        }
        doc["routes"] = Item::ArrayOfTables(routes);
        let mut text = doc.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

fn service_table(name: &str, s: &ServiceOut) -> Table {
    let mut t = Table::new();
    t["name"] = value(name);
    let inline = |b: &Binding| {
        let mut binding = InlineTable::new();
        binding.insert("namespace", b.namespace.as_str().into());
        binding.insert("service", b.service.as_str().into());
        match &b.port {
            Some(PortRef::Name(n)) => binding.insert("port", Value::from(n.as_str())),
            Some(PortRef::Number(n)) => binding.insert("port", Value::from(i64::from(*n))),
            None => None,
        };
        binding
    };
    t["kubernetes"] = match s.bindings.as_slice() {
        [one] => value(inline(one)),
        many => value(many.iter().map(inline).collect::<Array>()),
    };
    if let Some(protocol) = s.protocol {
        t["protocol"] = value(protocol);
        if protocol.ends_with('s') && !s.tls_verify {
            let mut tls = InlineTable::new();
            tls.insert("verify", false.into());
            t["tls"] = value(tls);
        }
    }
    if let Some(ms) = s.read_timeout_ms {
        t["read_timeout_ms"] = value(ms as i64);
    }
    if let Some(ms) = s.write_timeout_ms {
        t["write_timeout_ms"] = value(ms as i64);
    }
    if let Some(ms) = s.connect_timeout_ms {
        t["connect_timeout_ms"] = value(ms as i64);
    }
    if let Some(key) = &s.hash_key {
        t["lb"] = value("hash");
        t["hash_key"] = value(key.as_str());
    }
    t
}

fn route_table(r: &RouteOut) -> Table {
    let mut t = Table::new();
    t.decor_mut().set_prefix(format!("\n# {}\n", r.from));
    t["name"] = value(r.name.as_str());
    if !r.hosts.is_empty() {
        t["hosts"] = value(strings(&r.hosts));
    }
    t["path"] = value(r.path.as_str());
    if !r.methods.is_empty() {
        t["methods"] = value(strings(&r.methods));
    }
    for (key, map) in [
        ("headers", &r.headers),
        ("cookies", &r.cookies),
        ("query", &r.query),
    ] {
        if !map.is_empty() {
            let mut table = InlineTable::new();
            for (k, v) in map {
                table.insert(k, v.as_str().into());
            }
            t[key] = value(table);
        }
    }
    if let Some(service) = &r.service {
        t["service"] = value(service.as_str());
    }
    if !r.split.is_empty() {
        let mut split = Array::new();
        for (service, weight) in &r.split {
            let mut labels = InlineTable::new();
            labels.insert(
                crate::kubernetes::join::SERVICE_LABEL,
                service.as_str().into(),
            );
            let mut entry = InlineTable::new();
            entry.insert("labels", Value::InlineTable(labels));
            entry.insert("weight", i64::from(*weight).into());
            split.push(entry);
        }
        t["split"] = value(split);
    }
    if let Some((to, status)) = &r.redirect {
        let mut redirect = InlineTable::new();
        redirect.insert("to", to.as_str().into());
        redirect.insert("status", i64::from(*status).into());
        t["redirect"] = value(redirect);
    }
    if let Some(status) = r.respond {
        let mut respond = InlineTable::new();
        respond.insert("status", i64::from(status).into());
        t["respond"] = value(respond);
    }
    if r.strip_prefix {
        t["strip_prefix"] = value(true);
    }
    if r.https_redirect {
        t["https_redirect"] = value(true);
    }
    if let Some(ms) = r.websocket_idle_timeout_ms {
        t["websocket_idle_timeout_ms"] = value(ms as i64);
    }
    if !r.plugins.is_empty() {
        t["plugins"] = value(strings(&r.plugins));
    }
    t
}
