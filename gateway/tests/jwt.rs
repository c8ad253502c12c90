#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! jwt-auth against vectors good and bad: RS256 and ES256 keys made by openssl at test time,
//! expiry, not-before, audience, issuer, tampering, `alg: none` and algorithm confusion.

mod support;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use support::upstream::Upstream;
use support::{client, Gateway, TempDir};

fn openssl(args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .status()
        .expect("openssl is installed")
        .success();
    assert!(ok, "openssl {args:?}");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_vectors() {
    let keys = TempDir::new("jwt");
    let path = |n: &str| keys.path(n).display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &path("rsa.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &path("rsa.pem"),
        "-pubout",
        "-out",
        &path("rsa.pub"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &path("ec.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &path("ec.pem"),
        "-pubout",
        "-out",
        &path("ec.pub"),
    ]);
    let rsa_private = std::fs::read(path("rsa.pem")).unwrap();
    let rsa_public = std::fs::read(path("rsa.pub")).unwrap();
    let ec_private = std::fs::read(path("ec.pem")).unwrap();

    let up = Upstream::start("a").await;
    let gw = Gateway::start(&format!(
        r#"
[plugins.rs]
type = "jwt-auth"
algorithms = ["RS256"]
public_key = "file:{}"
issuer = "https://id.example.com"
audience = "tidegate"
leeway_seconds = 5
tenant_claim = "tenant"
[plugins.es]
type = "jwt-auth"
algorithms = ["ES256"]
public_key = "file:{}"
[plugins.claim-limit]
type = "key-rate-limit"
key = "jwt-claim:plan"
limits = [{{ per = "minute", count = 1 }}]
[[services]]
name = "s"
endpoints = [{{ addr = "{}" }}]
[[routes]]
name = "rs"
path = "/rs/"
service = "s"
plugins = ["rs"]
[[routes]]
name = "es"
path = "/es/"
service = "s"
plugins = ["es", "claim-limit"]
"#,
        path("rsa.pub"),
        path("ec.pub"),
        up.addr
    ));
    let http = client();
    let claims = |exp: i64, nbf: i64, aud: &str, iss: &str| serde_json::json!({"sub": "alice", "tenant": "acme", "plan": "gold", "exp": exp, "nbf": nbf, "aud": aud, "iss": iss});
    let rsa = EncodingKey::from_rsa_pem(&rsa_private).unwrap();
    let sign = |c: &serde_json::Value| encode(&Header::new(Algorithm::RS256), c, &rsa).unwrap();
    let good = sign(&claims(
        now() + 300,
        now() - 10,
        "tidegate",
        "https://id.example.com",
    ));
    let call = |route: &'static str, token: Option<String>| {
        let mut req = http.get(gw.url(route));
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        req.send()
    };

    let resp = call("/rs/x", Some(good.clone())).await.unwrap();
    assert_eq!(resp.status(), 200);
    let echo: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(echo["headers"]["x-consumer"], "alice");
    assert_eq!(echo["headers"]["x-tenant-id"], "acme");
    assert!(
        echo["headers"].get("authorization").is_none(),
        "token forwarded upstream"
    );

    let resp = call("/rs/x", None).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");

    let bad = [
        (
            "expired",
            sign(&claims(
                now() - 60,
                now() - 120,
                "tidegate",
                "https://id.example.com",
            )),
        ),
        (
            "not yet valid",
            sign(&claims(
                now() + 300,
                now() + 120,
                "tidegate",
                "https://id.example.com",
            )),
        ),
        (
            "wrong audience",
            sign(&claims(
                now() + 300,
                now() - 10,
                "someone-else",
                "https://id.example.com",
            )),
        ),
        (
            "wrong issuer",
            sign(&claims(
                now() + 300,
                now() - 10,
                "tidegate",
                "https://evil.example.com",
            )),
        ),
        // HS256 "signed" with the RSA public key as the HMAC secret: algorithm confusion.
        (
            "alg confusion",
            encode(
                &Header::new(Algorithm::HS256),
                &claims(
                    now() + 300,
                    now() - 10,
                    "tidegate",
                    "https://id.example.com",
                ),
                &EncodingKey::from_secret(&rsa_public),
            )
            .unwrap(),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64url(br#"{"alg":"none","typ":"JWT"}"#),
                b64url(
                    claims(
                        now() + 300,
                        now() - 10,
                        "tidegate",
                        "https://id.example.com"
                    )
                    .to_string()
                    .as_bytes()
                )
            ),
        ),
        ("tampered", {
            let parts: Vec<&str> = good.split('.').collect();
            let forged = claims(
                now() + 300,
                now() - 10,
                "tidegate",
                "https://id.example.com",
            )
            .to_string()
            .replace("alice", "admin");
            format!("{}.{}.{}", parts[0], b64url(forged.as_bytes()), parts[2])
        }),
        ("garbage", "not.a.jwt".to_string()),
    ];
    let hits = up.hits();
    for (what, token) in bad {
        assert_eq!(
            call("/rs/x", Some(token)).await.unwrap().status(),
            401,
            "{what}"
        );
    }
    assert_eq!(up.hits(), hits, "a bad token reached the upstream");

    // ES256 on another route, and a limit keyed by a verified claim.
    let es = EncodingKey::from_ec_pem(&ec_private).unwrap();
    let es_token = encode(
        &Header::new(Algorithm::ES256),
        &serde_json::json!({"sub": "bob", "plan": "gold", "exp": now() + 300}),
        &es,
    )
    .unwrap();
    assert_eq!(
        call("/es/x", Some(es_token.clone()))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        call("/es/x", Some(es_token)).await.unwrap().status(),
        429,
        "plan claim limit"
    );
    // An RS256 token is not accepted where only ES256 is.
    assert_eq!(call("/es/x", Some(good)).await.unwrap().status(), 401);
}

/// Serves a JWK set that the test can replace, counting fetches.
struct JwksServer {
    addr: std::net::SocketAddr,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    async fn start(body: String) -> JwksServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = std::sync::Arc::new(std::sync::Mutex::new(body));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (b, f) = (body.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (b, f) = (b.clone(), f.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = stream.read(&mut buf).await;
                    f.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let body = b.lock().unwrap().clone();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        JwksServer {
            addr,
            body,
            fetches,
        }
    }
}

/// An RSA key pair made by openssl, and its public JWK with `kid`.
fn rsa_jwk(dir: &TempDir, kid: &str) -> (Vec<u8>, serde_json::Value) {
    let pem = dir.path(&format!("{kid}.pem")).display().to_string();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &pem,
    ]);
    let out = Command::new("openssl")
        .args(["rsa", "-in", &pem, "-modulus", "-noout"])
        .output()
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap();
    let hex = hex.trim().strip_prefix("Modulus=").unwrap();
    let modulus: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let jwk = serde_json::json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64url(&modulus), "e": "AQAB"
    });
    (std::fs::read(&pem).unwrap(), jwk)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_rotate_without_a_reload() {
    let dir = TempDir::new("jwks");
    let (old_private, old_jwk) = rsa_jwk(&dir, "2026-old");
    let (new_private, new_jwk) = rsa_jwk(&dir, "2026-new");
    let jwks =
        JwksServer::start(serde_json::json!({ "keys": [old_jwk.clone()] }).to_string()).await;
    let up = Upstream::start("a").await;
    let gw = Gateway::start(
        &(format!(
            r#"
[plugins.jwt]
type = "jwt-auth"
algorithms = ["RS256"]
jwks_url = "http://{}/.well-known/jwks.json"
jwks_refresh_seconds = 3600
"#,
            jwks.addr
        ) + &support::service_route(up.addr, "/", &["jwt"])),
    );
    let token = |private: &[u8], kid: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        encode(
            &header,
            &serde_json::json!({ "sub": "alice", "exp": now() + 300 }),
            &EncodingKey::from_rsa_pem(private).unwrap(),
        )
        .unwrap()
    };
    let http = client();
    let status = |t: String| {
        let http = http.clone();
        let url = gw.url("/x");
        async move {
            http.get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        status(token(&old_private, "2026-old")).await,
        200,
        "{}",
        gw.stderr()
    );
    assert_eq!(status(token(&old_private, "2026-old")).await, 200);
    assert_eq!(
        jwks.fetches.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "cached"
    );
    // A key signed by the right key but naming a kid the set does not have is refused.
    assert_eq!(status(token(&old_private, "2026-unknown")).await, 401);

    // The issuer rotates: new key published, old one withdrawn. A token with the new kid
    // makes the gateway fetch again (after the unknown-kid pause), without a reload.
    *jwks.body.lock().unwrap() = serde_json::json!({ "keys": [new_jwk] }).to_string();
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    assert_eq!(
        status(token(&new_private, "2026-new")).await,
        200,
        "{}",
        gw.stderr()
    );
    assert_eq!(
        status(token(&old_private, "2026-old")).await,
        401,
        "withdrawn key still accepted"
    );
    // A token made with another key under a published kid fails its signature.
    assert_eq!(status(token(&old_private, "2026-new")).await, 401);
    // A broken key set (an error page) does not wipe the known keys.
    *jwks.body.lock().unwrap() = "<html>502 Bad Gateway</html>".into();
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let before = jwks.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(status(token(&new_private, "2026-other")).await, 401);
    assert_eq!(
        jwks.fetches.load(std::sync::atomic::Ordering::SeqCst),
        before + 1
    );
    assert_eq!(status(token(&new_private, "2026-new")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_consumers_permission_and_identity_header_names() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(
        &(r#"
[identity]
consumer_header = "x-caller"
tenant_header = "x-org"
[[consumers]]
name = "billing-service"
tenant = "acme"
jwt = { issuer = "https://id.example.com", subject = "svc-42" }
[plugins.jwt]
type = "jwt-auth"
algorithms = ["HS256"]
secret = "jwt-test-secret-0123456789"
allow = ["billing-service"]
"#
        .to_string()
            + &support::service_route(up.addr, "/", &["jwt"])),
    );
    let token = |iss: &str, sub: &str| {
        encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({ "iss": iss, "sub": sub, "exp": now() + 300 }),
            &EncodingKey::from_secret(b"jwt-test-secret-0123456789"),
        )
        .unwrap()
    };
    let http = client();
    let resp = http
        .get(gw.url("/x"))
        .bearer_auth(token("https://id.example.com", "svc-42"))
        .header("x-caller", "spoofed")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.stderr());
    let seen: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(seen["headers"]["x-caller"], "billing-service");
    assert_eq!(seen["headers"]["x-org"], "acme");
    assert!(seen["headers"]["x-consumer"].is_null());
    // Same subject from another issuer is not that consumer, and not allowed here.
    let resp = http
        .get(gw.url("/x"))
        .bearer_auth(token("https://other.example.com", "svc-42"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
