//! The ingress-nginx annotations of one Ingress, read into what Tidegate can do with them.
//! Every `nginx.ingress.kubernetes.io/*` annotation ends in the report: as mapping, as
//! mapping with a difference, or as not translated. Annotations of other controllers
//! (`cert-manager.io/…`, …) are not ingress-nginx's and are left alone.

use super::report::{Report, Verdict};
use std::collections::BTreeMap;

pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// The annotations Tidegate translates, each with what it becomes (docs/kubernetes.md has
/// the same table for people).
pub const SUPPORTED: &[&str] = &[
    "canary",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-cookie",
    "canary-weight",
    "canary-weight-total",
    "proxy-read-timeout",
    "proxy-send-timeout",
    "proxy-connect-timeout",
    "affinity",
    "affinity-mode",
    "session-cookie-name",
    "upstream-hash-by",
    "rewrite-target",
    "use-regex",
    "app-root",
    "ssl-redirect",
    "force-ssl-redirect",
    "whitelist-source-range",
    "allowlist-source-range",
    "denylist-source-range",
    "enable-cors",
    "cors-allow-origin",
    "cors-allow-methods",
    "cors-allow-headers",
    "cors-expose-headers",
    "cors-allow-credentials",
    "cors-max-age",
    "backend-protocol",
    "limit-rps",
    "limit-rpm",
    "limit-connections",
    "proxy-body-size",
    "auth-type",
    "auth-secret",
    "auth-secret-type",
    "auth-realm",
];

#[derive(Debug, Default, Clone)]
pub struct Canary {
    /// `(header, value)`: requests with this header value go to the canary.
    pub by_header: Option<(String, String)>,
    /// A cookie with which `always` picks the canary.
    pub by_cookie: Option<String>,
    /// `(canary-weight, canary-weight-total)`.
    pub weight: Option<(u32, u32)>,
}

#[derive(Debug, Default, Clone)]
pub struct Cors {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub credentials: bool,
    pub max_age: u64,
}

/// What the annotations of one Ingress ask for.
#[derive(Debug, Default, Clone)]
pub struct Settings {
    pub canary: Option<Canary>,
    pub read_timeout_s: Option<u64>,
    pub send_timeout_s: Option<u64>,
    pub connect_timeout_s: Option<u64>,
    pub hash_key: Option<String>,
    pub rewrite_target: Option<String>,
    pub use_regex: bool,
    pub app_root: Option<String>,
    /// `ssl-redirect` (None: the default, on for hosts with TLS).
    pub ssl_redirect: Option<bool>,
    pub force_ssl_redirect: bool,
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    pub cors: Option<Cors>,
    pub backend_protocol: Option<&'static str>,
    pub limit_rps: Option<u64>,
    pub limit_rpm: Option<u64>,
    pub limit_connections: Option<u32>,
    /// `proxy-body-size` in bytes (None: nginx's default 1m applies — not carried over).
    pub body_size: Option<u64>,
    /// `auth-type: basic`.
    pub basic_auth: Option<BasicAuth>,
}

#[derive(Debug, Default, Clone)]
pub struct BasicAuth {
    pub realm: String,
    /// `name` or `namespace/name`.
    pub secret: String,
    /// `auth-secret-type: auth-map` (one key per user) rather than an htpasswd file.
    pub map: bool,
}

fn flag(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// nginx sizes: `8m`, `512k`, `1g`, bytes.
fn size(v: &str) -> Option<u64> {
    let v = v.trim().to_ascii_lowercase();
    let (number, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => v.split_at(i),
        None => (v.as_str(), ""),
    };
    let n: u64 = number.parse().ok()?;
    let unit = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    Some(n * unit)
}

/// nginx variables `upstream-hash-by` commonly uses, as a Tidegate hash key.
fn hash_key(v: &str) -> Option<String> {
    let v = v.trim();
    if v == "$remote_addr" || v == "$binary_remote_addr" {
        return Some("client_ip".into());
    }
    if let Some(h) = v.strip_prefix("$http_") {
        return Some(format!("header:{}", h.replace('_', "-")));
    }
    if let Some(c) = v.strip_prefix("$cookie_") {
        return Some(format!("cookie:{c}"));
    }
    if let Some(a) = v.strip_prefix("$arg_") {
        return Some(format!("query:{a}"));
    }
    None
}

/// Reads the annotations of the Ingress `object` (`namespace/name`), reporting each.
pub fn read(annotations: &BTreeMap<String, String>, object: &str, report: &mut Report) -> Settings {
    let mut s = Settings::default();
    let get = |name: &str| {
        annotations
            .get(&format!("{PREFIX}{name}"))
            .map(String::as_str)
    };
    let mut note = |verdict, what: &str, text: String| report.add(verdict, object, what, text);
    for (key, v) in annotations {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        use Verdict::{Differs, Maps, Unsupported};
        match name {
            "canary" => {
                if flag(v) {
                    s.canary = Some(Canary::default());
                }
                note(
                    Maps,
                    name,
                    "the canary's routes sit beside the main Ingress's, chosen as its canary-* annotations say".into(),
                );
            }
            "canary-by-header" => {
                let value = get("canary-by-header-value").unwrap_or("always");
                if let Some(c) = s.canary.as_mut() {
                    c.by_header = Some((v.to_ascii_lowercase(), value.to_string()));
                }
                note(
                    Differs,
                    name,
                    format!("a route with headers = {{ {v} = \"{value}\" }} to the canary service, tried before the main route; \"never\" and other values reach the main route, as in ingress-nginx"),
                );
            }
            "canary-by-header-value" => note(Maps, name, "the header value of that route".into()),
            "canary-by-header-pattern" => note(
                Unsupported,
                name,
                "routes match header values exactly, not by regex".into(),
            ),
            "canary-by-cookie" => {
                if let Some(c) = s.canary.as_mut() {
                    c.by_cookie = Some(v.trim().to_string());
                }
                note(
                    Differs,
                    name,
                    format!("a route with cookies = {{ {v} = \"always\" }} to the canary service, tried after the canary-by-header route and before the main route; other values reach the main route (or its split), but a canary-by-header of \"never\" does not overrule the cookie as it does in ingress-nginx"),
                );
            }
            "canary-weight" => {
                let total = get("canary-weight-total")
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(100);
                match (v.trim().parse::<u32>(), s.canary.as_mut()) {
                    (Ok(w), Some(c)) if w <= total => {
                        c.weight = Some((w, total));
                        note(
                            Maps,
                            name,
                            format!("the main routes of the same host and path go to a service bound to both Services, split {}/{w} by kubernetes.io/service-name", total - w),
                        );
                    }
                    _ => note(Unsupported, name, format!("{v:?}: a weight from 0 to canary-weight-total on a canary Ingress")),
                }
            }
            "canary-weight-total" => note(Maps, name, "the split's total".into()),
            "proxy-read-timeout" => {
                s.read_timeout_s = v.trim().parse().ok();
                note(
                    if s.read_timeout_s.is_some() { Maps } else { Unsupported },
                    name,
                    "read_timeout_ms of the service and websocket_idle_timeout_ms of the route (nginx's read timeout is a WebSocket's idle timeout too)".into(),
                );
            }
            "proxy-send-timeout" => {
                s.send_timeout_s = v.trim().parse().ok();
                note(
                    if s.send_timeout_s.is_some() { Maps } else { Unsupported },
                    name,
                    "write_timeout_ms of the service".into(),
                );
            }
            "proxy-connect-timeout" => {
                s.connect_timeout_s = v.trim().parse().ok();
                note(
                    if s.connect_timeout_s.is_some() { Maps } else { Unsupported },
                    name,
                    "connect_timeout_ms of the service".into(),
                );
            }
            "affinity" => {
                if v == "cookie" {
                    let cookie = get("session-cookie-name").unwrap_or("INGRESSCOOKIE");
                    s.hash_key = Some(format!("cookie:{cookie}"));
                    note(
                        Differs,
                        name,
                        format!("lb = \"hash\" by cookie {cookie}: consistent hashing on a cookie the application sets; the gateway does not issue it (requests without it are spread)"),
                    );
                } else {
                    note(Unsupported, name, format!("affinity {v:?}"));
                }
            }
            "affinity-mode" => note(
                Differs,
                name,
                "consistent hashing keeps most sessions on their pod when pods change (like balanced), never all (persistent)".into(),
            ),
            "session-cookie-name" => note(Maps, name, "the cookie hashed on".into()),
            "session-cookie-path" | "session-cookie-expires" | "session-cookie-max-age"
            | "session-cookie-samesite" | "session-cookie-secure" | "session-cookie-change-on-failure" => {
                note(Unsupported, name, "the gateway issues no affinity cookie".into());
            }
            "upstream-hash-by" => match hash_key(v) {
                Some(key) => {
                    note(Maps, name, format!("lb = \"hash\" with hash_key = \"{key}\""));
                    s.hash_key = Some(key);
                }
                None => note(
                    Unsupported,
                    name,
                    format!("{v:?}: only $remote_addr, $http_NAME, $cookie_NAME and $arg_NAME"),
                ),
            },
            "rewrite-target" => s.rewrite_target = Some(v.clone()), // judged per path
            "use-regex" => {
                s.use_regex = flag(v);
                note(
                    Differs,
                    name,
                    "regex paths become anchored regex routes (~^PATH), matched case-sensitively (nginx's ~* is not); PREFIX(/|$)(.*) with rewrite-target /$2 becomes a prefix route that strips PREFIX".into(),
                );
            }
            "app-root" => {
                s.app_root = Some(v.clone());
                note(Maps, name, format!("an exact route for / redirecting (302) to {v}"));
            }
            "ssl-redirect" => {
                s.ssl_redirect = Some(flag(v));
                note(Maps, name, "https_redirect on the hosts' routes (308)".into());
            }
            "force-ssl-redirect" => {
                s.force_ssl_redirect = flag(v);
                note(Maps, name, "https_redirect (308, which keeps the method, as ingress-nginx's 308)".into());
            }
            "whitelist-source-range" | "allowlist-source-range" => {
                s.allow = list(v);
                note(Maps, name, "an ip-restriction plugin (allow)".into());
            }
            "denylist-source-range" => {
                s.deny = list(v);
                note(Maps, name, "an ip-restriction plugin (deny)".into());
            }
            "enable-cors" => {
                if flag(v) {
                    let methods = get("cors-allow-methods")
                        .map(list)
                        .unwrap_or_else(|| list("GET, PUT, POST, DELETE, PATCH, OPTIONS"));
                    s.cors = Some(Cors {
                        origins: get("cors-allow-origin").map(list).unwrap_or_else(|| vec!["*".into()]),
                        methods,
                        headers: get("cors-allow-headers").map(list).unwrap_or_else(|| {
                            list("DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization")
                        }),
                        expose: get("cors-expose-headers").map(list).unwrap_or_default(),
                        credentials: get("cors-allow-credentials").is_none_or(flag),
                        max_age: get("cors-max-age").and_then(|m| m.trim().parse().ok()).unwrap_or(1_728_000),
                    });
                    note(Maps, name, "a cors plugin with ingress-nginx's defaults for what is not set".into());
                } else {
                    note(Maps, name, "off: no cors plugin".into());
                }
            }
            "cors-allow-origin" | "cors-allow-methods" | "cors-allow-headers"
            | "cors-expose-headers" | "cors-allow-credentials" | "cors-max-age" => {
                note(Maps, name, "the cors plugin's setting".into());
            }
            "backend-protocol" => {
                s.backend_protocol = match v.to_ascii_uppercase().as_str() {
                    "HTTP" => None,
                    "HTTPS" => Some("https"),
                    "GRPC" => Some("grpc"),
                    "GRPCS" => Some("grpcs"),
                    _ => {
                        note(Unsupported, name, format!("{v:?}: HTTP, HTTPS, GRPC and GRPCS only"));
                        continue;
                    }
                };
                let text = if s.backend_protocol.is_some_and(|p| p.ends_with('s')) {
                    format!("protocol = {:?} with tls.verify = false (ingress-nginx does not verify backends unless proxy-ssl-verify is on)", s.backend_protocol.unwrap_or_default())
                } else {
                    format!("protocol = {:?}", s.backend_protocol.unwrap_or("http"))
                };
                note(Maps, name, text);
            }
            "limit-rps" | "limit-rpm" => {
                let n = v.trim().parse().ok();
                if name == "limit-rps" {
                    s.limit_rps = n;
                } else {
                    s.limit_rpm = n;
                }
                note(
                    if n.is_some() { Differs } else { Unsupported },
                    name,
                    "a key-rate-limit plugin per client address, exact per window (ingress-nginx lets a burst of 5× through first)".into(),
                );
            }
            "limit-connections" => {
                s.limit_connections = v.trim().parse().ok();
                note(
                    if s.limit_connections.is_some() { Maps } else { Unsupported },
                    name,
                    "key-rate-limit concurrency per client address (requests in flight)".into(),
                );
            }
            "limit-burst-multiplier" | "limit-whitelist" | "limit-rate" | "limit-rate-after" => {
                note(Unsupported, name, "no equivalent in the key-rate-limit plugin".into());
            }
            "proxy-body-size" => match size(v) {
                Some(0) => note(Maps, name, "0: no limit (no request-size plugin)".into()),
                Some(n) => {
                    s.body_size = Some(n);
                    note(Maps, name, format!("a request-size plugin, max_bytes = {n}"));
                }
                None => note(Unsupported, name, format!("size {v:?}")),
            },
            "auth-type" => {
                if v == "basic" {
                    let secret = get("auth-secret").unwrap_or("").to_string();
                    let realm = get("auth-realm").unwrap_or("Authentication Required").to_string();
                    let map = get("auth-secret-type") == Some("auth-map");
                    s.basic_auth = Some(BasicAuth { realm, secret: secret.clone(), map });
                    note(
                        Maps,
                        name,
                        format!("a basic-auth plugin whose users are the Secret {secret:?}'s (bcrypt or argon2 hashes)"),
                    );
                } else {
                    note(Unsupported, name, format!("auth-type {v:?} (basic only)"));
                }
            }
            "auth-secret" | "auth-realm" => note(Maps, name, "the basic-auth plugin's setting".into()),
            "auth-secret-type" => match v.as_str() {
                "auth-file" | "auth-map" => note(Maps, name, "how the Secret's users are read".into()),
                other => note(Unsupported, name, format!("{other:?} (auth-file or auth-map)")),
            },
            other => {
                let why = if other.ends_with("-snippet") {
                    "raw nginx configuration cannot be translated"
                } else {
                    "not translated by Tidegate"
                };
                note(Unsupported, other, why.into());
            }
        }
    }
    // The rewrite is judged with the paths (mod.rs); its report line is written there.
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_sizes_and_hash_variables_are_read() {
        assert_eq!(size("8m"), Some(8 << 20));
        assert_eq!(size("512k"), Some(512 << 10));
        assert_eq!(size("100"), Some(100));
        assert_eq!(size("1t"), None);
        assert_eq!(hash_key("$remote_addr").as_deref(), Some("client_ip"));
        assert_eq!(
            hash_key("$http_x_tenant_id").as_deref(),
            Some("header:x-tenant-id")
        );
        assert_eq!(hash_key("$cookie_sid").as_deref(), Some("cookie:sid"));
        assert_eq!(hash_key("$request_uri"), None);
    }

    #[test]
    fn every_ingress_nginx_annotation_is_reported_and_snippets_are_refused() {
        let mut annotations = BTreeMap::new();
        for name in SUPPORTED {
            annotations.insert(format!("{PREFIX}{name}"), "1".to_string());
        }
        annotations.insert(
            format!("{PREFIX}configuration-snippet"),
            "more_set_headers x;".into(),
        );
        annotations.insert("cert-manager.io/cluster-issuer".into(), "le".into());
        let mut report = Report::default();
        read(&annotations, "ns/x", &mut report);
        let reported: std::collections::BTreeSet<&str> =
            report.lines.iter().map(|l| l.what.as_str()).collect();
        for name in SUPPORTED.iter().filter(|n| **n != "rewrite-target") {
            assert!(reported.contains(name), "{name} not reported");
        }
        assert!(report
            .unsupported()
            .any(|l| l.what == "configuration-snippet" && l.note.contains("raw nginx")));
        assert!(!reported.contains("cluster-issuer"));
    }
}
