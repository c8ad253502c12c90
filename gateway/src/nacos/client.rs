//! A small Nacos Open API client: server failover, access-token login, per-request timeouts.
//! It never retries the same server in a loop: a failed call moves on to the next server,
//! and the caller's poll interval is the retry. Which HTTP API a server offers (the v3
//! client API or v1) is detected once per server, at its first [`Client::call_api`]. The
//! gRPC client logs in through here too ([`Client::access_token`]).

use super::{http_v3, Api, NacosConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Login paths, newest first: Nacos 3.x, then 1.x/2.x (kept by 3.2, served by rnacos).
const LOGIN_PATHS: [&str; 2] = ["/nacos/v3/auth/user/login", "/nacos/v1/auth/users/login"];

pub struct Client {
    http: reqwest::Client,
    servers: Vec<String>,
    /// The server that answered last; tried first.
    preferred: AtomicUsize,
    pub namespace: String,
    credentials: Option<(String, String)>,
    token: tokio::sync::Mutex<Option<Token>>,
    timeout: Duration,
    /// Per server: the HTTP API it offers, once detected.
    apis: parking_lot::Mutex<Vec<Option<Api>>>,
    /// Index in [`LOGIN_PATHS`] of the login path that answered last.
    login_path: AtomicUsize,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A call whose path and parameters depend on the API of the server it goes to.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Request {
    pub fn new(method: Method, path: &str, params: &[(&str, &str)]) -> Request {
        Request {
            method,
            path: path.to_string(),
            params: params
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }
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
        let servers: Vec<String> = config
            .servers
            .iter()
            .map(|s| s.get_ref().trim_end_matches('/').to_string())
            .collect();
        Ok(Client {
            http,
            apis: parking_lot::Mutex::new(vec![None; servers.len()]),
            servers,
            preferred: AtomicUsize::new(0),
            namespace: config.namespace_id().to_string(),
            credentials,
            token: tokio::sync::Mutex::new(None),
            timeout: Duration::from_millis(config.timeout_ms),
            login_path: AtomicUsize::new(0),
        })
    }

    /// The namespace as the v3 client API and gRPC want it: "public" for the default one.
    pub fn namespace_or_public(&self) -> &str {
        if self.namespace.is_empty() {
            "public"
        } else {
            &self.namespace
        }
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
        let make = |_: Api| Request::new(method, path, params);
        self.call_each(false, &make, extra_wait, headers)
            .await
            .map(|(_, answer)| answer)
    }

    /// Like [`Client::call`], with the path and parameters for the API of the server the
    /// call goes to ([`Api::V3`] or [`Api::V1`], detected once per server). Returns which.
    pub async fn call_api(
        &self,
        make: &(dyn Fn(Api) -> Request + Sync),
        extra_wait: Option<Duration>,
        headers: &[(&str, &str)],
    ) -> Result<(Api, Answer), String> {
        let (api, answer) = self.call_each(true, make, extra_wait, headers).await?;
        super::set_api_in_use(Some(api));
        Ok((api, answer))
    }

    async fn call_each(
        &self,
        detect: bool,
        make: &(dyn Fn(Api) -> Request + Sync),
        extra_wait: Option<Duration>,
        headers: &[(&str, &str)],
    ) -> Result<(Api, Answer), String> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last_error = String::from("no nacos server configured");
        for k in 0..self.servers.len() {
            let index = (start + k) % self.servers.len();
            let server = &self.servers[index];
            let api = if detect {
                match self.api_of(index).await {
                    Ok(api) => api,
                    Err(e) => {
                        last_error = format!("{server}: {e}");
                        continue;
                    }
                }
            } else {
                Api::V1
            };
            let request = make(api);
            let params: Vec<(&str, &str)> = request
                .params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            match self
                .call_one(
                    server,
                    &request.method,
                    &request.path,
                    &params,
                    extra_wait,
                    headers,
                )
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
                    return Ok((api, answer));
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

    /// The HTTP API server `index` offers, probed on first use and then remembered. A probe
    /// that gets no answer is an error (the server is tried again next time).
    async fn api_of(&self, index: usize) -> Result<Api, String> {
        let known = self.apis.lock().get(index).copied().flatten();
        if let Some(api) = known {
            return Ok(api);
        }
        let server = &self.servers[index];
        let api = http_v3::detect(self, server).await?;
        match api {
            Api::V3 => log::info!("nacos {server}: the v3 client API is offered; using it"),
            _ => log::info!("nacos {server}: no v3 client API; using the v1 open API"),
        }
        if let Some(slot) = self.apis.lock().get_mut(index) {
            *slot = Some(api);
        }
        Ok(api)
    }

    /// The access token for a gRPC request (`None` without credentials), logging in over
    /// HTTP on the first server that answers when there is none, it is due, or `renew`.
    pub async fn access_token(&self, renew: bool) -> Result<Option<String>, String> {
        if self.credentials.is_none() {
            return Ok(None);
        }
        let start = self.preferred.load(Ordering::Relaxed);
        let mut last_error = String::from("no nacos server configured");
        for k in 0..self.servers.len() {
            let server = &self.servers[(start + k) % self.servers.len()];
            match self.token(server, renew).await {
                Ok(token) => return Ok(token),
                Err(e) => last_error = format!("{server}: {e}"),
            }
        }
        Err(last_error)
    }

    pub(super) async fn call_one(
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
        let (status, body) = self.login(server, user, password).await?;
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

    /// Posts the credentials to the login path that worked last; a server without it (404,
    /// 405, 501: not Nacos 3.x, or 3.x without v1) gets the other one.
    async fn login(
        &self,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<(u16, String), String> {
        let first = self.login_path.load(Ordering::Relaxed) % LOGIN_PATHS.len();
        let mut answer = (0, String::new());
        for k in 0..LOGIN_PATHS.len() {
            let index = (first + k) % LOGIN_PATHS.len();
            let response = self
                .http
                .post(format!("{server}{}", LOGIN_PATHS[index]))
                .form(&[("username", user), ("password", password)])
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|e| format!("login: {e}"))?;
            let status = response.status().as_u16();
            let body = response.text().await.map_err(|e| format!("login: {e}"))?;
            if matches!(status, 404 | 405 | 501) {
                answer = (status, body);
                continue;
            }
            self.login_path.store(index, Ordering::Relaxed);
            return Ok((status, body));
        }
        Ok(answer)
    }
}
