#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! Authentication and request checks as plugins, against a real upstream: key-auth with
//! consumers and tenants (API permission, hidden credentials, identity headers that clients
//! cannot spoof, limits per tenant), IP rules for IPv4 and IPv6, CORS preflight, body size.

mod support;

use support::upstream::Upstream;
use support::{client, Gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_auth_names_the_consumer_and_tenant() {
    std::env::set_var("TIDEGATE_TEST_BOB_KEY", "k-bob-secret-1");
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[[consumers]]
name = "alice"
tenant = "acme"
keys = ["k-alice-key-1"]
[[consumers]]
name = "bob"
tenant = "globex"
keys = ["env:TIDEGATE_TEST_BOB_KEY"]
[plugins.auth]
type = "key-auth"
header = "x-api-key"
query = "api_key"
[plugins.alice-only]
type = "key-auth"
allow = ["alice"]
[plugins.per-tenant]
type = "key-rate-limit"
key = "tenant"
limits = [{{ per = "minute", count = 3 }}]
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "api"
path = "/api/"
service = "s"
plugins = ["per-tenant", "auth"]
[[routes]]
name = "admin"
path = "/admin/"
service = "s"
plugins = ["alice-only"]
"#,
        up.addr
    ));
    let http = client();
    let hits = up.hits();
    // No key, wrong key: 401 with a challenge, never proxied.
    let resp = http.get(gw.url("/api/x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "ApiKey");
    let resp = http
        .get(gw.url("/api/x"))
        .header("x-api-key", "k-alice-key-2")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(up.hits(), hits);

    // A good key: the upstream learns consumer and tenant, not the key; spoofed identity
    // headers from the client are replaced.
    let resp = http
        .get(gw.url("/api/x"))
        .header("x-api-key", "k-alice-key-1")
        .header("x-consumer", "mallory")
        .header("x-tenant-id", "evil")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = support::body_json(resp).await;
    assert_eq!(echo["headers"]["x-consumer"], "alice");
    assert_eq!(echo["headers"]["x-tenant-id"], "acme");
    assert!(
        echo["headers"].get("x-api-key").is_none(),
        "credential leaked upstream"
    );
    // Key from the environment, and in the query.
    let (status, echo) = support::get_json(&http, &gw.url("/api/x?api_key=k-bob-secret-1")).await;
    assert_eq!(status, 200);
    assert_eq!(echo["headers"]["x-tenant-id"], "globex");

    // The tenant limit runs after auth (fixed order, whatever the listing order): acme has
    // 3 a minute, bob's tenant its own 3.
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(
            http.get(gw.url("/api/x"))
                .header("x-api-key", "k-alice-key-1")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 429], "acme already used one of its 3");
    assert_eq!(
        http.get(gw.url("/api/x"))
            .header("x-api-key", "k-bob-secret-1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // API permission: bob is a consumer, but not allowed on /admin/.
    assert_eq!(
        http.get(gw.url("/admin/x"))
            .header("x-api-key", "k-bob-secret-1")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        http.get(gw.url("/admin/x"))
            .header("x-api-key", "k-alice-key-1")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The access log names the consumer and never the key.
    assert!(
        support::eventually(std::time::Duration::from_secs(5), || async {
            gw.access_log().contains("\"consumer\":\"alice\"")
        })
        .await
    );
    assert!(
        !gw.access_log().contains("k-alice-key-1"),
        "key in the access log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_rules_cors_and_body_size() {
    let up = Upstream::start("a").await;
    let routes = format!(
        r#"
[plugins.ips]
type = "ip-restriction"
allow = ["198.51.100.0/24", "2001:db8::/32"]
deny = ["198.51.100.66"]
[plugins.cors]
type = "cors"
origins = ["https://app.example.com"]
headers = ["content-type", "x-api-key"]
credentials = true
[plugins.size]
type = "request-size"
max_bytes = 1024
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "ips"
path = "/ips/"
service = "s"
plugins = ["ips"]
[[routes]]
name = "web"
path = "/web/"
service = "s"
plugins = ["cors", "size"]
"#,
        up.addr
    );
    // Clients are told apart by X-Forwarded-For from a trusted loopback proxy.
    let gw = Gateway::start_with_text(|(port, admin, dir)| {
        Gateway::config_text(port, admin, dir, &routes).replace(
            "threads = 2\n",
            "threads = 2\ntrusted_proxies = [\"127.0.0.0/8\"]\n",
        )
    });
    let http = client();
    for (client_ip, expected) in [
        ("198.51.100.7", 200u16),
        ("198.51.100.66", 403),
        ("203.0.113.1", 403),
        ("2001:db8::1", 200),
        ("2001:db9::1", 403),
    ] {
        let resp = http
            .get(gw.url("/ips/x"))
            .header("x-forwarded-for", client_ip)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected, "{client_ip}");
    }

    // CORS preflight is answered at the gateway.
    let hits = up.hits();
    let resp = http
        .request(reqwest::Method::OPTIONS, gw.url("/web/x"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(resp.headers()["access-control-allow-credentials"], "true");
    assert!(resp.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        resp.headers()["access-control-allow-headers"],
        "content-type, x-api-key"
    );
    assert_eq!(up.hits(), hits, "preflight reached the upstream");
    let resp = http
        .request(reqwest::Method::OPTIONS, gw.url("/web/x"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Simple requests get the headers on the upstream's response.
    let resp = http
        .get(gw.url("/web/x"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let resp = http
        .get(gw.url("/web/x"))
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());

    // Bodies over the limit: 413 before anything goes upstream.
    let hits = up.hits();
    let resp = http
        .post(gw.url("/web/x"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(up.hits(), hits);
    let resp = http
        .post(gw.url("/web/x"))
        .body(vec![b'x'; 512])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
