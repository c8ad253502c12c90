#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! The console's API against a real console process and a real gateway watching the file the
//! console edits: sessions, roles and CSRF; every endpoint with good and bad input; changes
//! served by the gateway; refused changes leave file and gateway untouched; history, restore,
//! masking of secrets, and the fleet view.

mod support;

use serde_json::json;
use std::time::Duration;
use support::{eventually, gateway_get, start, Client};

const BODY: &str = r#"
[[consumers]]
name = "alice"
tenant = "acme"
keys = ["k-alice-secret-1"]

[plugins.auth]
type = "key-auth"

[plugins.tenant-limit]
type = "key-rate-limit"
key = "tenant"
limits = [{ per = "minute", count = 100 }]

[[services]]
name = "chat"
endpoints = [{ addr = "127.0.0.1:9", labels = { stage = "blue" } }, { addr = "127.0.0.1:10", labels = { stage = "green" } }]

[[routes]]
name = "home"
path = "=/"
respond = { status = 200, body = "v1" }

[[routes]]
name = "api"
path = "/api/"
plugins = ["auth", "tenant-limit"]
respond = { status = 200, body = "api" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_roles_and_csrf() {
    let setup = start("auth", BODY);
    let anon = Client::anonymous(&setup);
    for path in [
        "/api/me",
        "/api/config",
        "/api/routes",
        "/api/services",
        "/api/consumers",
        "/api/limits",
        "/api/plugins",
        "/api/history",
        "/api/audit",
        "/api/fleet",
    ] {
        assert_eq!(anon.call("GET", path, None).await.0, 401, "{path}");
    }
    assert_eq!(
        anon.call("PUT", "/api/routes/x", Some(json!({"path": "/x"})))
            .await
            .0,
        401
    );
    assert_eq!(anon.call("POST", "/api/logout", None).await.0, 401);
    // A made-up or stale session cookie is no session.
    let forged = reqwest::Client::builder().no_proxy().build().unwrap();
    for cookie in ["tg_session=0000", "tg_session=", "other=1"] {
        let status = forged
            .get(format!("{}/api/routes", anon.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{cookie}");
    }
    // Unknown API paths are JSON 404s; the UI is served at /.
    assert_eq!(anon.call("GET", "/api/nothing", None).await.0, 404);
    let page = anon
        .http
        .get(format!("{}/", anon.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));

    // The session cookie is HttpOnly and SameSite=Strict.
    let resp = anon
        .http
        .post(format!("{}/api/login", anon.base))
        .json(&json!({"user": "vic", "password": "vic-pw"}))
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    let viewer = Client::login(&setup, "vic", "vic-pw").await;
    let (status, me) = viewer.call("GET", "/api/me", None).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("viewer")));
    // A viewer reads but cannot change anything.
    assert_eq!(viewer.call("GET", "/api/routes", None).await.0, 200);
    let (status, body) = viewer
        .call(
            "PUT",
            "/api/routes/new",
            Some(json!({"path": "/n", "respond": {"status": 200}})),
        )
        .await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("viewers"));
    for (method, path) in [
        ("DELETE", "/api/routes/home"),
        ("POST", "/api/history/1/restore"),
        ("PUT", "/api/limits/tenant-limit"),
    ] {
        assert_eq!(
            viewer
                .call(method, path, Some(json!({"limits": []})))
                .await
                .0,
            403,
            "{method} {path}"
        );
    }

    // An operator without the CSRF header is refused.
    let mut olga = Client::login(&setup, "olga", "olga-pw").await;
    let csrf = std::mem::take(&mut olga.csrf);
    assert_eq!(
        olga.call(
            "PUT",
            "/api/routes/x",
            Some(json!({"path": "/x", "respond": {"status": 200}}))
        )
        .await
        .0,
        403
    );
    olga.csrf = "wrong".into();
    assert_eq!(
        olga.call(
            "PUT",
            "/api/routes/x",
            Some(json!({"path": "/x", "respond": {"status": 200}}))
        )
        .await
        .0,
        403
    );
    olga.csrf = csrf;
    // Logout ends the session.
    assert_eq!(olga.call("POST", "/api/logout", None).await.0, 204);
    assert_eq!(olga.call("GET", "/api/me", None).await.0, 401);

    let vic = Client::login(&setup, "vic", "vic-pw").await;
    // Wrong passwords are refused, then rate limited.
    for _ in 0..5 {
        let (status, _) = anon
            .call(
                "POST",
                "/api/login",
                Some(json!({"user": "olga", "password": "nope"})),
            )
            .await;
        assert_eq!(status, 401);
    }
    let (status, _) = anon
        .call(
            "POST",
            "/api/login",
            Some(json!({"user": "olga", "password": "olga-pw"})),
        )
        .await;
    assert_eq!(status, 429, "the sixth try within five minutes");
    let (status, _) = anon
        .call("POST", "/api/login", Some(json!({"user": "olga"})))
        .await;
    assert!(status == 400 || status == 422, "malformed login: {status}");

    let (_, audit) = vic.call("GET", "/api/audit", None).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"login failed") && actions.contains(&"login"),
        "{actions:?}"
    );
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["user"] == "vic" && e["ok"] == false),
        "denied change audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_gateway_and_bad_ones_change_nothing() {
    let setup = start("changes", BODY);
    let olga = Client::login(&setup, "olga", "olga-pw").await;

    // Create a route; the gateway serves it within 2 s.
    let (status, saved) = olga
        .call("PUT", "/api/routes/orders", Some(json!({"name": "orders", "path": "/orders/", "methods": ["GET"], "respond": {"status": 200, "body": "orders"}})))
        .await;
    assert_eq!(status, 200, "{saved}");
    assert!(
        eventually(Duration::from_secs(2), || async {
            gateway_get(&setup, "/orders/1").await == (200, "orders".into())
        })
        .await,
        "{}",
        setup.gateway.output()
    );
    let (_, routes) = olga.call("GET", "/api/routes", None).await;
    assert!(routes
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "orders" && r["methods"] == json!(["GET"])));

    // An invalid change: 422 naming the field; file and gateway unchanged.
    let before = std::fs::read_to_string(&setup.config_path).unwrap();
    let (status, body) = olga
        .call(
            "PUT",
            "/api/routes/broken",
            Some(json!({"path": "/broken/", "service": "no-such-service"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "service", "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown service"));
    let (status, body) = olga
        .call(
            "PUT",
            "/api/routes/broken2",
            Some(json!({"path": "/b/", "methods": ["FETCH"], "respond": {"status": 200}})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("methods")),
        "{body}"
    );
    let (status, body) = olga
        .call(
            "PUT",
            "/api/routes/x",
            Some(json!({"name": "", "path": "/x"})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("name"))
    );
    assert_eq!(
        olga.call("PUT", "/api/routes/x", Some(json!(["not", "an", "object"])))
            .await
            .0,
        400
    );
    assert_eq!(olga.call("PUT", "/api/routes/x", None).await.0 / 100, 4);
    assert_eq!(std::fs::read_to_string(&setup.config_path).unwrap(), before);
    assert_eq!(gateway_get(&setup, "/broken/").await.0, 404);

    // Rename refuses to overwrite; delete; deleting the unknown is 404.
    assert_eq!(
        olga.call(
            "PUT",
            "/api/routes/orders",
            Some(json!({"name": "home", "path": "/o/"}))
        )
        .await
        .0,
        409
    );
    assert_eq!(olga.call("DELETE", "/api/routes/orders", None).await.0, 204);
    assert_eq!(olga.call("DELETE", "/api/routes/orders", None).await.0, 404);
    assert!(
        eventually(Duration::from_secs(2), || async {
            gateway_get(&setup, "/orders/1").await.0 == 404
        })
        .await
    );

    // Blue/green split.
    let (status, _) = olga
        .call("PUT", "/api/routes/home/split", Some(json!({"split": [{"labels": {"stage": "blue"}, "weight": 50}, {"labels": {"stage": "green"}, "weight": 50}]})))
        .await;
    assert_eq!(
        status, 422,
        "a route that answers directly has no service to split"
    );
    assert_eq!(
        olga.call(
            "PUT",
            "/api/routes/missing/split",
            Some(json!({"split": []}))
        )
        .await
        .0,
        404
    );

    // Limits: the gateway enforces the new one.
    let key = [("x-api-key", "k-alice-secret-1")];
    let (status, body) = olga
        .call(
            "PUT",
            "/api/limits/tenant-limit",
            Some(json!({"limits": [{"per": "minute", "count": 2}], "overrides": {}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://127.0.0.1:{}/api/x", setup.port);
    assert!(
        eventually(Duration::from_secs(3), || async {
            let mut statuses = Vec::new();
            for _ in 0..3 {
                statuses.push(
                    http.get(&url)
                        .header(key[0].0, key[0].1)
                        .send()
                        .await
                        .unwrap()
                        .status()
                        .as_u16(),
                );
            }
            statuses.contains(&429)
        })
        .await,
        "the new limit is not enforced"
    );
    let (status, body) = olga
        .call(
            "PUT",
            "/api/limits/tenant-limit",
            Some(json!({"limits": [{"per": "fortnight", "count": 2}]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        olga.call("PUT", "/api/limits/auth", Some(json!({"limits": []})))
            .await
            .0,
        404
    );
    let (_, limits) = olga.call("GET", "/api/limits", None).await;
    assert_eq!(limits[0]["limits"][0]["count"], 2);

    // History and rollback to the first version: the original routes serve again.
    let (_, history) = olga.call("GET", "/api/history", None).await;
    let first = history.as_array().unwrap().last().unwrap()["version"]
        .as_u64()
        .unwrap();
    let (status, version) = olga
        .call("GET", &format!("/api/history/{first}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(version["text"]
        .as_str()
        .unwrap()
        .contains("name = \"home\""));
    let (_, latest) = olga
        .call(
            "GET",
            &format!("/api/history/{}", history[0]["version"]),
            None,
        )
        .await;
    assert!(
        latest["diff"].as_str().unwrap().contains("count = 2"),
        "{}",
        latest["diff"]
    );
    assert_eq!(olga.call("GET", "/api/history/9999", None).await.0, 404);
    assert_eq!(
        olga.call("POST", "/api/history/9999/restore", None).await.0,
        404
    );
    assert_eq!(
        olga.call("GET", "/api/history/not-a-number", None).await.0,
        400
    );
    let (status, restored) = olga
        .call("POST", &format!("/api/history/{first}/restore"), None)
        .await;
    assert_eq!(status, 200);
    assert!(restored["version"].as_u64().unwrap() > history[0]["version"].as_u64().unwrap());
    assert_eq!(
        std::fs::read_to_string(&setup.config_path).unwrap(),
        // The first version's text, secrets included (they are masked only in views).
        std::fs::read_to_string(setup.dir.join(format!("history/versions/{first:06}.toml")))
            .unwrap()
    );

    // The fleet view: the gateway is up and applies the current config.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, fleet) = olga.call("GET", "/api/fleet", None).await;
            let gw = &fleet["gateways"][0];
            gw["up"] == true && gw["stale"] == false && gw["hash"] == fleet["config"]["hash"]
        })
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_masked_and_survive_edits() {
    let setup = start("secrets", BODY);
    let olga = Client::login(&setup, "olga", "olga-pw").await;
    let (_, consumers) = olga.call("GET", "/api/consumers", None).await;
    assert_eq!(consumers[0]["keys"], json!(["k-al••••"]));
    let (_, config) = olga.call("GET", "/api/config", None).await;
    let text = config["text"].as_str().unwrap();
    assert!(
        !text.contains("k-alice-secret-1") && !text.contains("console-test-admin-token"),
        "{text}"
    );
    // The TOML view round-trips the masks back to the stored secrets.
    let edited = text.replace("tenant = \"acme\"", "tenant = \"acme-corp\"");
    let (status, body) = olga
        .call(
            "PUT",
            "/api/config",
            Some(json!({"text": edited, "message": "rename tenant"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let file = std::fs::read_to_string(&setup.config_path).unwrap();
    assert!(
        file.contains("k-alice-secret-1")
            && file.contains("acme-corp")
            && file.contains("console-test-admin-token")
    );
    // A consumer saved without keys keeps its keys; with keys, they are replaced.
    assert_eq!(
        olga.call(
            "PUT",
            "/api/consumers/alice",
            Some(json!({"tenant": "acme", "keys": null}))
        )
        .await
        .0,
        200
    );
    assert!(std::fs::read_to_string(&setup.config_path)
        .unwrap()
        .contains("k-alice-secret-1"));
    let (status, body) = olga
        .call(
            "PUT",
            "/api/consumers/alice",
            Some(json!({"tenant": "acme", "keys": ["short"]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        olga.call(
            "PUT",
            "/api/consumers/alice",
            Some(json!({"tenant": "acme", "keys": ["k-alice-secret-2"]}))
        )
        .await
        .0,
        200
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .get(format!("http://127.0.0.1:{}/api/x", setup.port))
                .header("x-api-key", "k-alice-secret-2")
                .send()
                .await
                .unwrap()
                .status()
                == 200
        })
        .await
    );
    // Validation endpoint.
    assert_eq!(
        olga.call("POST", "/api/validate", Some(json!({"text": text})))
            .await
            .0,
        200
    );
    let (status, body) = olga
        .call(
            "POST",
            "/api/validate",
            Some(json!({"text": "[[routes]]\nname = 1\n"})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["line"].as_u64()),
        (422, Some(2)),
        "{body}"
    );
    // Plugins: listed with their routes; one in use cannot be deleted.
    let (_, plugins) = olga.call("GET", "/api/plugins", None).await;
    let auth = plugins
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "auth")
        .unwrap();
    assert_eq!(auth["routes"], json!(["api"]));
    assert_eq!(olga.call("DELETE", "/api/plugins/auth", None).await.0, 409);
    let (status, _) = olga
        .call(
            "PUT",
            "/api/plugins/waf",
            Some(json!({"type": "waf", "config": {"mode": "detect"}})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = olga
        .call(
            "PUT",
            "/api/plugins/waf",
            Some(json!({"type": "waf", "config": {"mode": "sometimes"}})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(olga.call("DELETE", "/api/plugins/waf", None).await.0, 204);
    // Services: listed with live instances from the gateway.
    assert!(
        eventually(Duration::from_secs(5), || async {
            let (_, services) = olga.call("GET", "/api/services", None).await;
            services[0]["instances"]
                .as_array()
                .is_some_and(|i| i.len() == 2)
        })
        .await
    );
    // Deleting a service a route uses is refused by validation; deleting a consumer works.
    let route = json!({"path": "/chat/", "service": "chat"});
    assert_eq!(
        olga.call("PUT", "/api/routes/chat", Some(route)).await.0,
        200
    );
    let (status, body) = olga.call("DELETE", "/api/services/chat", None).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("unknown service"));
    assert_eq!(
        olga.call("DELETE", "/api/consumers/alice", None).await.0,
        204
    );
    assert_eq!(
        olga.call("DELETE", "/api/consumers/alice", None).await.0,
        404
    );
    assert_eq!(
        olga.call("DELETE", "/api/services/nothing", None).await.0,
        404
    );
    let (status, body) = olga
        .call(
            "PUT",
            "/api/services/chat",
            Some(json!({"endpoints": [{"addr": "not-an-address"}]})),
        )
        .await;
    assert_eq!(
        (status, body["errors"][0]["field"].as_str()),
        (422, Some("endpoints")),
        "{body}"
    );
}
