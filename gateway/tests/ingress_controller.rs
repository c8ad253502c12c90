#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! `tidegate ingress-controller` end to end, against the API server stand-in of
//! `support/kube_api.rs` (no kube-apiserver is installable here): two replicas elect a leader
//! with a Lease; the leader translates the Ingresses of its class into the config Secret; a
//! real gateway serves that config (the test writes the Secret's files into a directory, as
//! the kubelet does with a mounted Secret: the config and the certificates of the TLS
//! Secrets it names) with pods from its own watchers. An Ingress
//! change reaches the gateway without touching an open WebSocket; an Ingress of another
//! class changes nothing; a translation the gateway would refuse is never written; when the
//! leader dies the other replica takes over and keeps translating. In a cluster with the
//! Gateway API (the stand-in serves its group only when told to), HTTPRoutes of Tidegate's
//! GatewayClass are served and their status conditions, and the Gateway's, written back.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::kube_api::{Kind, KubeApi};
use support::upstream::Upstream;
use support::{binary, client, eventually, metric_sum, ws, Gateway, TempDir};

/// One controller replica.
struct Controller {
    child: Child,
    dir: TempDir,
}

impl Controller {
    fn start(api: &KubeApi, identity: &str) -> Controller {
        let dir = TempDir::new(&format!("ctl-{identity}"));
        let log = std::fs::File::create(dir.path("stderr.log")).unwrap();
        // The gateways' own sections, put before the translation: here the API server the
        // gateways' pod discovery asks (in a cluster the chart writes this file).
        let base = dir.path("base.toml");
        std::fs::write(
            &base,
            format!("[kubernetes]\napi_server = \"{}\"\n", api.url()),
        )
        .unwrap();
        let child = Command::new(binary())
            .args([
                "ingress-controller",
                "--namespace",
                "gateway",
                "--config-secret",
                "routes",
            ])
            .arg("--base")
            .arg(&base)
            .arg("--tls-dir")
            .arg(mount_dir(api))
            .args([
                "--identity",
                identity,
                "--lease-seconds",
                "3",
                "--api-server",
                &api.url(),
                // Where clients reach the gateways: the stand-in's Service gateway/tidegate.
                "--publish-service",
                "gateway/tidegate",
            ])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Controller { child, dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path("stderr.log")).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certificate and key for `name` in `dir` (NAME.pem, NAME.key).
fn make_cert(dir: &TempDir, name: &str) {
    support::tls::Certs::make_in(dir, &[name]);
}

/// The IngressClass `tidegate`, Tidegate's.
fn put_ingress_class(api: &KubeApi) {
    api.put(
        Kind::IngressClass,
        "",
        json!({"metadata": {"name": "tidegate"},
        "spec": {"controller": "tidegate.io/ingress-controller"}}),
    );
}

/// The Service `shop/api`: port 80, named `web`, to the pods' 8080.
fn put_api_service(api: &KubeApi) {
    api.put(
        Kind::Service,
        "shop",
        json!({"metadata": {"name": "api", "namespace": "shop"},
        "spec": {"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}}),
    );
}

/// The gateways' Service `gateway/tidegate` with these load balancer entries.
fn put_gateway_service(api: &KubeApi, balancer: Value) {
    api.put(
        Kind::Service,
        "gateway",
        json!({"metadata": {"name": "tidegate", "namespace": "gateway"},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}]},
        "status": {"loadBalancer": {"ingress": balancer}}}),
    );
}

/// `status.loadBalancer` of the Ingress `shop/NAME`.
fn load_balancer(api: &KubeApi, name: &str) -> Value {
    api.get(Kind::Ingress, "shop", name)
        .map(|i| i["status"]["loadBalancer"].clone())
        .unwrap_or_default()
}

fn ingress(name: &str, class: &str, paths: &[(&str, &str, Value)]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|(path, service, port)| {
            json!({"path": path, "pathType": "Prefix",
                   "backend": {"service": {"name": service, "port": port}}})
        })
        .collect();
    // TLS from the Secret shop-tls; the test speaks plain HTTP, so no redirect to HTTPS.
    json!({"metadata": {"name": name, "namespace": "shop",
                        "annotations": {"nginx.ingress.kubernetes.io/ssl-redirect": "false"}},
           "spec": {"ingressClassName": class,
                    "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
                    "rules": [{"host": "shop.example.com", "http": {"paths": paths}}]}})
}

/// Where the gateways "mount" the config Secret: one directory per stand-in.
fn mount_dir(api: &KubeApi) -> PathBuf {
    std::env::temp_dir().join(format!("tidegate-test-mount-{}", api.addr.port()))
}

/// One key of the config Secret, decoded.
fn secret_file(api: &KubeApi, key: &str) -> Option<Vec<u8>> {
    let secret = api.get(Kind::Secret, "gateway", "routes")?;
    let text = secret["data"][key].as_str()?;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap(),
    )
}

/// The config Secret's config and its resourceVersion; its files are written into the
/// mount directory first, as the kubelet would (all of them at once).
fn config_of(api: &KubeApi) -> Option<(String, String)> {
    let secret = api.get(Kind::Secret, "gateway", "routes")?;
    let version = secret["metadata"]["resourceVersion"].as_str()?.to_string();
    let dir = mount_dir(api);
    std::fs::create_dir_all(&dir).unwrap();
    for (key, _) in secret["data"].as_object()? {
        std::fs::write(dir.join(key), secret_file(api, key)?).unwrap();
    }
    let text = String::from_utf8(secret_file(api, "tidegate.toml")?).unwrap();
    Some((version, text))
}

async fn wait_config(
    api: &KubeApi,
    newer_than: &str,
    controllers: &[&Controller],
) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some((version, text)) = config_of(api) {
            if version != newer_than {
                return (version, text);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs: Vec<String> = controllers.iter().map(|c| c.stderr()).collect();
    panic!("no new config in the ConfigMap:\n{}", logs.join("\n----\n"));
}

async fn who(http: &reqwest::Client, gw: &Gateway, path: &str) -> String {
    let resp = http
        .get(gw.url(path))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    match resp.status().as_u16() {
        200 => support::body_json(resp).await["server"]
            .as_str()
            .unwrap()
            .to_string(),
        other => other.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_translates_ingresses_into_the_config_the_gateways_serve() {
    let api = KubeApi::start().await;
    let chat = ws::EchoServer::start().await;
    let shop_api = Upstream::start("api").await;
    put_ingress_class(&api);
    put_api_service(&api);
    put_gateway_service(&api, json!([{"ip": "203.0.113.7"}]));
    api.serve_pod("shop", "chat", "http", chat.addr.port());
    api.serve_pod("shop", "api", "web", shop_api.addr.port());
    api.put(
        Kind::Ingress,
        "shop",
        ingress(
            "shop",
            "tidegate",
            &[
                ("/ws", "chat", json!({"name": "http"})),
                ("/api", "api", json!({"number": 80})),
            ],
        ),
    );
    api.put(
        Kind::Ingress,
        "shop",
        ingress("blog", "nginx", &[("/blog", "blog", json!({"number": 80}))]),
    );
    // An Ingress with an annotation Tidegate does not translate: an Event says so.
    let mut snippet = ingress(
        "legacy",
        "tidegate",
        &[("/legacy", "api", json!({"number": 80}))],
    );
    snippet["metadata"]["annotations"]["nginx.ingress.kubernetes.io/configuration-snippet"] =
        json!("more_set_headers \"X-A: b\";");
    api.put(Kind::Ingress, "shop", snippet);

    let certs = TempDir::new("ctl-certs");
    make_cert(&certs, "shop.example.com");
    let b64 = |file: &str| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(certs.path(file)).unwrap())
    };
    api.put(
        Kind::Secret,
        "shop",
        json!({"metadata": {"name": "shop-tls", "namespace": "shop"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64("shop.example.com.pem"), "tls.key": b64("shop.example.com.key")}}),
    );
    // A Secret of another type is not a certificate.
    api.put(
        Kind::Secret,
        "shop",
        json!({"metadata": {"name": "db", "namespace": "shop"},
        "type": "Opaque", "data": {"password": "c2VjcmV0"}}),
    );

    let (a, b) = (
        Controller::start(&api, "ctl-a"),
        Controller::start(&api, "ctl-b"),
    );
    let (version, text) = wait_config(&api, "", &[&a, &b]).await;
    assert!(text.contains("shop.example.com"), "{text}");
    assert_eq!(text.matches("[kubernetes]").count(), 1, "{text}");
    assert!(
        !text.contains("/blog"),
        "an Ingress of another class was translated:\n{text}"
    );
    let lease = api
        .get(Kind::Lease, "gateway", "tidegate-ingress-controller")
        .unwrap();
    let leader = lease["spec"]["holderIdentity"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(leader == "ctl-a" || leader == "ctl-b", "{lease}");
    let report = String::from_utf8(secret_file(&api, "report.txt").unwrap()).unwrap();
    assert!(report.contains("2 Ingress(es)"), "{report}");
    let told = eventually(Duration::from_secs(5), || async {
        api.list(Kind::EventV1, "shop").iter().any(|e| {
            e["regarding"]["name"] == "legacy"
                && e["type"] == "Warning"
                && e["reason"] == "NotTranslated"
                && e["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("configuration-snippet"))
        })
    })
    .await;
    assert!(
        told,
        "no Event on the Ingress: {:?}",
        api.list(Kind::EventV1, "shop")
    );
    let events_before = api.list(Kind::EventV1, "shop").len();
    // Where clients reach the gateways, on the Ingresses of the class (what `kubectl get
    // ingress` and external-dns read) — not on another class's; it follows the Service.
    let published = eventually(Duration::from_secs(5), || async {
        load_balancer(&api, "shop") == json!({"ingress": [{"ip": "203.0.113.7"}]})
            && load_balancer(&api, "legacy") == json!({"ingress": [{"ip": "203.0.113.7"}]})
    })
    .await;
    assert!(
        published,
        "{:?} {}{}",
        api.get(Kind::Ingress, "shop", "shop"),
        a.stderr(),
        b.stderr()
    );
    assert_eq!(load_balancer(&api, "blog"), Value::Null);
    put_gateway_service(&api, json!([{"hostname": "lb-1.elb.example.com"}]));
    let followed = eventually(Duration::from_secs(5), || async {
        load_balancer(&api, "shop") == json!({"ingress": [{"hostname": "lb-1.elb.example.com"}]})
    })
    .await;
    assert!(followed, "{}", load_balancer(&api, "shop"));
    // The TLS Secret the Ingress names travels with the config, under its namespace's name.
    let cert = std::fs::read(certs.path("shop.example.com.pem")).unwrap();
    assert_eq!(secret_file(&api, "shop.shop-tls.crt").unwrap(), cert);
    let mounted = mount_dir(&api).join("shop.shop-tls.crt");
    assert!(text.contains(&mounted.display().to_string()), "{text}");

    let gw = Gateway::start(&text);
    let http = client();
    let ready = eventually(Duration::from_secs(5), || async {
        who(&http, &gw, "/api/x").await == "api"
    })
    .await;
    assert!(ready, "{}", gw.stderr());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            gw.addr()
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("host", "shop.example.com".parse().unwrap());
    let (mut tunnel, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert!(ws::echo(&mut tunnel, "before").await);

    // A new path: written by the leader, applied by the gateway, the tunnel untouched.
    api.put(
        Kind::Ingress,
        "shop",
        ingress(
            "shop",
            "tidegate",
            &[
                ("/ws", "chat", json!({"name": "http"})),
                ("/api", "api", json!({"number": 80})),
                ("/orders", "api", json!({"number": 80})),
            ],
        ),
    );
    let (_, text) = wait_config(&api, &version, &[&a, &b]).await;
    // The report travels with the config (the same mounted directory).
    std::fs::write(
        gw.dir.path("report.json"),
        secret_file(&api, "report.json").unwrap(),
    )
    .unwrap();
    gw.write_config(&text);
    let followed = eventually(Duration::from_secs(5), || async {
        who(&http, &gw, "/orders/1").await == "api"
    })
    .await;
    assert!(followed, "{}", gw.stderr());
    assert!(
        ws::echo(&mut tunnel, "after the change").await,
        "the change cut a tunnel"
    );
    assert!(chat.close_codes.lock().await.is_empty());
    // The gateway says what its config left out; the Event was not published again.
    let status = gw.config_status().await;
    let left_out = &status["translation"]["unsupported"];
    assert_eq!(left_out[0]["what"], "configuration-snippet", "{status}");
    assert_eq!(left_out[0]["object"], "shop/legacy", "{status}");
    let counted = eventually(Duration::from_secs(5), || async {
        metric_sum(&gw.metrics().await, "tidegate_translation_unsupported") == 1.0
    })
    .await;
    assert!(counted, "{}", gw.metrics().await);
    assert_eq!(
        api.list(Kind::EventV1, "shop").len(),
        events_before,
        "an Event was published again"
    );

    // A renewed certificate (cert-manager replacing the Secret's data) travels on its own.
    make_cert(&certs, "renewed.example.com");
    api.put(Kind::Secret, "shop", json!({"metadata": {"name": "shop-tls", "namespace": "shop"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64("renewed.example.com.pem"), "tls.key": b64("renewed.example.com.key")}}));
    let renewed = std::fs::read(certs.path("renewed.example.com.pem")).unwrap();
    let followed = eventually(Duration::from_secs(10), || async {
        secret_file(&api, "shop.shop-tls.crt").as_deref() == Some(renewed.as_slice())
    })
    .await;
    assert!(
        followed,
        "the renewed certificate was not copied:\n{}{}",
        a.stderr(),
        b.stderr()
    );

    let (version, _) = config_of(&api).unwrap();

    // A translation the gateways would refuse (a regex that does not compile) is not written.
    let mut bad = ingress(
        "shop",
        "tidegate",
        &[("/ws(", "chat", json!({"name": "http"}))],
    );
    bad["metadata"]["annotations"] = json!({"nginx.ingress.kubernetes.io/use-regex": "true"});
    api.put(Kind::Ingress, "shop", bad);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        config_of(&api).unwrap().0,
        version,
        "a refused translation was written"
    );
    let logs = format!("{}{}", a.stderr(), b.stderr());
    assert!(logs.contains("would be refused by the gateways"), "{logs}");

    // The leader dies: the other replica takes the Lease over once it expires (3 s) and
    // translates the next change.
    let (dead, alive) = if leader == "ctl-a" { (a, b) } else { (b, a) };
    drop(dead);
    api.put(
        Kind::Ingress,
        "shop",
        ingress(
            "shop",
            "tidegate",
            &[
                ("/ws", "chat", json!({"name": "http"})),
                ("/checkout", "api", json!({"number": 80})),
            ],
        ),
    );
    let (_, text) = wait_config(&api, &version, &[&alive]).await;
    assert!(text.contains("/checkout/"), "{text}");
    let lease = api
        .get(Kind::Lease, "gateway", "tidegate-ingress-controller")
        .unwrap();
    assert_ne!(
        lease["spec"]["holderIdentity"].as_str().unwrap(),
        leader,
        "{lease}"
    );
    assert!(
        lease["spec"]["leaseTransitions"].as_i64().unwrap() >= 1,
        "{lease}"
    );
}

/// The status conditions of `object`'s `status.conditions` (or of its first parent's, for
/// routes) as `type=status/reason`.
fn conditions(object: &Value) -> Vec<String> {
    let list = object["status"]["conditions"]
        .as_array()
        .or_else(|| object["status"]["parents"][0]["conditions"].as_array())
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|c| {
            format!(
                "{}={}/{}",
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn wait_conditions(
    api: &KubeApi,
    kind: Kind,
    ns: &str,
    name: &str,
    want: &[&str],
    ctl: &Controller,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while Instant::now() < deadline {
        got = api
            .get(kind, ns, name)
            .map(|o| conditions(&o))
            .unwrap_or_default();
        if got == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{kind:?} {ns}/{name}: conditions {got:?}, want {want:?}:\n{}",
        ctl.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_routes_are_served_and_their_status_is_written_back() {
    let api = KubeApi::start().await;
    api.set_gateway_api(true);
    let shop_api = Upstream::start("api").await;
    put_api_service(&api);
    api.serve_pod("shop", "api", "web", shop_api.addr.port());
    api.put(
        Kind::GatewayClass,
        "",
        json!({"metadata": {"name": "tidegate", "generation": 1},
        "spec": {"controllerName": "tidegate.io/gateway-controller"}}),
    );
    api.put(
        Kind::Gateway,
        "shop",
        json!({"metadata": {"name": "edge", "namespace": "shop", "generation": 1},
        "spec": {"gatewayClassName": "tidegate", "listeners": [
            {"name": "http", "port": 80, "protocol": "HTTP", "hostname": "*.example.com"}]}}),
    );
    api.put(
        Kind::HTTPRoute,
        "shop",
        json!({"metadata": {"name": "shop", "namespace": "shop", "generation": 1},
        "spec": {"parentRefs": [{"name": "edge"}], "hostnames": ["shop.example.com"],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                            "backendRefs": [{"name": "api", "port": 80}]}]}}),
    );
    api.put(Kind::HTTPRoute, "shop", json!({"metadata": {"name": "elsewhere", "namespace": "shop", "generation": 1},
        "spec": {"parentRefs": [{"name": "edge"}], "hostnames": ["other.example.com"],
                 "rules": [{"backendRefs": [{"name": "api", "namespace": "billing", "port": 80}]}]}}));

    let ctl = Controller::start(&api, "ctl-a");
    let (version, text) = wait_config(&api, "", &[&ctl]).await;
    let gw = Gateway::start(&text);
    let http = client();
    let served = eventually(Duration::from_secs(5), || async {
        who(&http, &gw, "/api/orders").await == "api"
    })
    .await;
    assert!(served, "{text}\n{}", gw.stderr());

    wait_conditions(
        &api,
        Kind::GatewayClass,
        "",
        "tidegate",
        &["Accepted=True/Accepted"],
        &ctl,
    )
    .await;
    wait_conditions(
        &api,
        Kind::Gateway,
        "shop",
        "edge",
        &["Accepted=True/Accepted", "Programmed=True/Programmed"],
        &ctl,
    )
    .await;
    wait_conditions(
        &api,
        Kind::HTTPRoute,
        "shop",
        "shop",
        &["Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs"],
        &ctl,
    )
    .await;
    wait_conditions(
        &api,
        Kind::HTTPRoute,
        "shop",
        "elsewhere",
        &[
            "Accepted=True/Accepted",
            "ResolvedRefs=False/RefNotPermitted",
        ],
        &ctl,
    )
    .await;
    // A ReferenceGrant in billing (v1beta1, as the stand-in serves it) lets the route use it.
    api.put(
        Kind::ReferenceGrant,
        "billing",
        json!({"metadata": {"name": "from-shop", "namespace": "billing"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "shop"}],
                 "to": [{"group": "", "kind": "Service"}]}}),
    );
    wait_conditions(
        &api,
        Kind::HTTPRoute,
        "shop",
        "elsewhere",
        &["Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs"],
        &ctl,
    )
    .await;
    let (version, text) = wait_config(&api, &version, &[&ctl]).await;
    assert!(text.contains("namespace = \"billing\""), "{text}");
    // The Gateway's addresses: the gateways' Service has no load balancer yet, so none —
    // then its address once it has one.
    let gateway = api.get(Kind::Gateway, "shop", "edge").unwrap();
    assert_eq!(gateway["status"]["addresses"], json!([]), "{gateway}");
    put_gateway_service(&api, json!([{"ip": "203.0.113.9"}]));
    let addressed = eventually(Duration::from_secs(5), || async {
        api.get(Kind::Gateway, "shop", "edge").unwrap()["status"]["addresses"]
            == json!([{"type": "IPAddress", "value": "203.0.113.9"}])
    })
    .await;
    assert!(addressed, "{}", ctl.stderr());
    let route = api.get(Kind::HTTPRoute, "shop", "shop").unwrap();
    assert_eq!(
        route["status"]["parents"][0]["controllerName"],
        "tidegate.io/gateway-controller"
    );
    assert_eq!(route["status"]["parents"][0]["parentRef"]["name"], "edge");

    // A route the gateways would refuse: nothing is written, and the Gateway says why.
    api.put(
        Kind::HTTPRoute,
        "shop",
        json!({"metadata": {"name": "broken", "namespace": "shop", "generation": 1},
        "spec": {"parentRefs": [{"name": "edge"}], "hostnames": ["shop.example.com"],
                 "rules": [{"matches": [{"path": {"type": "RegularExpression", "value": "/x("}}],
                            "backendRefs": [{"name": "api", "port": 80}]}]}}),
    );
    wait_conditions(
        &api,
        Kind::Gateway,
        "shop",
        "edge",
        &["Accepted=True/Accepted", "Programmed=False/Invalid"],
        &ctl,
    )
    .await;
    assert_eq!(
        config_of(&api).unwrap().0,
        version,
        "a refused translation was written"
    );
    let gateway = api.get(Kind::Gateway, "shop", "edge").unwrap();
    assert!(
        gateway["status"]["conditions"][1]["message"]
            .as_str()
            .unwrap()
            .contains("would refuse"),
        "{gateway}"
    );
}

/// An htpasswd Secret (`auth`) with these lines, as the API server stores it (base64).
fn put_users(api: &KubeApi, lines: &str) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(lines);
    api.put(
        Kind::Secret,
        "shop",
        json!({"metadata": {"name": "admin-users", "namespace": "shop"},
        "type": "Opaque", "data": {"auth": encoded}}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_authentication_takes_the_users_of_its_secret_and_follows_their_changes() {
    // bcrypt of "olga-pw" (cost 5).
    const OLGA: &str = "$2b$05$LO3G24OQIQHzSJa7Ecxi1u2v.AAWI7VxEm9o9Ss9Ww5OQSKvgG36W";
    let api = KubeApi::start().await;
    let shop_api = Upstream::start("api").await;
    put_ingress_class(&api);
    put_api_service(&api);
    api.serve_pod("shop", "api", "web", shop_api.addr.port());
    put_users(&api, &format!("olga:{OLGA}\n"));
    let mut admin = ingress(
        "admin",
        "tidegate",
        &[("/admin", "api", json!({"number": 80}))],
    );
    admin["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-type"] = json!("basic");
    admin["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-secret"] =
        json!("admin-users");
    api.put(Kind::Ingress, "shop", admin);

    let ctl = Controller::start(&api, "ctl-a");
    let (version, text) = wait_config(&api, "", &[&ctl]).await;
    assert!(text.contains("username = \"olga\""), "{text}");
    let gw = Gateway::start(&text);
    let http = client();
    let ready = eventually(Duration::from_secs(5), || async {
        who(&http, &gw, "/admin/x").await == "401"
    })
    .await;
    assert!(ready, "{}", gw.stderr());
    let login = |user: &'static str, password: &'static str| {
        let http = http.clone();
        let url = gw.url("/admin/x");
        async move {
            http.get(url)
                .header("host", "shop.example.com")
                .basic_auth(user, Some(password))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(login("olga", "olga-pw").await, 200);
    assert_eq!(login("olga", "olga-PW").await, 401);
    assert_eq!(login("pat", "olga-pw").await, 401);

    // A user added to the Secret (fetched, not watched: found within the resync period).
    // First the controller settles: its status write on the Ingress is an Ingress change,
    // whose translation would otherwise fetch the Secret for reasons of its own.
    let settled = eventually(Duration::from_secs(5), || async {
        load_balancer(&api, "admin") == json!({})
    })
    .await;
    assert!(settled, "{}", ctl.stderr());
    tokio::time::sleep(Duration::from_millis(1000)).await;
    put_users(&api, &format!("olga:{OLGA}\npat:{OLGA}\n"));
    let (_, text) = wait_config(&api, &version, &[&ctl]).await;
    assert!(text.contains("username = \"pat\""), "{text}");
    gw.write_config(&text);
    let followed = eventually(Duration::from_secs(5), || async {
        login("pat", "olga-pw").await == 200
    })
    .await;
    assert!(followed, "{}", gw.stderr());
}

/// The config Secret `gateway/routes` with this config and these other files.
fn put_config_secret(api: &KubeApi, config: &str, files: &[(&str, Vec<u8>)]) {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut data = serde_json::Map::new();
    data.insert("tidegate.toml".into(), json!(b64(config.as_bytes())));
    for (key, bytes) in files {
        data.insert((*key).into(), json!(b64(bytes)));
    }
    api.put(
        Kind::Secret,
        "gateway",
        json!({"metadata": {"name": "routes", "namespace": "gateway"},
        "type": "Opaque", "data": data}),
    );
}

async fn answer(http: &reqwest::Client, gw: &Gateway) -> String {
    match http.get(gw.url("/v")).send().await {
        Ok(resp) => resp.text().await.unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_following_its_config_secret_serves_a_change_before_the_kubelet_copies_it() {
    let api = KubeApi::start().await;
    let section = format!(
        "[kubernetes]\napi_server = \"{}\"\nconfig_secret = \"gateway/routes\"\n",
        api.url()
    );
    let route = |v: &str| {
        format!("[[routes]]\nname = \"v\"\npath = \"=/v\"\nrespond = {{ body = \"{v}\" }}\n")
    };
    // The mounted copy the gateway starts from; the Secret does not exist yet.
    let gw = Gateway::start(&format!("{section}{}", route("mounted")));
    let http = client();
    assert_eq!(answer(&http, &gw).await, "mounted", "{}", gw.stderr());

    // The controller writes a config naming a certificate of the Secret, under the mount
    // (where the kubelet would put it, later): served from the Secret at once.
    let certs = TempDir::new("follow-certs");
    make_cert(&certs, "shop.example.com");
    let mount = gw.dir.0.display().to_string();
    let with_cert = format!(
        "{section}[[certificates]]\ncert = \"{mount}/shop.shop-tls.crt\"\nkey = \"{mount}/shop.shop-tls.key\"\n{}",
        route("from the secret")
    );
    put_config_secret(
        &api,
        &gw.full_config(&with_cert),
        &[
            (
                "shop.shop-tls.crt",
                std::fs::read(certs.path("shop.example.com.pem")).unwrap(),
            ),
            (
                "shop.shop-tls.key",
                std::fs::read(certs.path("shop.example.com.key")).unwrap(),
            ),
        ],
    );
    let followed = eventually(Duration::from_secs(5), || async {
        answer(&http, &gw).await == "from the secret"
    })
    .await;
    assert!(followed, "{}", gw.stderr());
    assert!(
        !gw.dir.path("shop.shop-tls.crt").exists(),
        "the mount was written"
    );
    let status = gw.config_status().await;
    assert!(
        status["origin"]
            .as_str()
            .is_some_and(|o| o.starts_with("kubernetes secret gateway/routes")),
        "{status}"
    );

    // An older copy arriving in the mount (the kubelet, late) does not undo it …
    gw.write_config(&format!("{section}{}", route("stale mount")));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(answer(&http, &gw).await, "from the secret");
    // … a bad config in the Secret is refused and the last good one serves …
    put_config_secret(
        &api,
        &gw.full_config(&format!("{section}[[routes]]\nname = 1\n")),
        &[],
    );
    let refused = eventually(Duration::from_secs(5), || async {
        !gw.config_status().await["last_refused"].is_null()
    })
    .await;
    assert!(refused, "{}", gw.config_status().await);
    assert_eq!(answer(&http, &gw).await, "from the secret");
    // … and so does an outage of the API server; the next change arrives after it.
    api.down();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(answer(&http, &gw).await, "from the secret");
    api.up().await;
    put_config_secret(
        &api,
        &gw.full_config(&format!("{section}{}", route("after the outage"))),
        &[],
    );
    let followed = eventually(Duration::from_secs(10), || async {
        answer(&http, &gw).await == "after the outage"
    })
    .await;
    assert!(followed, "{}", gw.stderr());
}
