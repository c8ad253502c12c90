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
