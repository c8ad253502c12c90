//! A small Nacos Open API client: server failover, access-token login, per-request timeouts.
//! It never retries the same server in a loop: a failed call moves on to the next server,
//! and the caller's poll interval is the retry.

use super::NacosConfig;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Client {
    http: reqwest::Client,
    servers: Vec<String>,
    /// The server that answered last; tried first.
    preferred: AtomicUsize,
    pub namespace: String,
    credentials: Option<(String, String)>,
    token: tokio::sync::Mutex<Option<Token>>,
    timeout: Duration,
}

struct Token {
    value: String,
    refresh_at: Instant,
}

/// An answer from Nacos: status and body.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Client {
    pub fn new(config: &NacosConfig) -> Result<Client, String> {
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => Some((
                user.clone(),
                tidegate_plugins::consumers::secret(password)
                    .map_err(|e| format!("nacos password: {e}"))?,
            )),
            _ => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(2000)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the nacos http client: {e}"))?;
        Ok(Client {
            http,
            servers: config
                .servers
                .iter()
                .map(|s| s.get_ref().trim_end_matches('/').to_string())
                .collect(),
            preferred: AtomicUsize::new(0),
            namespace: config.namespace_id().to_string(),
            credentials,
            token: tokio::sync::Mutex::new(None),
            timeout: Duration::from_millis(config.timeout_ms),
        })
    }

    /// Calls `path` on the first server that answers. Transport errors and 502/503/504 move
    /// on to the next server; any other answer (even an error status) is returned.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        params: &[(&str, &str)],
        extra_wait: Option<Duration>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last_error = String::from("no nacos server configured");
        for k in 0..self.servers.len() {
            let index = (start + k) % self.servers.len();
            let server = &self.servers[index];
            match self
                .call_one(server, &method, path, params, extra_wait, headers)
                .await
            {
                Ok(answer) if matches!(answer.status, 502..=504) => {
                    last_error = format!("{server}: status {}", answer.status);
                }
                Ok(answer) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    crate::metrics::get()
                        .nacos_requests
                        .with_label_values(&["ok"])
                        .inc();
                    return Ok(answer);
                }
                Err(e) => last_error = format!("{server}: {e}"),
            }
        }
        crate::metrics::get()
            .nacos_requests
            .with_label_values(&["error"])
            .inc();
        Err(last_error)
    }

    async fn call_one(
        &self,
        server: &str,
        method: &Method,
        path: &str,
        params: &[(&str, &str)],
        extra_wait: Option<Duration>,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        for attempt in 0..2 {
            let token = self.token(server, attempt > 0).await?;
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(token) = &token {
                query.push(("accessToken", token));
            }
            let url = format!("{server}{path}");
            let builder = match method {
                Method::Get => self.http.get(&url).query(&query).query(params),
                Method::Delete => self.http.delete(&url).query(&query).query(params),
                Method::Post => self.http.post(&url).query(&query).form(params),
                Method::Put => self.http.put(&url).query(&query).query(params),
            };
            let mut builder = builder.timeout(self.timeout + extra_wait.unwrap_or_default());
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            let response = builder.send().await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| e.to_string())?;
            // An expired or revoked token: log in again once.
            if (status == 401 || status == 403) && token.is_some() && attempt == 0 {
                continue;
            }
            return Ok(Answer { status, body });
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The access token, logging in when there is none, it is due for refresh, or `renew`.
    async fn token(&self, server: &str, renew: bool) -> Result<Option<String>, String> {
        let Some((user, password)) = &self.credentials else {
            return Ok(None);
        };
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref() {
            if !renew && Instant::now() < t.refresh_at {
                return Ok(Some(t.value.clone()));
            }
        }
        let response = self
            .http
            .post(format!("{server}/nacos/v1/auth/login"))
            .form(&[("username", user.as_str()), ("password", password.as_str())])
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| format!("login: {e}"))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| format!("login: {e}"))?;
        if status != 200 {
            return Err(format!("login refused with status {status}"));
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Login {
            access_token: String,
            #[serde(default = "default_ttl")]
            token_ttl: u64,
        }
        fn default_ttl() -> u64 {
            18_000
        }
        let login: Login =
            serde_json::from_str(&body).map_err(|e| format!("login answer not understood: {e}"))?;
        // Refresh at four fifths of the lifetime, so a token never expires in use.
        let refresh = Duration::from_secs(login.token_ttl.max(10) * 4 / 5);
        *token = Some(Token {
            value: login.access_token.clone(),
            refresh_at: Instant::now() + refresh,
        });
        Ok(Some(login.access_token))
    }
}
