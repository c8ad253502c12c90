#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! `tidegate ingress-controller` end to end, against the API server stand-in of
//! `support/kube_api.rs` (no kube-apiserver is installable here): two replicas elect a leader
//! with a Lease; the leader translates the Ingresses of its class into a ConfigMap; a real
//! gateway serves that ConfigMap's config (the test copies it into the gateway's config file,
//! as the kubelet does with a mounted ConfigMap) with pods from its own watchers. An Ingress
//! change reaches the gateway without touching an open WebSocket; an Ingress of another
//! class changes nothing; a translation the gateway would refuse is never written; when the
//! leader dies the other replica takes over and keeps translating. In a cluster with the
//! Gateway API (the stand-in serves its group only when told to), HTTPRoutes of Tidegate's
//! GatewayClass are served and their status conditions, and the Gateway's, written back.

mod support;

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::kube_api::{Kind, KubeApi};
use support::upstream::Upstream;
use support::{binary, client, eventually, ws, Gateway, TempDir};

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
                "--config-map",
                "routes",
            ])
            .args([
                "--identity",
                identity,
                "--lease-seconds",
                "3",
                "--api-server",
                &api.url(),
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

fn ingress(name: &str, class: &str, paths: &[(&str, &str, Value)]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|(path, service, port)| {
            json!({"path": path, "pathType": "Prefix",
                   "backend": {"service": {"name": service, "port": port}}})
        })
        .collect();
    json!({"metadata": {"name": name, "namespace": "shop"},
           "spec": {"ingressClassName": class,
                    "rules": [{"host": "shop.example.com", "http": {"paths": paths}}]}})
}

/// The ConfigMap's config as a gateway's, with the stand-in as its API server.
fn config_of(api: &KubeApi) -> Option<(String, String)> {
    let cm = api.get(Kind::ConfigMap, "gateway", "routes")?;
    let text = cm["data"]["tidegate.toml"].as_str()?.to_string();
    let version = cm["metadata"]["resourceVersion"].as_str()?.to_string();
    let text = text.replace(
        "[kubernetes]\n",
        &format!("[kubernetes]\napi_server = \"{}\"\n", api.url()),
    );
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
    api.put(
        Kind::IngressClass,
        "",
        json!({"metadata": {"name": "tidegate"},
        "spec": {"controller": "tidegate.io/ingress-controller"}}),
    );
    api.put(
        Kind::Service,
        "shop",
        json!({"metadata": {"name": "api", "namespace": "shop"},
        "spec": {"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}}),
    );
    api.put_slice(
        "shop",
        "chat-1",
        "chat",
        ("http", chat.addr.port()),
        &[("127.0.0.1", "chat-1", true, false)],
    );
    api.put_slice(
        "shop",
        "api-1",
        "api",
        ("web", shop_api.addr.port()),
        &[("127.0.0.1", "api-1", true, false)],
    );
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
    let report =
        api.get(Kind::ConfigMap, "gateway", "routes").unwrap()["data"]["report.txt"].clone();
    assert!(
        report.as_str().unwrap().contains("1 Ingress(es)"),
        "{report}"
    );

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
    let (version, text) = wait_config(&api, &version, &[&a, &b]).await;
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
    api.put(
        Kind::Service,
        "shop",
        json!({"metadata": {"name": "api", "namespace": "shop"},
        "spec": {"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}}),
    );
    api.put_slice(
        "shop",
        "api-1",
        "api",
        ("web", shop_api.addr.port()),
        &[("127.0.0.1", "api-1", true, false)],
    );
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
