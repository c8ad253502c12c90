//! Logins, sessions and the two roles. Passwords are checked against argon2 hashes on the
//! blocking pool; a session is a random token in an HttpOnly, SameSite=Strict cookie, and
//! every change also carries the session's CSRF token in a header (a cross-site form can
//! neither read it nor set the header). Failed logins are limited per user and per client.

use crate::config::{Role, SessionConfig, UserConfig};
use crate::error::ApiError;
use http::HeaderMap;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const COOKIE: &str = "tg_session";
const FAILURE_WINDOW: Duration = Duration::from_secs(300);
const MAX_FAILURES: usize = 5;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    #[serde(skip)]
    expires: Instant,
}

pub struct Auth {
    users: Vec<UserConfig>,
    config: SessionConfig,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
    /// A real hash of a random password, checked for unknown users.
    decoy: String,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).expect("the OS gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash to put in console.toml (`tidegate-console hash-password`).
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the OS gives random bytes");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes fit");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes any password")
        .to_string()
}

impl Auth {
    pub fn new(users: Vec<UserConfig>, config: SessionConfig) -> Auth {
        Auth {
            users,
            config,
            sessions: Mutex::default(),
            failures: Mutex::default(),
            decoy: hash_password(&random_token()),
        }
    }

    fn limited(&self, keys: &[String]) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        keys.iter().find_map(|k| {
            let list = failures.entry(k.clone()).or_default();
            list.retain(|t| now.duration_since(*t) < FAILURE_WINDOW);
            (list.len() >= MAX_FAILURES).then(|| FAILURE_WINDOW - now.duration_since(list[0]))
        })
    }

    fn fail(&self, keys: &[String]) {
        let mut failures = self.failures.lock();
        for k in keys {
            failures.entry(k.clone()).or_default().push(Instant::now());
        }
    }

    /// Checks a login; returns the new session and its cookie value.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<(String, Session), ApiError> {
        let keys = [format!("user:{user}"), format!("ip:{client}")];
        if let Some(wait) = self.limited(&keys) {
            return Err(ApiError::TooMany(wait));
        }
        let found = self.users.iter().find(|u| u.name == user).cloned();
        // A missing user costs a hash check too, so timing does not tell which users exist.
        let hash = found
            .as_ref()
            .map_or_else(|| self.decoy.clone(), |u| u.password_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false);
        let Some(user) = found.filter(|_| ok) else {
            self.fail(&keys);
            return Err(ApiError::Unauthorized("wrong user name or password".into()));
        };
        let token = random_token();
        let session = Session {
            user: user.name.clone(),
            role: user.role,
            csrf: random_token(),
            expires: Instant::now() + Duration::from_secs(self.config.ttl_minutes * 60),
        };
        let mut sessions = self.sessions.lock();
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers) {
            self.sessions.lock().remove(&token);
        }
    }

    pub fn set_cookie(&self, token: &str) -> String {
        format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.config.ttl_minutes * 60,
            if self.config.secure_cookie {
                "; Secure"
            } else {
                ""
            }
        )
    }

    pub fn clear_cookie(&self) -> String {
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// The session of a request (401 without a valid one).
    pub fn session(&self, headers: &HeaderMap) -> Result<Session, ApiError> {
        let token = cookie(headers).ok_or_else(|| ApiError::Unauthorized("log in first".into()))?;
        let sessions = self.sessions.lock();
        match sessions.get(&token) {
            Some(s) if s.expires > Instant::now() => Ok(s.clone()),
            _ => Err(ApiError::Unauthorized(
                "the session has expired; log in again".into(),
            )),
        }
    }

    /// The session of a changing request: valid, CSRF token matching, operator role.
    pub fn operator(&self, headers: &HeaderMap) -> Result<Session, ApiError> {
        let session = self.session(headers)?;
        let presented = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !tidegate_plugins::consumers::constant_time_eq(
            presented.as_bytes(),
            session.csrf.as_bytes(),
        ) {
            return Err(ApiError::Forbidden("missing or wrong CSRF token".into()));
        }
        if session.role != Role::Operator {
            return Err(ApiError::Forbidden("viewers cannot change anything".into()));
        }
        Ok(session)
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    tidegate_plugins::key::cookie(headers, COOKIE)
        .map(str::trim_end)
        .filter(|v| !v.is_empty())
        .map(String::from)
}
