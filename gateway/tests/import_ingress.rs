#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! `tidegate import-ingress`: ingress-nginx manifests (written for these tests, in
//! `tests/ingress/`) in, a Tidegate config and a report out — compared with golden files,
//! accepted by the real `tidegate check`, and served: the translated config routes through
//! a real gateway to pods found by its kube watchers (the API server stand-in of
//! `support/kube_api.rs`) as the Ingresses route on ingress-nginx.
//!
//! After an intended change of the translation, `TIDEGATE_BLESS=1 cargo test --test
//! import_ingress` rewrites the golden files; review their diff like code.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::kube_api::KubeApi;
use support::upstream::Upstream;
use support::{binary, client, eventually, Gateway, TempDir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ingress")
        .join(name)
}

/// Runs `tidegate import-ingress ARGS`: exit code, stdout (the config), stderr (the report).
fn import(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .arg("import-ingress")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn golden(name: &str, got: &str) {
    let path = fixture(name);
    if std::env::var_os("TIDEGATE_BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    if want != got {
        panic!(
            "{} differs from the translation (TIDEGATE_BLESS=1 rewrites it):\n--- got ---\n{got}",
            path.display()
        );
    }
}

fn chat_and_admin() -> [String; 2] {
    [
        fixture("chat.yaml").display().to_string(),
        fixture("admin.yaml").display().to_string(),
    ]
}

#[test]
fn the_translation_and_its_report_match_the_golden_files() {
    let [chat, admin] = chat_and_admin();
    let (code, config, report) = import(&["--ingress-class", "nginx", &chat, &admin]);
    assert_eq!(code, 0, "{report}");
    golden("expected.toml", &config);
    golden("expected.report", &report);
    // What the report must say, whatever the golden files say.
    for must in [
        "skipped: web/blog (class \"traefik\")",
        "chat/chat-weighted: canary-weight:",
        "ops/console: configuration-snippet: raw nginx configuration cannot be translated",
        "chat/chat: session-cookie-max-age:",
    ] {
        assert!(report.contains(must), "report lacks {must:?}:\n{report}");
    }
    // --strict fails on what is not translated; without a class filter every Ingress is read.
    let (code, _, _) = import(&["--strict", &chat, &admin]);
    assert_eq!(code, 1);
    let (_, _, report) = import(&[&chat, &admin]);
    assert!(report.contains("6 Ingress(es)"), "{report}");
    // Broken input is refused with where it is.
    let dir = TempDir::new("import-bad");
    std::fs::write(
        dir.path("bad.yaml"),
        "kind: Ingress\napiVersion: extensions/v1beta1\n",
    )
    .unwrap();
    let (code, _, report) = import(&[&dir.path("bad.yaml").display().to_string()]);
    assert_eq!(code, 2);
    assert!(
        report.contains("bad.yaml, document 1: Ingress of extensions/v1beta1"),
        "{report}"
    );
}

#[test]
fn the_imported_config_is_accepted_by_tidegate_check() {
    let dir = TempDir::new("import-check");
    let tls = dir.path("tls");
    let certs = dir.path("certs");
    let made =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-cert.sh"))
            .arg(&certs)
            .args(["chat.example.com", "grpc.example.com"])
            .output()
            .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    for (secret, name) in [
        ("chat-example-com", "chat.example.com"),
        ("grpc-example-com", "grpc.example.com"),
    ] {
        std::fs::create_dir_all(tls.join(secret)).unwrap();
        std::fs::copy(
            certs.join(format!("{name}.pem")),
            tls.join(secret).join("tls.crt"),
        )
        .unwrap();
        std::fs::copy(
            certs.join(format!("{name}.key")),
            tls.join(secret).join("tls.key"),
        )
        .unwrap();
    }
    let [chat, admin] = chat_and_admin();
    let out = dir.path("imported.toml");
    let (code, _, report) = import(&[
        "--ingress-class",
        "nginx",
        "--tls-dir",
        &tls.display().to_string(),
        "-o",
        &out.display().to_string(),
        &chat,
        &admin,
    ]);
    assert_eq!(code, 0, "{report}");
    let check = Command::new(binary())
        .arg("check")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("ok (15 routes, 6 services)"));
}

/// The upstream's name, the path it saw, or the gateway's own status.
async fn get(
    http: &reqwest::Client,
    gw: &Gateway,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> String {
    let mut req = http.get(gw.url(path)).header("host", host);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    if status != 200 {
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        return format!("{status} {}", location.unwrap_or_default())
            .trim()
            .to_string();
    }
    let body = support::body_json(resp).await;
    format!(
        "{} {}",
        body["server"].as_str().unwrap(),
        body["target"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_imported_config_routes_as_the_ingresses_did() {
    let api = KubeApi::start().await;
    let chat = Upstream::start("chat").await;
    let next = Upstream::start("chat-next").await;
    let shop_api = Upstream::start("api").await;
    let console = Upstream::start("console").await;
    let api_next = Upstream::start("api-next").await;
    for (service, port_name, upstream) in [
        ("api-next", "web", &api_next),
        ("chat", "http", &chat),
        ("chat-next", "http", &next),
        ("api", "web", &shop_api),
        ("console", "http", &console),
    ] {
        api.serve_pod("shop", service, port_name, upstream.addr.port());
    }
    let (code, config, report) = import(&[&fixture("routing.yaml").display().to_string()]);
    assert_eq!(code, 0, "{report}");
    // In the cluster the section is empty; here it names the stand-in.
    let config = config.replace(
        "[kubernetes]\n",
        &format!("[kubernetes]\napi_server = \"{}\"\n", api.url()),
    );
    let gw = Gateway::start(&config);
    let http = client();
    let ready = eventually(Duration::from_secs(5), || async {
        get(&http, &gw, "shop.example.com", "/ws", &[]).await == "chat /ws"
    })
    .await;
    assert!(ready, "{}", gw.stderr());
    // Host, path, request headers, what answers.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        // Prefix: the path and what is below it, never a longer name.
        ("shop.example.com", "/ws/room/7", &[], "chat /ws/room/7"),
        ("shop.example.com", "/wsx", &[], "404"),
        // The canary by header, exact on its value; "never" stays on the main service.
        (
            "shop.example.com",
            "/ws",
            &[("x-canary", "always")],
            "chat-next /ws",
        ),
        (
            "shop.example.com",
            "/ws/x",
            &[("x-canary", "always")],
            "chat-next /ws/x",
        ),
        (
            "shop.example.com",
            "/ws",
            &[("x-canary", "never")],
            "chat /ws",
        ),
        // The canary by cookie: "always" (in any cookie header), nothing else.
        (
            "shop.example.com",
            "/ws",
            &[("cookie", "a=1; shop_canary=always")],
            "chat-next /ws",
        ),
        (
            "shop.example.com",
            "/ws",
            &[("cookie", "shop_canary=never")],
            "chat /ws",
        ),
        // A Service port by number, found by the Service's port name in the manifests.
        (
            "shop.example.com",
            "/api/orders?id=3",
            &[],
            "api /api/orders?id=3",
        ),
        // A canary by weight (100 of 100 here, so the answer is certain): the main route
        // goes to a service bound to both Services, split by their name.
        ("shop.example.com", "/exact", &[], "api-next /exact"),
        ("shop.example.com", "/exact/more", &[], "404"),
        // Another host: nothing of shop's.
        ("other.example.com", "/ws", &[], "404"),
        // rewrite-target /$2 on /admin(/|$)(.*): the prefix is gone upstream.
        ("ops.example.com", "/admin/users/1", &[], "console /users/1"),
        ("ops.example.com", "/admin", &[], "console /"),
        // app-root.
        ("ops.example.com", "/", &[], "302 /admin/home"),
        // Basic authentication by the htpasswd Secret's users: its bcrypt user only.
        ("private.example.com", "/x", &[], "401"),
        (
            "private.example.com",
            "/x",
            &[("authorization", "Basic b2xnYTpvbGdhLXB3")],
            "console /x",
        ),
        (
            "private.example.com",
            "/x",
            &[("authorization", "Basic dmljOnZpYy1wdw==")],
            "401",
        ),
    ];
    for (host, path, headers, want) in cases {
        let got = get(&http, &gw, host, path, headers).await;
        assert_eq!(&got, want, "{host}{path} ({headers:?})");
    }
}

#[test]
fn the_gateway_api_translation_matches_its_golden_files_and_passes_check() {
    let file = fixture("gateway-api.yaml").display().to_string();
    let (code, config, report) = import(&[&file]);
    assert_eq!(code, 0, "{report}");
    golden("expected-gateway-api.toml", &config);
    golden("expected-gateway-api.report", &report);
    // Only the routes of Tidegate's GatewayClass; what does not map is said.
    assert!(report.contains("3 Gateway API route(s)"), "{report}");
    assert!(
        !config.contains("blog"),
        "a route of another class was translated"
    );
    assert!(config.contains("query = { debug = \"1\" }"), "{config}");
    let dir = TempDir::new("import-gw-check");
    let certs = dir.path("certs");
    let made =
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-test-cert.sh"))
            .arg(&certs)
            .arg("*.example.com")
            .output()
            .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let secret = dir.path("tls/wildcard-example-com");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::copy(
        certs.join("wildcard.example.com.pem"),
        secret.join("tls.crt"),
    )
    .unwrap();
    std::fs::copy(
        certs.join("wildcard.example.com.key"),
        secret.join("tls.key"),
    )
    .unwrap();
    let out = dir.path("gw.toml");
    let tls = dir.path("tls").display().to_string();
    let (code, _, report) = import(&["--tls-dir", &tls, "-o", &out.display().to_string(), &file]);
    assert_eq!(code, 0, "{report}");
    let check = Command::new(binary())
        .arg("check")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_api_translation_routes_as_the_httproutes_say() {
    let api = KubeApi::start().await;
    let upstreams = [
        ("api", "web", Upstream::start("api").await),
        ("chat", "http", Upstream::start("chat").await),
        ("chat-next", "http", Upstream::start("chat-next").await),
        ("console", "http", Upstream::start("console").await),
    ];
    for (service, port_name, upstream) in &upstreams {
        api.serve_pod("shop", service, port_name, upstream.addr.port());
    }
    let invoices = Upstream::start("invoices").await;
    api.serve_pod("billing", "invoices", "http", invoices.addr.port());
    let payroll = Upstream::start("payroll").await;
    api.serve_pod("hr", "payroll", "http", payroll.addr.port());
    let (code, config, report) = import(&[&fixture("gateway-api.yaml").display().to_string()]);
    assert_eq!(code, 0, "{report}");
    // The pods' ports here are the upstreams' own, so the backends are bound by port name,
    // and the certificate (served on no listener in this test) is left out.
    let config = config
        .replace(
            "[kubernetes]\n",
            &format!("[kubernetes]\napi_server = \"{}\"\n", api.url()),
        )
        .replace("port = 8080 }", "port = \"http\" }")
        .replace("port = 3000 }", "port = \"http\" }");
    let config = match config.find("[[certificates]]") {
        Some(start) => {
            let end = config[start..]
                .find("\n\n")
                .map_or(config.len(), |e| start + e + 2);
            format!("{}{}", &config[..start], &config[end..])
        }
        None => config,
    };
    let gw = Gateway::start(&config);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let send = |host: &'static str,
                path: &'static str,
                headers: &'static [(&'static str, &'static str)]| {
        let (http, url) = (http.clone(), gw.url(path));
        async move {
            let mut req = http.get(url).header("host", host);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send().await.unwrap()
        }
    };
    let ready = eventually(Duration::from_secs(5), || async {
        send("shop.example.com", "/ws", &[]).await.status() == 200
    })
    .await;
    assert!(ready, "{}", gw.stderr());
    // A header match, and the header modifiers on both sides.
    let resp = send(
        "shop.example.com",
        "/api/orders",
        &[("x-tenant", "acme"), ("x-debug", "1")],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let seen = support::body_json(resp).await;
    assert_eq!(seen["server"], "api");
    assert_eq!(seen["headers"]["x-env"], "prod");
    assert_eq!(seen["headers"]["x-via"], "tidegate");
    assert!(seen["headers"]["x-debug"].is_null(), "{seen}");
    assert_eq!(
        send("shop.example.com", "/api/orders", &[("x-tenant", "other")])
            .await
            .status(),
        404
    );
    // A method match.
    assert_eq!(
        send("shop.example.com", "/api/health", &[]).await.status(),
        200
    );
    let post = http
        .post(gw.url("/api/health"))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    // Weighted backendRefs: 90/10 between two Services.
    let mut next = 0;
    for _ in 0..500 {
        let seen = support::body_json(send("shop.example.com", "/ws/room", &[]).await).await;
        if seen["server"] == "chat-next" {
            next += 1;
        }
    }
    assert!(
        (25..=75).contains(&next),
        "chat-next {next} of 500 (want 50 ± 25)"
    );
    // RequestRedirect to a path, URLRewrite of the prefix, the HTTPS redirect, a host of no
    // listener.
    let resp = send("shop.example.com", "/old/page", &[]).await;
    assert_eq!(
        (
            resp.status().as_u16(),
            resp.headers()["location"].to_str().unwrap()
        ),
        (301, "/new")
    );
    // … and a query parameter match (decoded, so `%31` is `1`).
    for (path, want) in [
        ("/console/users?debug=1", "/users?debug=1"),
        ("/console/users?x=2&debug=%31", "/users?x=2&debug=%31"),
    ] {
        let seen = support::body_json(send("shop.example.com", path, &[]).await).await;
        assert_eq!(
            (seen["server"].as_str(), seen["target"].as_str()),
            (Some("console"), Some(want))
        );
    }
    for path in ["/console/users", "/console/users?debug=2"] {
        let resp = send("shop.example.com", path, &[]).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
    // A Service of another namespace that allows it by a ReferenceGrant; one that does not
    // (the rule has no usable backend: 500, as the Gateway API says).
    let seen = support::body_json(send("shop.example.com", "/invoices/7", &[]).await).await;
    assert_eq!(seen["server"], "invoices");
    let resp = send("shop.example.com", "/payroll/7", &[]).await;
    assert_eq!(resp.status(), 500);
    let resp = send("secure.example.com", "/x", &[]).await;
    assert_eq!(resp.status(), 308);
    assert!(resp.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("https://secure.example.com"));
    assert_eq!(send("shop.other.org", "/ws", &[]).await.status(), 404);
}
