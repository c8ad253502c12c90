#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
//! basic-auth with argon2 and bcrypt hashes, and hmac-auth request signatures against a real
//! upstream: good signatures pass with the consumer named; a tampered body, query or signed
//! header, a stale or future date, a replayed signature or nonce are refused before anything
//! reaches the upstream; replays are caught across a fleet through a real redis-server.

mod support;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};
use support::redis::Redis;
use support::upstream::Upstream;
use support::{client, free_port, json, Gateway};

const ALICE_SECRET: &str = "alice-hmac-secret-for-tests";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_checks_stored_hashes() {
    let argon = {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        argon2::Argon2::default()
            .hash_password(b"alice pw", &salt)
            .unwrap()
            .to_string()
    };
    let bcrypt = bcrypt::hash("bob pw", 6).unwrap();
    let up = Upstream::start("a").await;
    let gw = Gateway::start(
        &(format!(
            r#"
[[consumers]]
name = "alice"
tenant = "acme"
basic = {{ password_hash = "{argon}" }}
[[consumers]]
name = "bob"
basic = {{ username = "bob@example.com", password_hash = "{bcrypt}" }}
[plugins.basic]
type = "basic-auth"
realm = "chat"
"#,
        ) + &support::service_route(up.addr, "/", &["basic"])),
    );
    let http = client();
    let get = |user: &str, password: &str| {
        http.get(gw.url("/x"))
            .basic_auth(user, Some(password))
            .send()
    };
    let resp = get("alice", "alice pw").await.unwrap();
    assert_eq!(resp.status(), 200);
    let seen = support::body_json(resp).await;
    assert_eq!(seen["headers"]["x-consumer"], "alice");
    assert_eq!(seen["headers"]["x-tenant-id"], "acme");
    assert!(
        seen["headers"]["authorization"].is_null(),
        "credentials hidden: {seen}"
    );
    // Remembered after the first check: still right, and still refusing a wrong password.
    assert_eq!(get("alice", "alice pw").await.unwrap().status(), 200);
    assert_eq!(
        get("bob@example.com", "bob pw").await.unwrap().status(),
        200
    );
    let hits = up.hits();
    for (user, password) in [
        ("alice", "alice pW"),
        ("bob@example.com", "alice pw"),
        ("mallory", "x"),
    ] {
        let resp = get(user, password).await.unwrap();
        assert_eq!(resp.status(), 401, "{user}");
        assert_eq!(
            resp.headers()["www-authenticate"],
            r#"Basic realm="chat", charset="UTF-8""#
        );
    }
    let resp = http.get(gw.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(up.hits(), hits, "refused requests reached the upstream");

    // A plain password where a hash belongs is refused at load, with its position.
    let out = std::process::Command::new(support::binary())
        .arg("check")
        .arg({
            let p = gw.dir.path("plain.toml");
            std::fs::write(
                &p,
                "[[consumers]]\nname = \"c\"\nbasic = { password_hash = \"hunter2\" }\n",
            )
            .unwrap();
            p
        })
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plain passwords are not accepted"), "{err}");
}

/// Now as an HTTP date (`Fri, 27 Nov 2026 03:00:00 GMT`).
fn httpdate_now() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A request signed as docs/plugins/hmac-auth.md describes.
struct Signed {
    method: &'static str,
    path: String,
    query: String,
    body: Vec<u8>,
    date: u64,
    nonce: String,
    host: String,
}

impl Signed {
    fn new(gw: &Gateway, method: &'static str, path: &str, query: &str, body: &[u8]) -> Signed {
        Signed {
            method,
            path: path.into(),
            query: query.into(),
            body: body.to_vec(),
            date: unix_now(),
            nonce: format!("{:x}", rand_nonce()),
            host: format!("127.0.0.1:{}", gw.port),
        }
    }

    fn signature(&self, secret: &str) -> String {
        let mut pairs: Vec<&str> = self.query.split('&').filter(|p| !p.is_empty()).collect();
        pairs.sort_unstable();
        let body_hash: String = Sha256::digest(&self.body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = format!(
            "HMAC-SHA256\n{}\n{}\n{}\n{}\n{}\n{}\nhost:{}",
            self.method,
            self.path,
            pairs.join("&"),
            self.date,
            self.nonce,
            body_hash,
            self.host
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// Sends it to `port`, with the signature made over `self` (tamper after signing by
    /// passing a changed copy as `sent`).
    async fn send_as(&self, port: u16, sent: &Signed) -> (u16, String) {
        let url = if sent.query.is_empty() {
            format!("http://127.0.0.1:{port}{}", sent.path)
        } else {
            format!("http://127.0.0.1:{port}{}?{}", sent.path, sent.query)
        };
        let resp = client()
            .request(sent.method.parse().unwrap(), url)
            .header("host", &sent.host)
            .header("x-date", sent.date.to_string())
            .header("x-nonce", &sent.nonce)
            .header(
                "authorization",
                format!(
                    r#"HMAC-SHA256 keyId="alice", headers="host", signature="{}""#,
                    self.signature(ALICE_SECRET)
                ),
            )
            .header("content-type", "application/json")
            .body(sent.body.clone())
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn send(&self, port: u16) -> (u16, String) {
        self.send_as(port, self).await
    }

    fn with(&self, change: impl FnOnce(&mut Signed)) -> Signed {
        let mut copy = Signed {
            method: self.method,
            path: self.path.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
            date: self.date,
            nonce: self.nonce.clone(),
            host: self.host.clone(),
        };
        change(&mut copy);
        copy
    }
}

fn rand_nonce() -> u128 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    (h.finish() as u128) << 64
        | std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u128
}

fn hmac_config(up: &Upstream, replay: &str, redis_port: u16) -> String {
    format!(
        r#"
[redis]
url = "redis://127.0.0.1:{redis_port}/"
[[consumers]]
name = "alice"
tenant = "acme"
hmac = {{ key_id = "alice", secret_env = "TIDEGATE_TEST_ALICE_HMAC" }}
[plugins.sig]
type = "hmac-auth"
clock_skew_seconds = 60
replay = "{replay}"
"#,
    ) + &support::service_route(up.addr, "/", &["sig"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_signatures_refuse_tampering_skew_and_replay() {
    std::env::set_var("TIDEGATE_TEST_ALICE_HMAC", ALICE_SECRET);
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&hmac_config(&up, "local", free_port()));
    let good = Signed::new(
        &gw,
        "POST",
        "/api/messages",
        "room=42&b=2&a=1",
        br#"{"text":"hi"}"#,
    );
    let (status, body) = good.send(gw.port).await;
    assert_eq!(status, 200, "{body}\n{}", gw.stderr());
    let seen = json(&body);
    assert_eq!(seen["headers"]["x-consumer"], "alice");
    assert_eq!(seen["headers"]["x-tenant-id"], "acme");
    assert!(seen["headers"]["authorization"].is_null());
    assert_eq!(seen["method"], "POST");

    let hits = up.hits();
    let fresh = || Signed::new(&gw, "POST", "/api/messages", "room=42", br#"{"text":"hi"}"#);
    let cases: Vec<(&str, Signed, Signed)> = vec![
        (
            "tampered body",
            fresh(),
            fresh().with(|s| s.body = br#"{"text":"HI"}"#.to_vec()),
        ),
        (
            "tampered query",
            fresh(),
            fresh().with(|s| s.query = "room=43".into()),
        ),
        (
            "tampered path",
            fresh(),
            fresh().with(|s| s.path = "/api/admin".into()),
        ),
        (
            "tampered method",
            fresh(),
            fresh().with(|s| s.method = "PUT"),
        ),
        (
            "tampered signed header",
            fresh(),
            fresh().with(|s| s.host = "evil.example.com".into()),
        ),
    ];
    for (what, signed, sent) in &cases {
        let (status, body) = signed.send_as(gw.port, sent).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert!(body.contains("does not match"), "{what}: {body}");
    }
    for (what, skewed) in [
        ("old date", fresh().with(|s| s.date -= 120)),
        ("future date", fresh().with(|s| s.date += 120)),
    ] {
        let (status, body) = skewed.send(gw.port).await;
        assert_eq!(status, 401, "{what}");
        assert!(body.contains("clock skew"), "{what}: {body}");
    }
    // The same request again: a replay.
    let (status, body) = good.send(gw.port).await;
    assert_eq!(status, 401);
    assert!(body.contains("already used"), "{body}");
    // A new signature reusing a nonce is a replay too.
    let reuse = fresh().with(|s| s.nonce = good.nonce.clone());
    let reuse = reuse.with(|s| s.body = b"{}".to_vec());
    assert_eq!(reuse.send(gw.port).await.0, 401);
    // Unsigned, unknown key id, missing date.
    let resp = client().get(gw.url("/x")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "HMAC-SHA256");
    let resp = client()
        .get(gw.url("/x"))
        .header(
            "authorization",
            r#"HMAC-SHA256 keyId="mallory", headers="host", signature="AAAA""#,
        )
        .header("x-date", unix_now().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // A body of undeclared length cannot be signed.
    let signed = fresh();
    let raw = format!(
        "POST /api/messages?room=42 HTTP/1.1\r\nhost: {}\r\nx-date: {}\r\nauthorization: HMAC-SHA256 keyId=\"alice\", headers=\"host\", signature=\"{}\"\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
        signed.host,
        signed.date,
        signed.signature(ALICE_SECRET)
    );
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = stream.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");
    assert_eq!(up.hits(), hits, "a refused request reached the upstream");

    // A GET with no body signs the empty body.
    let get = Signed::new(&gw, "GET", "/api/rooms", "", b"");
    assert_eq!(get.send(gw.port).await.0, 200);

    // The standard Date header (an HTTP date) works instead of x-date.
    let http_date = httpdate_now();
    let text = format!(
        "HMAC-SHA256\nGET\n/api/rooms\n\n{http_date}\n\n{}\nhost:127.0.0.1:{}",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", gw.port
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(ALICE_SECRET.as_bytes()).unwrap();
    mac.update(text.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let resp = client()
        .get(gw.url("/api/rooms"))
        .header("date", &http_date)
        .header(
            "authorization",
            format!(r#"HMAC-SHA256 keyId="alice", headers="host", signature="{signature}""#),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_replays_are_caught_across_the_fleet_through_redis() {
    std::env::set_var("TIDEGATE_TEST_ALICE_HMAC", ALICE_SECRET);
    let redis_port = free_port();
    let _redis = Redis::start_on(redis_port);
    let up = Upstream::start("a").await;
    let one = Gateway::start(&hmac_config(&up, "redis", redis_port));
    let two = Gateway::start(&hmac_config(&up, "redis", redis_port));
    for _ in 0..5 {
        let signed = Signed::new(&one, "POST", "/api/messages", "", b"{\"n\":1}");
        assert_eq!(signed.send(one.port).await.0, 200, "{}", one.stderr());
        // The host header is part of the signature: send the same bytes to the other gateway.
        let (status, body) = signed.send(two.port).await;
        assert_eq!(status, 401, "replay on another gateway passed: {body}");
        assert!(body.contains("already used"));
    }
}
