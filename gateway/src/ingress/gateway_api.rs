//! Gateway API (`gateway.networking.k8s.io/v1`) into the same config model as Ingresses:
//! the Gateways of a GatewayClass whose `controllerName` is Tidegate's, their listeners'
//! hostnames and certificates, and the HTTPRoutes and GRPCRoutes attached to them.
//!
//! Per route rule and match, a route (as for Ingresses, `PathPrefix` is a segment prefix:
//! `=/p` and `/p/`); header and query parameter matches by exact value; a method match; backendRefs to Services
//! — one, or several weighed by a split on `kubernetes.io/service-name`; the filters
//! RequestHeaderModifier / ResponseHeaderModifier (a `headers` plugin), RequestRedirect (to
//! HTTPS, or to a fixed URL), URLRewrite with `ReplacePrefixMatch: /` (strip the prefix);
//! `timeouts.backendRequest` (the service's read timeout). GRPCRoute methods become exact
//! paths (`=/pkg.Service/Method`) or a service prefix, to `grpc` services. What does not map
//! is reported with the route's name, as for annotations.
//!
//! A route's hostnames are intersected with its listener's (a route without any takes the
//! listener's); the listeners' ports and protocols are the gateways' own listeners: a route
//! attached to one listener is served on all of them (reported once per Gateway).

use super::model::{Binding, Model, RouteOut, ServiceOut};
use super::objects::Objects;
use super::reference_grants::{permits, Grant};
use super::report::Verdict::{Differs, Maps, Unsupported};
use super::report::{Report, RouteStatus};
use super::{service_port_name, slug, Options};
use crate::config::PortRef;
use gateway_api::gateways::Gateway;
use serde_json::Value;
use toml_edit::{value, Array, InlineTable, Table};

/// The controllerName a GatewayClass names to be Tidegate's.
pub const CONTROLLER_NAME: &str = "tidegate.io/gateway-controller";

fn id(namespace: &Option<String>, name: &Option<String>) -> String {
    format!(
        "{}/{}",
        namespace.as_deref().unwrap_or("default"),
        name.as_deref().unwrap_or("?")
    )
}

/// One kind of route, seen through what the translation needs of it (HTTPRoute and
/// GRPCRoute share the rest).
struct RouteView {
    kind: &'static str,
    namespace: String,
    name: String,
    hostnames: Vec<String>,
    /// `(gateway namespace, gateway name, sectionName)`.
    parents: Vec<(String, String, Option<String>)>,
    /// The spec's rules as JSON: both kinds are read with one walker below.
    rules: Vec<Value>,
}

impl RouteView {
    /// A route of either kind from its metadata and its spec as JSON (their specs share
    /// `hostnames`, `parentRefs` and the shape of `rules` this reads).
    fn of(kind: &'static str, meta: &kube::api::ObjectMeta, spec: Value) -> RouteView {
        let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
        let text = |v: &Value| v.as_str().map(String::from);
        let parents = spec["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["kind"].as_str().is_none_or(|k| k == "Gateway"))
            .map(|p| {
                (
                    text(&p["namespace"]).unwrap_or_else(|| namespace.clone()),
                    text(&p["name"]).unwrap_or_default(),
                    text(&p["sectionName"]),
                )
            })
            .collect();
        RouteView {
            kind,
            parents,
            name: meta.name.clone().unwrap_or_default(),
            hostnames: spec["hostnames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(text)
                .collect(),
            rules: spec["rules"].as_array().cloned().unwrap_or_default(),
            namespace,
        }
    }
}

fn json<T: serde::Serialize>(spec: &T) -> Value {
    serde_json::to_value(spec).unwrap_or_default()
}

fn views(objects: &Objects) -> Vec<RouteView> {
    let mut out: Vec<RouteView> = objects
        .http_routes
        .iter()
        .map(|r| RouteView::of("HTTPRoute", &r.metadata, json(&r.spec)))
        .chain(
            objects
                .grpc_routes
                .iter()
                .map(|r| RouteView::of("GRPCRoute", &r.metadata, json(&r.spec))),
        )
        .collect();
    out.sort_by(|a, b| (a.kind, &a.namespace, &a.name).cmp(&(b.kind, &b.namespace, &b.name)));
    out
}

/// Whether `host` (a route's hostname) is covered by a listener's `pattern`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.strip_suffix(suffix)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
                || host.strip_prefix("*.").is_some_and(|h| h.ends_with(suffix))
        }
        None => pattern == host,
    }
}

/// The Gateways Tidegate serves: those of a GatewayClass naming its controller.
fn ours(objects: &Objects) -> Vec<&Gateway> {
    let classes: Vec<&str> = objects
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let mut gateways: Vec<&Gateway> = objects
        .gateways
        .iter()
        .filter(|g| classes.contains(&g.spec.gateway_class_name.as_str()))
        .collect();
    gateways.sort_by_key(|g| id(&g.metadata.namespace, &g.metadata.name));
    gateways
}

/// Why a route's backendRefs cannot all be used (ResolvedRefs false), if so.
fn unresolved(view: &RouteView, grants: &[Grant]) -> Result<(), String> {
    for backend in view
        .rules
        .iter()
        .flat_map(|r| r["backendRefs"].as_array().cloned().unwrap_or_default())
    {
        let kind = backend["kind"].as_str().unwrap_or("Service");
        if kind != "Service" || !backend["group"].as_str().unwrap_or("").is_empty() {
            return Err(format!("InvalidKind: {kind} is not a Service"));
        }
        let namespace = backend["namespace"].as_str().unwrap_or(&view.namespace);
        let name = backend["name"].as_str().unwrap_or_default();
        if !permits(
            grants,
            view.kind,
            &view.namespace,
            "Service",
            namespace,
            name,
        ) {
            return Err(format!(
                "RefNotPermitted: the Service {namespace}/{name}: no ReferenceGrant there allows it"
            ));
        }
    }
    Ok(())
}

pub fn translate(
    objects: &Objects,
    options: &Options,
    model: &mut Model,
    report: &mut Report,
) -> usize {
    let gateways = ours(objects);
    report.gateway_classes = objects
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == CONTROLLER_NAME)
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    for gateway in &gateways {
        report.gateways.push((
            gateway
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            gateway.metadata.name.clone().unwrap_or_default(),
        ));
        let gid = id(&gateway.metadata.namespace, &gateway.metadata.name);
        let namespace = gateway
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        report.add(
            Differs,
            &gid,
            "spec.listeners",
            "ports and protocols are the gateways' own listeners (listen, tls_listen): a route attached to one listener is served on every one",
        );
        for listener in &gateway.spec.listeners {
            if !matches!(listener.protocol.as_str(), "HTTP" | "HTTPS") {
                report.add(
                    Unsupported,
                    &gid,
                    "spec.listeners.protocol",
                    format!(
                        "{}: {} (HTTP and HTTPS only)",
                        listener.name, listener.protocol
                    ),
                );
            }
            for cert in listener
                .tls
                .iter()
                .flat_map(|t| t.certificate_refs.iter().flatten())
            {
                let secret_namespace = cert.namespace.clone().unwrap_or_else(|| namespace.clone());
                let grants = &objects.reference_grants;
                if !permits(
                    grants,
                    "Gateway",
                    &namespace,
                    "Secret",
                    &secret_namespace,
                    &cert.name,
                ) {
                    report.add(
                        Unsupported,
                        &gid,
                        "certificateRefs",
                        format!("{secret_namespace}/{}: a Secret of another namespace, and no ReferenceGrant there allows it", cert.name),
                    );
                    continue;
                }
                super::certificate(
                    options,
                    &secret_namespace,
                    &cert.name,
                    listener.hostname.iter().cloned().collect(),
                    &gid,
                    "certificateRefs",
                    model,
                    report,
                );
            }
        }
    }
    let mut attached = 0;
    for view in views(objects) {
        let rid = format!("{} {}/{}", view.kind, view.namespace, view.name);
        // The listeners this route is attached to, and whether they allow it.
        let mut listener_hosts: Vec<Option<String>> = Vec::new();
        let mut any_parent = false;
        for (gw_ns, gw_name, section) in &view.parents {
            let Some(gateway) = gateways.iter().find(|g| {
                g.metadata.name.as_deref() == Some(gw_name)
                    && g.metadata.namespace.as_deref().unwrap_or("default") == gw_ns
            }) else {
                continue;
            };
            any_parent = true;
            let before = listener_hosts.len();
            for listener in &gateway.spec.listeners {
                if section.as_deref().is_some_and(|s| s != listener.name) {
                    continue;
                }
                let from = listener
                    .allowed_routes
                    .as_ref()
                    .and_then(|a| a.namespaces.as_ref())
                    .and_then(|n| n.from.as_ref())
                    .map(|f| format!("{f:?}"))
                    .unwrap_or_else(|| "Same".into());
                let allowed = match from.as_str() {
                    "All" => true,
                    "Same" => *gw_ns == view.namespace,
                    _ => {
                        report.add(
                            Unsupported,
                            &rid,
                            "allowedRoutes.namespaces.from",
                            "Selector: namespace labels are not read; the route is not attached",
                        );
                        false
                    }
                };
                if allowed {
                    listener_hosts.push(listener.hostname.clone());
                }
            }
            report.route_statuses.push(RouteStatus {
                kind: view.kind,
                namespace: view.namespace.clone(),
                name: view.name.clone(),
                parent: (gw_ns.clone(), gw_name.clone(), section.clone()),
                accepted: if listener_hosts.len() > before {
                    Ok(())
                } else {
                    Err(
                        "NotAllowedByListeners: no listener of the Gateway allows this route"
                            .into(),
                    )
                },
                resolved: unresolved(&view, &objects.reference_grants),
            });
        }
        if listener_hosts.is_empty() {
            if any_parent {
                report.add(
                    Unsupported,
                    &rid,
                    "parentRefs",
                    "no listener of its Gateway allows it",
                );
            }
            continue; // not ours
        }
        attached += 1;
        // The route's hosts: its own within its listeners', else its listeners'.
        let mut hosts: Vec<String> = Vec::new();
        let mut any_host = false;
        for listener in &listener_hosts {
            match (listener, view.hostnames.is_empty()) {
                (None, true) => any_host = true,
                (None, false) => hosts.extend(view.hostnames.iter().cloned()),
                (Some(l), true) => hosts.push(l.clone()),
                (Some(l), false) => hosts.extend(
                    view.hostnames
                        .iter()
                        .filter(|h| host_matches(l, h))
                        .cloned(),
                ),
            }
        }
        for host in &view.hostnames {
            if !any_host && !hosts.contains(host) {
                report.add(
                    Differs,
                    &rid,
                    "hostnames",
                    format!("{host} fits none of its listeners' hostnames: not routed"),
                );
            }
        }
        hosts.sort();
        hosts.dedup();
        if any_host {
            hosts.clear();
        } else if hosts.is_empty() {
            report.add(
                Unsupported,
                &rid,
                "hostnames",
                "none of them fits its listeners' hostnames: nothing is routed",
            );
            continue;
        }
        for (r, rule) in view.rules.iter().enumerate() {
            rule_routes(&view, &rid, r, rule, &hosts, objects, model, report);
        }
    }
    merge_https_redirects(model);
    attached
}

/// A rule that only redirects to HTTPS (on a plain-HTTP listener) becomes `https_redirect`
/// on the routes of the same hosts — Tidegate serves every route on every listener, so the
/// HTTPS listener's routes for those hosts redirect plain requests. Alone, it answers 404
/// over TLS (where the Gateway had no route either).
fn merge_https_redirects(model: &mut Model) {
    let only_redirect = |r: &RouteOut| {
        r.https_redirect && r.service.is_none() && r.redirect.is_none() && r.respond.is_none()
    };
    let redirecting: Vec<RouteOut> = model
        .routes
        .iter()
        .filter(|r| only_redirect(r))
        .cloned()
        .collect();
    for redirect in redirecting {
        let mut covered = false;
        for route in model.routes.iter_mut().filter(|r| !only_redirect(r)) {
            if route.hosts == redirect.hosts {
                route.https_redirect = true;
                covered = true;
            }
        }
        if covered {
            model.routes.retain(|r| r.name != redirect.name);
        } else if let Some(route) = model.routes.iter_mut().find(|r| r.name == redirect.name) {
            route.respond = Some(404);
        }
    }
}

/// A Go duration as Gateway API writes it (`10s`, `500ms`, `1m30s`, `1h`), in ms.
fn duration_ms(text: &str) -> Option<u64> {
    let mut total = 0f64;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(digits);
        let n: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        total += n * match unit {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        rest = tail;
    }
    Some(total as u64)
}

#[allow(clippy::too_many_arguments)]
fn rule_routes(
    view: &RouteView,
    rid: &str,
    r: usize,
    rule: &Value,
    hosts: &[String],
    objects: &Objects,
    model: &mut Model,
    report: &mut Report,
) {
    let grpc = view.kind == "GRPCRoute";
    let read_timeout_ms = rule["timeouts"]["backendRequest"]
        .as_str()
        .or(rule["timeouts"]["request"].as_str())
        .and_then(duration_ms);
    if rule["timeouts"].is_object() {
        report.add(
            Maps,
            rid,
            "timeouts",
            "the service's read_timeout_ms (backendRequest, else request)",
        );
    }
    // Backends: Services, weighed.
    let mut bindings: Vec<(Binding, u32)> = Vec::new();
    for backend in rule["backendRefs"].as_array().into_iter().flatten() {
        let kind = backend["kind"].as_str().unwrap_or("Service");
        let group = backend["group"].as_str().unwrap_or("");
        if kind != "Service" || !group.is_empty() {
            report.add(
                Unsupported,
                rid,
                "backendRefs",
                format!("{group}/{kind}: Services only"),
            );
            continue;
        }
        let name = backend["name"].as_str().unwrap_or_default().to_string();
        let namespace = backend["namespace"]
            .as_str()
            .unwrap_or(&view.namespace)
            .to_string();
        if !permits(
            &objects.reference_grants,
            view.kind,
            &view.namespace,
            "Service",
            &namespace,
            &name,
        ) {
            report.add(
                Unsupported,
                rid,
                "backendRefs",
                format!(
                    "{namespace}/{name}: another namespace, and no ReferenceGrant there allows it"
                ),
            );
            continue;
        }
        let weight = backend["weight"].as_u64().unwrap_or(1) as u32;
        let port = backend["port"].as_i64().and_then(|p| i32::try_from(p).ok());
        let port = match port {
            Some(number) => match service_port_name(objects, &namespace, &name, number) {
                Some(found) => found,
                None => {
                    report.add(Differs, rid, "backendRefs.port", format!("{name}:{number}: the Service is not among the objects, so {number} is taken as the pods' port"));
                    u16::try_from(number).ok().map(PortRef::Number)
                }
            },
            None => None,
        };
        if weight > 0 {
            bindings.push((
                Binding {
                    namespace,
                    service: name,
                    port,
                },
                weight,
            ));
        }
    }
    if rule["backendRefs"]
        .as_array()
        .is_some_and(|b| b.iter().any(|x| x["filters"].is_array()))
    {
        report.add(
            Unsupported,
            rid,
            "backendRefs.filters",
            "filters per backend are not translated",
        );
    }
    let service = if bindings.is_empty() {
        None
    } else {
        let label = bindings
            .iter()
            .map(|(b, _)| b.service.as_str())
            .collect::<Vec<_>>()
            .join("-");
        let out = ServiceOut {
            bindings: bindings.iter().map(|(b, _)| b.clone()).collect(),
            protocol: grpc.then_some("grpc"),
            tls_verify: false,
            read_timeout_ms,
            write_timeout_ms: None,
            connect_timeout_ms: None,
            hash_key: None,
        };
        Some(model.add_service(&slug(&[&view.namespace, &label]), out))
    };
    let split: Vec<(String, u32)> = if bindings.len() > 1 {
        bindings
            .iter()
            .map(|(b, w)| (b.service.clone(), *w))
            .collect()
    } else {
        Vec::new()
    };
    // Filters.
    let mut plugins = Vec::new();
    let mut redirect = None;
    let mut https_redirect = false;
    let mut strip_prefix = false;
    let mut headers_table = Table::new();
    for filter in rule["filters"].as_array().into_iter().flatten() {
        let kind = filter["type"].as_str().unwrap_or_default();
        match kind {
            "RequestHeaderModifier" | "ResponseHeaderModifier" => {
                let (key, side) = if kind == "RequestHeaderModifier" {
                    ("requestHeaderModifier", "request")
                } else {
                    ("responseHeaderModifier", "response")
                };
                headers_table[side] = value(header_edits(&filter[key]));
                report.add(Maps, rid, kind, "a headers plugin");
            }
            "RequestRedirect" => {
                let f = &filter["requestRedirect"];
                let status = f["statusCode"].as_u64().unwrap_or(302) as u16;
                let scheme = f["scheme"].as_str();
                let fixed_path = f["path"]["replaceFullPath"].as_str();
                match (scheme, f["hostname"].as_str(), fixed_path) {
                    (Some("https"), None, None) if f["port"].is_null() => {
                        https_redirect = true;
                        report.add(Differs, rid, kind, format!("https_redirect: 308 (keeps the method) where the route asks {status}"));
                    }
                    (scheme, Some(host), Some(path)) => {
                        let port = f["port"]
                            .as_u64()
                            .map(|p| format!(":{p}"))
                            .unwrap_or_default();
                        let to = format!("{}://{host}{port}{path}", scheme.unwrap_or("http"));
                        report.add(Maps, rid, kind, format!("redirect to {to} ({status})"));
                        redirect = Some((to, status));
                    }
                    (_, None, Some(path)) => {
                        report.add(Maps, rid, kind, format!("redirect to {path} ({status})"));
                        redirect = Some((path.to_string(), status));
                    }
                    _ => report.add(
                        Unsupported,
                        rid,
                        kind,
                        "only a redirect to https, or to a fixed path or URL",
                    ),
                }
            }
            "URLRewrite" => {
                let f = &filter["urlRewrite"];
                if f["hostname"].is_string() {
                    report.add(
                        Unsupported,
                        rid,
                        "URLRewrite.hostname",
                        "the Host is not rewritten",
                    );
                }
                match (
                    f["path"]["type"].as_str(),
                    f["path"]["replacePrefixMatch"].as_str(),
                ) {
                    (Some("ReplacePrefixMatch"), Some("/")) => {
                        strip_prefix = true;
                        report.add(Maps, rid, kind, "strip_prefix (ReplacePrefixMatch: /)");
                    }
                    (None, None) => {}
                    _ => report.add(
                        Unsupported,
                        rid,
                        "URLRewrite.path",
                        "only ReplacePrefixMatch: /",
                    ),
                }
            }
            other => report.add(Unsupported, rid, other, "not translated"),
        }
    }
    if !headers_table.is_empty() {
        let mut table = Table::new();
        table["type"] = value("headers");
        for (k, v) in &headers_table {
            table[k] = v.clone();
        }
        plugins.push(model.add_plugin(
            &slug(&[&view.namespace, &view.name, &r.to_string(), "headers"]),
            table,
        ));
    }
    // No usable backend and nothing that answers: the spec's 500 for the rule's requests.
    let respond = (service.is_none() && redirect.is_none() && !https_redirect).then(|| {
        report.add(
            Differs,
            rid,
            "backendRefs",
            "no usable backend: the rule's requests are answered 500, as the Gateway API says",
        );
        500
    });
    // Matches (none: everything).
    let default_match = [Value::Null];
    let matches: &[Value] = match rule["matches"].as_array() {
        Some(m) if !m.is_empty() => m,
        _ => &default_match,
    };
    for (m, matched) in matches.iter().enumerate() {
        let mut headers = std::collections::BTreeMap::new();
        for h in matched["headers"].as_array().into_iter().flatten() {
            if h["type"].as_str().unwrap_or("Exact") == "Exact" {
                headers.insert(
                    h["name"].as_str().unwrap_or_default().to_ascii_lowercase(),
                    h["value"].as_str().unwrap_or_default().to_string(),
                );
            } else {
                report.add(
                    Unsupported,
                    rid,
                    "matches.headers",
                    "RegularExpression: header values match exactly",
                );
            }
        }
        let mut query = std::collections::BTreeMap::new();
        for q in matched["queryParams"].as_array().into_iter().flatten() {
            if q["type"].as_str().unwrap_or("Exact") == "Exact" {
                // Of several entries with one name, the first counts (as the API says).
                query
                    .entry(q["name"].as_str().unwrap_or_default().to_string())
                    .or_insert_with(|| q["value"].as_str().unwrap_or_default().to_string());
            } else {
                report.add(
                    Unsupported,
                    rid,
                    "matches.queryParams",
                    "RegularExpression: query parameters match exactly",
                );
            }
        }
        let methods: Vec<String> = matched["method"]
            .as_str()
            .filter(|_| !grpc)
            .map(|m| vec![m.to_string()])
            .unwrap_or_default();
        let base = RouteOut {
            name: slug(&[&view.namespace, &view.name, &r.to_string(), &m.to_string()]),
            from: format!("{rid} rule {r} match {m}"),
            hosts: hosts.to_vec(),
            headers,
            query,
            methods,
            service: service.clone(),
            split: split.clone(),
            redirect: redirect.clone(),
            https_redirect,
            strip_prefix,
            websocket_idle_timeout_ms: None,
            plugins: plugins.clone(),
            path: String::new(),
            respond,
            cookies: Default::default(),
        };
        let patterns: Vec<(String, String)> = if grpc {
            let method = &matched["method"];
            if method["type"].as_str() == Some("RegularExpression") {
                report.add(
                    Unsupported,
                    rid,
                    "matches.method",
                    "RegularExpression: gRPC methods match exactly",
                );
                continue;
            }
            match (method["service"].as_str(), method["method"].as_str()) {
                (Some(s), Some(m)) => vec![(String::new(), format!("=/{s}/{m}"))],
                (Some(s), None) => vec![(String::new(), format!("/{s}/"))],
                (None, Some(m)) => {
                    report.add(
                        Unsupported,
                        rid,
                        "matches.method",
                        format!("method {m} of any service"),
                    );
                    continue;
                }
                (None, None) => vec![(String::new(), "/".into())],
            }
        } else {
            let path = matched["path"]["value"].as_str().unwrap_or("/");
            match matched["path"]["type"].as_str().unwrap_or("PathPrefix") {
                "Exact" => vec![(String::new(), format!("={path}"))],
                "RegularExpression" => vec![(String::new(), format!("~^{path}"))],
                _ => match path.trim_end_matches('/') {
                    "" => vec![(String::new(), "/".into())],
                    p => vec![
                        ("-exact".into(), format!("={p}")),
                        (String::new(), format!("{p}/")),
                    ],
                },
            }
        };
        for (suffix, path) in patterns {
            let mut route = base.clone();
            route.name.push_str(&suffix);
            route.path = path;
            if route.strip_prefix && route.path.starts_with('~') {
                route.strip_prefix = false;
                report.add(Unsupported, rid, "URLRewrite.path", "not on a regex path");
            }
            model.routes.push(route);
        }
    }
}

/// A Gateway API header modifier (`set`/`add`: `[{name, value}]`, `remove`: names) as the
/// headers plugin's table for one side.
fn header_edits(modifier: &Value) -> InlineTable {
    let mut side = InlineTable::new();
    for key in ["set", "add"] {
        let mut pairs = InlineTable::new();
        for pair in modifier[key].as_array().into_iter().flatten() {
            pairs.insert(
                pair["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                pair["value"].as_str().unwrap_or_default().into(),
            );
        }
        if !pairs.is_empty() {
            side.insert(key, pairs.into());
        }
    }
    let remove: Array = modifier["remove"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    if !remove.is_empty() {
        side.insert("remove", remove.into());
    }
    side
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_and_listener_hostnames_are_read() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("1m30s"), Some(90_000));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("1d"), None);
        assert!(host_matches("*.example.com", "shop.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(host_matches("shop.example.com", "shop.example.com"));
        assert!(!host_matches("shop.example.com", "blog.example.com"));
    }
}
