//! `tidegate import-ingress`: ingress-nginx manifests (`networking.k8s.io/v1` Ingresses with
//! their annotations, IngressClasses, and the Services they name) into a Tidegate config,
//! with a report of what maps, what differs and what is not translated.
//!
//! The translation, per Ingress rule and path:
//! - a route per path, with the rule's host (`hosts`), the path by its type — `Exact` →
//!   `=/p`; `Prefix` → `=/p` and `/p/` (Kubernetes prefixes match whole path segments: `/p`
//!   takes `/p` and `/p/x`, never `/px`); `ImplementationSpecific` → `/p` (nginx's
//!   `location /p`, a plain string prefix); with `use-regex` → `~^p`;
//! - a service per Kubernetes Service port, bound with `kubernetes = { namespace, service,
//!   port }` (pod discovery); a Service port *number* is made into the Service port's name
//!   when the Service is among the manifests (EndpointSlices name ports, and carry the target
//!   port's number), else kept as a number and reported;
//! - TLS: a `[[certificates]]` entry per Secret, read from `--tls-dir/SECRET/tls.crt|key`
//!   (the Helm chart mounts `tlsSecrets` there), and `https_redirect` on the TLS hosts'
//!   routes unless `ssl-redirect: "false"`, as ingress-nginx does;
//! - annotations: `annotations.rs`.
//!
//! The result is one config the gateway serves directly; `tidegate check` accepts it.

mod annotations;
mod gateway_api;
mod htpasswd;
mod model;
pub mod objects;
pub mod reference_grants;
mod report;

pub use annotations::{PREFIX as ANNOTATION_PREFIX, SUPPORTED as SUPPORTED_ANNOTATIONS};
pub use gateway_api::CONTROLLER_NAME as GATEWAY_CONTROLLER_NAME;
pub use report::{Report, Verdict};

use crate::config::PortRef;
use annotations::Settings;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use model::{Binding, Model, RouteOut, ServiceOut};
use objects::Objects;
use report::Verdict::{Differs, Maps, Unsupported};
use toml_edit::{value, Array, Table};

/// How an import is asked for.
pub struct Options {
    /// Only Ingresses of this class (by `ingressClassName`, the old
    /// `kubernetes.io/ingress.class` annotation, or the default IngressClass); None: all.
    pub class: Option<String>,
    /// Where the TLS Secrets' files are, laid out as `tls_files` says.
    pub tls_dir: String,
    pub tls_files: TlsFiles,
    /// Write an empty `[kubernetes]` (in the cluster) for the services' pod discovery.
    pub kubernetes_section: bool,
}

/// How the certificates of TLS Secrets are found under `tls_dir`.
#[derive(Debug, Clone)]
pub enum TlsFiles {
    /// `DIR/SECRET/tls.crt` and `tls.key`: each Secret mounted as a directory (the importer's
    /// output for the chart's `tlsSecrets`).
    PerSecret,
    /// `DIR/NAMESPACE.SECRET.crt` and `.key`: the controller's bundle, which holds the TLS
    /// Secrets listed here (`namespace`, `name`); a Secret that is not gets no certificate.
    Bundle(std::collections::BTreeSet<(String, String)>),
}

pub struct Imported {
    pub config: String,
    pub report: Report,
    pub routes: usize,
    pub services: usize,
    /// The TLS Secrets the config's certificates come from (`namespace`, `name`).
    pub secrets: Vec<(String, String)>,
}

/// Translates `(file name, text)` manifests.
pub fn import(files: &[(String, String)], options: &Options) -> Result<Imported, String> {
    let objects = objects::read(files)?;
    let names: Vec<&str> = files
        .iter()
        .map(|(name, _)| name.rsplit('/').next().unwrap_or(name))
        .collect();
    Ok(translate_all(&objects, options, &names.join(", ")))
}

/// Translates the objects of a cluster (or of manifests): `from` says where they came from,
/// in the config's first comment.
pub fn translate_all(objects: &Objects, options: &Options, from: &str) -> Imported {
    let mut report = Report::default();
    let mut model = Model::default();
    let mut ingresses: Vec<&Ingress> = Vec::new();
    for ingress in &objects.ingresses {
        let id = object_id(ingress);
        match class_of(ingress, objects) {
            Some(class) if options.class.as_ref().is_some_and(|want| *want != class) => {
                report.skipped.push(format!("{id} (class {class:?})"));
            }
            None if options.class.is_some() => {
                report.skipped.push(format!("{id} (no class)"));
            }
            _ => ingresses.push(ingress),
        }
    }
    // Canaries after the Ingresses they shadow, each group by namespace and name: the same
    // manifests always give the same config.
    ingresses.sort_by_key(|i| (is_canary(i), object_id(i)));
    for other in &objects.others {
        report.skipped.push(format!("{other} (not read)"));
    }
    for ingress in ingresses {
        report.ingresses.push(object_id(ingress));
        translate(ingress, objects, options, &mut model, &mut report);
    }
    report.gateway_routes = gateway_api::translate(objects, options, &mut model, &mut report);
    // A main service whose routes all went to a canary's combined service is left unused.
    let used: std::collections::HashSet<String> = model
        .routes
        .iter()
        .filter_map(|r| r.service.clone())
        .collect();
    model.services.retain(|name, _| used.contains(name));
    let header = format!(
        "# Translated by Tidegate from {from}.\n# Check it with `tidegate check`; the report of what differs came with it.\n\n"
    );
    Imported {
        config: model.to_toml(&header, options.kubernetes_section),
        routes: model.routes.len(),
        services: model.services.len(),
        secrets: model.secrets.iter().cloned().collect(),
        report,
    }
}

/// An Ingress as the report names it: `namespace/name`.
pub fn object_id(ingress: &Ingress) -> String {
    format!(
        "{}/{}",
        ingress.metadata.namespace.as_deref().unwrap_or("default"),
        ingress.metadata.name.as_deref().unwrap_or("?")
    )
}

fn annotations(ingress: &Ingress) -> std::collections::BTreeMap<String, String> {
    ingress.metadata.annotations.clone().unwrap_or_default()
}

fn is_canary(ingress: &Ingress) -> bool {
    annotations(ingress)
        .get(&format!("{}canary", annotations::PREFIX))
        .is_some_and(|v| v == "true")
}

/// The class of an Ingress: its `ingressClassName`, else the old annotation, else the
/// IngressClass marked default among the manifests.
fn class_of(ingress: &Ingress, objects: &Objects) -> Option<String> {
    let spec = ingress.spec.as_ref();
    spec.and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            annotations(ingress)
                .get("kubernetes.io/ingress.class")
                .cloned()
        })
        .or_else(|| {
            objects
                .classes
                .iter()
                .find(|c| {
                    c.metadata
                        .annotations
                        .as_ref()
                        .and_then(|a| a.get("ingressclass.kubernetes.io/is-default-class"))
                        .is_some_and(|v| v == "true")
                })
                .and_then(|c| c.metadata.name.clone())
        })
}

/// A Kubernetes-safe name part: lowercase letters, digits and `-`.
pub(crate) fn slug(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn translate(
    ingress: &Ingress,
    objects: &Objects,
    options: &Options,
    model: &mut Model,
    report: &mut Report,
) {
    let id = object_id(ingress);
    let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
    let name = ingress.metadata.name.as_deref().unwrap_or("ingress");
    let settings = annotations::read(&annotations(ingress), &id, report);
    let Some(spec) = &ingress.spec else {
        report.add(
            Unsupported,
            &id,
            "spec",
            "an Ingress without a spec has nothing to route",
        );
        return;
    };
    // A canary by header or cookie makes header or cookie routes to its own backends; one
    // by weight joins its backends to the main routes of the same host and path, weighed by
    // a split.
    if let Some(weight) = settings.canary.as_ref().and_then(|c| c.weight) {
        weigh_canary(
            spec, weight, namespace, &settings, objects, &id, model, report,
        );
    }
    if let Some(c) = &settings.canary {
        if c.by_header.is_none() && c.by_cookie.is_none() {
            return;
        }
    }
    let mut tls_hosts: Vec<String> = Vec::new();
    for tls in spec.tls.as_deref().unwrap_or_default() {
        let hosts = tls.hosts.clone().unwrap_or_default();
        tls_hosts.extend(hosts.iter().cloned());
        let Some(secret) = &tls.secret_name else {
            report.add(
                Differs,
                &id,
                "spec.tls",
                "an entry without secretName: the hosts are served with the default certificate",
            );
            continue;
        };
        certificate(
            options, namespace, secret, hosts, &id, "spec.tls", model, report,
        );
    }
    let users = settings
        .basic_auth
        .as_ref()
        .and_then(|b| htpasswd::users(&objects.secrets, namespace, &b.secret, b.map, &id, report));
    let plugins = plugins_of(&settings, users.as_deref(), namespace, name, model);
    let mut routes = Vec::new();
    for (r, rule) in spec.rules.as_deref().unwrap_or_default().iter().enumerate() {
        let Some(http) = &rule.http else {
            report.add(
                Unsupported,
                &id,
                "spec.rules.http",
                "a rule without paths routes nothing",
            );
            continue;
        };
        let host = rule.host.clone();
        for (p, path) in http.paths.iter().enumerate() {
            let Some(service) = backend_service(
                &path.backend,
                namespace,
                &settings,
                objects,
                &id,
                model,
                report,
            ) else {
                continue;
            };
            let base = RouteOut {
                name: slug(&[namespace, name, &r.to_string(), &p.to_string()]),
                from: format!(
                    "Ingress {id}: {} {}",
                    host.as_deref().unwrap_or("*"),
                    path.path.as_deref().unwrap_or("/")
                ),
                hosts: host.iter().cloned().collect(),
                service: Some(service),
                https_redirect: https_redirect(&settings, host.as_deref(), &tls_hosts),
                websocket_idle_timeout_ms: settings.read_timeout_s.map(|s| s * 1000),
                plugins: plugins.clone(),
                ..RouteOut::default()
            };
            let text = path.path.as_deref().unwrap_or("/");
            routes.extend(paths(base, text, &path.path_type, &settings, &id, report));
        }
    }
    if let Some(backend) = &spec.default_backend {
        if let Some(service) =
            backend_service(backend, namespace, &settings, objects, &id, model, report)
        {
            routes.push(RouteOut {
                name: slug(&[namespace, name, "default"]),
                from: format!("Ingress {id}: defaultBackend"),
                path: "/".into(),
                service: Some(service),
                https_redirect: settings.force_ssl_redirect,
                plugins: plugins.clone(),
                ..RouteOut::default()
            });
        }
    }
    if let Some(root) = &settings.app_root {
        let mut hosts: Vec<Option<String>> =
            routes.iter().map(|r| r.hosts.first().cloned()).collect();
        hosts.dedup();
        for (i, host) in hosts.into_iter().enumerate() {
            routes.push(RouteOut {
                name: slug(&[namespace, name, "app-root", &i.to_string()]),
                from: format!("Ingress {id}: app-root"),
                hosts: host.into_iter().collect(),
                path: "=/".into(),
                redirect: Some((root.clone(), 302)),
                ..RouteOut::default()
            });
        }
    }
    if let Some(canary) = &settings.canary {
        routes = canary_routes(canary, &routes);
    }
    model.routes.extend(routes);
}

/// A canary Ingress's own routes: each of `routes` asking for its header (first, as
/// ingress-nginx reads the header before the cookie), then for its cookie set to `always`.
fn canary_routes(canary: &annotations::Canary, routes: &[RouteOut]) -> Vec<RouteOut> {
    let mut out = Vec::new();
    if let Some((header, value)) = &canary.by_header {
        out.extend(routes.iter().cloned().map(|mut route| {
            route.name.push_str("-canary");
            route.headers.insert(header.clone(), value.clone());
            route
        }));
    }
    if let Some(cookie) = &canary.by_cookie {
        out.extend(routes.iter().cloned().map(|mut route| {
            route.name.push_str("-canary-cookie");
            route.cookies.insert(cookie.clone(), "always".into());
            route
        }));
    }
    out
}

/// A canary by weight: every main route with the canary's host and path (and no header or
/// cookie of its own) goes to a service bound to both Kubernetes Services, split by their name.
#[allow(clippy::too_many_arguments)]
fn weigh_canary(
    spec: &k8s_openapi::api::networking::v1::IngressSpec,
    (weight, total): (u32, u32),
    namespace: &str,
    settings: &Settings,
    objects: &Objects,
    id: &str,
    model: &mut Model,
    report: &mut Report,
) {
    let mut joined = 0;
    for rule in spec.rules.as_deref().unwrap_or_default() {
        let Some(http) = &rule.http else { continue };
        for path in &http.paths {
            let Some(canary) = backend_service(
                &path.backend,
                namespace,
                settings,
                objects,
                id,
                model,
                report,
            ) else {
                continue;
            };
            let Some(canary_binding) = model.services.get(&canary).map(|s| s.bindings[0].clone())
            else {
                continue;
            };
            let text = path.path.as_deref().unwrap_or("/");
            let prefix = text.trim_end_matches('/');
            let patterns = [
                format!("={prefix}"),
                format!("{prefix}/"),
                text.to_string(),
                format!("={text}"),
            ];
            let host: Vec<String> = rule.host.iter().cloned().collect();
            let targets: Vec<usize> = model
                .routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.hosts == host && r.split.is_empty())
                // Not another canary's header or cookie routes.
                .filter(|(_, r)| r.headers.is_empty() && r.cookies.is_empty())
                .filter(|(_, r)| patterns.contains(&r.path))
                .map(|(i, _)| i)
                .collect();
            for i in targets {
                let Some(main_name) = model.routes[i].service.clone() else {
                    continue;
                };
                let Some(main) = model.services.get(&main_name).cloned() else {
                    continue;
                };
                let mut both = main.clone();
                both.bindings.push(canary_binding.clone());
                let main_service = main.bindings[0].service.clone();
                let name = model.add_service(
                    &format!("{main_name}-with-{}", canary_binding.service),
                    both,
                );
                let route = &mut model.routes[i];
                route.service = Some(name);
                route.split = vec![
                    (main_service, total.saturating_sub(weight)),
                    (canary_binding.service.clone(), weight),
                ];
                joined += 1;
            }
        }
    }
    if joined == 0 {
        report.add(
            Unsupported,
            id,
            "canary-weight",
            "no main Ingress routes the same host and path: nothing to weigh against",
        );
    }
}

/// A `[[certificates]]` entry for the TLS Secret `namespace/secret`, serving `names`, where
/// `options.tls_files` says its files are — or, when the controller does not have it, none
/// (the names get the default certificate), reported.
#[allow(clippy::too_many_arguments)]
pub(crate) fn certificate(
    options: &Options,
    namespace: &str,
    secret: &str,
    names: Vec<String>,
    object: &str,
    what: &str,
    model: &mut Model,
    report: &mut Report,
) {
    let dir = options.tls_dir.trim_end_matches('/');
    let (cert, key, note) = match &options.tls_files {
        TlsFiles::PerSecret => (
            format!("{dir}/{secret}/tls.crt"),
            format!("{dir}/{secret}/tls.key"),
            format!("[[certificates]] from {dir}/{secret}/ — mount Secret {secret:?} there (the chart's tlsSecrets); renewals are picked up from the files"),
        ),
        TlsFiles::Bundle(have) => {
            if !have.contains(&(namespace.to_string(), secret.to_string())) {
                report.add(
                    Differs,
                    object,
                    what,
                    format!("Secret {namespace}/{secret} is not a kubernetes.io/tls Secret the controller can read: {} get the default certificate", names.join(", ")),
                );
                return;
            }
            (
                format!("{dir}/{namespace}.{secret}.crt"),
                format!("{dir}/{namespace}.{secret}.key"),
                format!("[[certificates]] from Secret {namespace}/{secret}, copied into the gateways' config Secret (renewals follow)"),
            )
        }
    };
    let entry = (cert, key, names);
    if !model.certificates.contains(&entry) {
        model.certificates.push(entry);
    }
    model
        .secrets
        .insert((namespace.to_string(), secret.to_string()));
    report.add(Maps, object, what, note);
}

/// ingress-nginx redirects plain HTTP to HTTPS for hosts with TLS unless `ssl-redirect` is
/// off, and for every host with `force-ssl-redirect`.
fn https_redirect(settings: &Settings, host: Option<&str>, tls_hosts: &[String]) -> bool {
    settings.force_ssl_redirect
        || (settings.ssl_redirect != Some(false)
            && host.is_some_and(|h| tls_hosts.iter().any(|t| t == h)))
}

/// The routes of one Ingress path: its pattern(s), and the rewrite when it is a prefix strip.
fn paths(
    base: RouteOut,
    path: &str,
    path_type: &str,
    settings: &Settings,
    id: &str,
    report: &mut Report,
) -> Vec<RouteOut> {
    let mut strip = false;
    let mut prefix: Option<String> = None;
    if let Some(target) = &settings.rewrite_target {
        // The two rewrites migrations meet: `/` on a prefix, and `/$2` on
        // `/p(/|$)(.*)` — both remove the prefix, which strip_prefix does.
        let regex_prefix = path
            .strip_suffix("(/|$)(.*)")
            .filter(|p| !p.contains(['(', '[', '*', '+', '?', '|', '$', '^']));
        match (target.as_str(), settings.use_regex, regex_prefix) {
            ("/", false, _) => strip = true,
            ("/$2", true, Some(p)) => {
                strip = true;
                prefix = Some(p.to_string());
            }
            _ => {
                report.add(
                    Unsupported,
                    id,
                    "rewrite-target",
                    format!("{target:?} on {path:?}: only a prefix strip (\"/\" on a prefix, \"/$2\" on PREFIX(/|$)(.*)) is translated; this path is routed unrewritten"),
                );
            }
        }
        if strip {
            report.add(
                Maps,
                id,
                "rewrite-target",
                "strip_prefix: the matched prefix is removed before proxying",
            );
        }
    }
    let with = |path: String| RouteOut {
        path,
        strip_prefix: strip,
        ..base.clone()
    };
    if let Some(p) = prefix {
        return segment_prefix(&base, &p, strip);
    }
    if settings.use_regex {
        return vec![with(format!("~^{path}"))];
    }
    match path_type {
        "Exact" => vec![with(format!("={path}"))],
        "Prefix" => segment_prefix(&base, path, strip),
        _ => vec![with(path.to_string())], // ImplementationSpecific: nginx's location prefix
    }
}

/// A Kubernetes `Prefix`: the path itself, and everything below it.
fn segment_prefix(base: &RouteOut, path: &str, strip: bool) -> Vec<RouteOut> {
    let p = path.trim_end_matches('/');
    if p.is_empty() {
        return vec![RouteOut {
            path: "/".into(),
            strip_prefix: strip,
            ..base.clone()
        }];
    }
    vec![
        RouteOut {
            name: format!("{}-exact", base.name),
            path: format!("={p}"),
            strip_prefix: strip,
            ..base.clone()
        },
        RouteOut {
            path: format!("{p}/"),
            strip_prefix: strip,
            ..base.clone()
        },
    ]
}

/// The Tidegate service for a backend (added to the model), or None when it is not a
/// Service backend.
fn backend_service(
    backend: &IngressBackend,
    namespace: &str,
    settings: &Settings,
    objects: &Objects,
    id: &str,
    model: &mut Model,
    report: &mut Report,
) -> Option<String> {
    let Some(service) = &backend.service else {
        report.add(
            Unsupported,
            id,
            "backend.resource",
            "only Service backends are routed",
        );
        return None;
    };
    let port = service.port.as_ref();
    let (port, label) = match (
        port.and_then(|p| p.name.clone()),
        port.and_then(|p| p.number),
    ) {
        (Some(name), _) => (Some(PortRef::Name(name.clone())), name),
        (None, Some(number)) => {
            let resolved = service_port_name(objects, namespace, &service.name, number);
            match resolved {
                Some(found) => (found, number.to_string()),
                None => {
                    report.add(
                        Differs,
                        id,
                        "backend.service.port.number",
                        format!("{}:{number}: the Service is not among the manifests, so {number} is taken as the pods' port; if the Service maps it to another targetPort, set `port` to the Service port's name", service.name),
                    );
                    (
                        u16::try_from(number).ok().map(PortRef::Number),
                        number.to_string(),
                    )
                }
            }
        }
        (None, None) => (None, String::new()),
    };
    let out = ServiceOut {
        bindings: vec![Binding {
            namespace: namespace.to_string(),
            service: service.name.clone(),
            port,
        }],
        protocol: settings.backend_protocol,
        tls_verify: false,
        read_timeout_ms: settings.read_timeout_s.map(|s| s * 1000),
        write_timeout_ms: settings.send_timeout_s.map(|s| s * 1000),
        connect_timeout_ms: settings.connect_timeout_s.map(|s| s * 1000),
        hash_key: settings.hash_key.clone(),
    };
    Some(model.add_service(
        slug(&[namespace, &service.name, &label]).trim_end_matches('-'),
        out,
    ))
}

/// What a Service port number is called in EndpointSlices: the Service port's name; None
/// inside when the port has no name (a one-port Service, whose slices have one port).
pub(crate) fn service_port_name(
    objects: &Objects,
    namespace: &str,
    service: &str,
    number: i32,
) -> Option<Option<PortRef>> {
    let found = objects.services.iter().find(|s| {
        s.metadata.name.as_deref() == Some(service)
            && s.metadata.namespace.as_deref().unwrap_or("default") == namespace
    })?;
    let port = found
        .spec
        .as_ref()?
        .ports
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|p| p.port == number)?;
    Some(
        port.name
            .clone()
            .filter(|n| !n.is_empty())
            .map(PortRef::Name),
    )
}

/// The plugin instances an Ingress's annotations ask for, by name, in the order they run;
/// `users`: those of its basic authentication's Secret, when known.
fn plugins_of(
    settings: &Settings,
    users: Option<&[(String, String)]>,
    namespace: &str,
    name: &str,
    model: &mut Model,
) -> Vec<String> {
    let mut out = Vec::new();
    let strings = |items: &[String]| -> Array { items.iter().map(String::as_str).collect() };
    let mut add = |kind: &str, fill: &dyn Fn(&mut Table)| {
        let mut table = Table::new();
        table["type"] = value(kind);
        fill(&mut table);
        out.push(model.add_plugin(&slug(&[namespace, name, kind]), table));
    };
    if !settings.allow.is_empty() || !settings.deny.is_empty() {
        add("ip-restriction", &|t| {
            if !settings.allow.is_empty() {
                t["allow"] = value(strings(&settings.allow));
            }
            if !settings.deny.is_empty() {
                t["deny"] = value(strings(&settings.deny));
            }
        });
    }
    if let Some(cors) = &settings.cors {
        add("cors", &|t| {
            t["origins"] = value(strings(&cors.origins));
            t["methods"] = value(strings(&cors.methods));
            t["headers"] = value(strings(&cors.headers));
            if !cors.expose.is_empty() {
                t["expose_headers"] = value(strings(&cors.expose));
            }
            t["credentials"] = value(cors.credentials);
            t["max_age_seconds"] = value(cors.max_age as i64);
        });
    }
    if let Some(basic) = &settings.basic_auth {
        add("basic-auth", &|t| {
            t["realm"] = value(basic.realm.as_str());
            if let Some(users) = users {
                let mut list = Array::new();
                for (user, hash) in users {
                    let mut entry = toml_edit::InlineTable::new();
                    entry.insert("username", user.as_str().into());
                    entry.insert("password_hash", hash.as_str().into());
                    list.push(entry);
                }
                // Even when none is usable (weak hashes only, reported): an empty list lets
                // nobody in, where no list would let every consumer in.
                t["users"] = value(list);
            }
        });
    }
    if settings.limit_rps.is_some()
        || settings.limit_rpm.is_some()
        || settings.limit_connections.is_some()
    {
        add("key-rate-limit", &|t| {
            t["key"] = value("client_ip");
            let mut limits = Array::new();
            for (per, count) in [
                ("second", settings.limit_rps),
                ("minute", settings.limit_rpm),
            ] {
                if let Some(count) = count {
                    let mut window = toml_edit::InlineTable::new();
                    window.insert("per", per.into());
                    window.insert("count", (count as i64).into());
                    limits.push(window);
                }
            }
            if !limits.is_empty() {
                t["limits"] = value(limits);
            }
            if let Some(n) = settings.limit_connections {
                t["concurrency"] = value(i64::from(n));
            }
        });
    }
    if let Some(max) = settings.body_size {
        add("request-size", &|t| {
            t["max_bytes"] = value(max as i64);
        });
    }
    out
}
