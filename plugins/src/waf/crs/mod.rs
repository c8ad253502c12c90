//! The CRS engine: OWASP Core Rule Set on libmodsecurity 3, and where it runs.
//!
//! libmodsecurity is synchronous C++ and costs 0.3–1 ms of CPU per request at paranoia 1
//! (measured: /work/notes/modsec, §8) — far too long for the proxy's event loop, whose other
//! connections would stall behind it. So every transaction runs on tokio's blocking pool,
//! one blocking call per request (connection → headers → body → logging), behind a
//! process-wide semaphore of as many permits as there are CPUs: more would only make the
//! engine's threads compete with each other and with the event loops. Requests beyond that
//! wait for a permit; when more than [`MAX_WAITING`] already wait, the request is answered
//! 503 at once rather than queued without bound (`tidegate_waf_overload_total`).
//!
//! The response side runs on the event loop, in Pingora's response filters (the body filter
//! is synchronous: there is no awaiting a pool there). It can: phase 3 (status and headers)
//! and phase 4 on a response the engine does not read the body of run a handful of rules —
//! microseconds; phase 4 on a body reads at most `response_body_limit` bytes (64 KiB by
//! default) of the content types listed, and costs what load-tests/ reports per response
//! (`waf-response` rows). A transaction whose request passed stays open until then, so
//! outbound rules see the request's variables, as CRS expects.
//!
//! * [`ffi`]: the C declarations; [`engine`]: the safe binding ([`engine::Rules`],
//!   [`engine::Transaction`], verdict parsing); [`rules`]: the SecLang a config loads.

pub mod engine;
pub mod ffi;
pub mod rules;

use engine::{RequestView, Rules, Transaction, Verdict};
use pingora_http::RequestHeader;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Requests that may wait for an inspection slot before more are answered 503.
pub const MAX_WAITING: usize = 256;

/// A request as the engine needs it, owned so that it can move to the blocking pool (the
/// body is at most the configured limit).
#[derive(Debug, Clone)]
pub struct Request {
    id: String,
    client_ip: String,
    method: String,
    uri: Vec<u8>,
    version: &'static str,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(req: &RequestHeader, client_ip: &str, body: Option<&[u8]>) -> Request {
        // The target as received (non-UTF-8 included), origin-form: the engine's
        // REQUEST_FILENAME (and so every path exclusion) is the path, not a whole URL.
        let raw = req.raw_path();
        let uri = if raw.starts_with(b"/") || raw == b"*" {
            raw.to_vec()
        } else {
            req.uri
                .path_and_query()
                .map_or_else(|| b"/".to_vec(), |p| p.as_str().as_bytes().to_vec())
        };
        let mut headers: Vec<(Vec<u8>, Vec<u8>)> = req
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec()))
            .collect();
        // HTTP/2 carries the host as :authority; the CRS expects a Host header (920280).
        if !req.headers.contains_key(http::header::HOST) {
            if let Some(authority) = req.uri.authority() {
                headers.push((b"host".to_vec(), authority.as_str().as_bytes().to_vec()));
            }
        }
        let version = match req.version {
            http::Version::HTTP_09 => "0.9",
            http::Version::HTTP_10 => "1.0",
            http::Version::HTTP_2 => "2.0",
            http::Version::HTTP_3 => "3.0",
            _ => "1.1",
        };
        Request {
            id: request_id(req),
            client_ip: if client_ip.is_empty() {
                "0.0.0.0".into()
            } else {
                client_ip.into()
            },
            method: req.method.as_str().into(),
            uri,
            version,
            headers,
            body: body.map(<[u8]>::to_vec),
        }
    }

    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            id: &self.id,
            client_ip: &self.client_ip,
            client_port: 0,
            server_ip: "0.0.0.0",
            server_port: 0,
            method: &self.method,
            uri: &self.uri,
            http_version: self.version,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect(),
            body: self.body.as_deref(),
        }
    }
}

/// The client's X-Request-Id when it is a plain token (it becomes the engine's UNIQUE_ID);
/// otherwise one of ours. The gateway's own id is not visible to plugins.
fn request_id(req: &RequestHeader) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let client = req
        .headers
        .get("x-request-id")
        .map(http::HeaderValue::as_bytes)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic));
    match client {
        Some(id) => String::from_utf8_lossy(id).into_owned(),
        None => format!("tidegate-waf-{}", NEXT.fetch_add(1, Ordering::Relaxed)),
    }
}

/// Why a request could not be inspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// More than [`MAX_WAITING`] requests were already waiting.
    Overloaded,
    /// The inspection task failed (a panic on the blocking pool).
    Failed,
}

/// The inspection slots: a semaphore and a bounded count of waiters.
pub struct Pool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

impl Pool {
    pub fn new(permits: usize, max_waiting: usize) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            max_waiting,
        }
    }

    /// The process's pool: one permit per CPU.
    pub fn global() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
            Pool::new(cpus, MAX_WAITING)
        })
    }

    /// Runs `job` on the blocking pool once a slot is free. The slot is held until `job`
    /// returns, even if the request is abandoned meanwhile, so the limit is on CPU work.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Unavailable>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(Unavailable::Overloaded);
                }
                let _waiting = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Unavailable::Failed)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| {
            log::error!("waf: an inspection task failed: {e}");
            Unavailable::Failed
        })
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// Counts one waiter while alive (also when the waiting future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Inspects `request` with `rules` on the global pool; with `stay_open`, a request that
/// passed keeps its transaction for the response.
pub async fn inspect(
    rules: Arc<Rules>,
    request: Request,
    stay_open: bool,
) -> Result<(Verdict, Option<Transaction>), Unavailable> {
    Pool::global()
        .run(move || engine::inspect(&rules, &request.view(), stay_open))
        .await
}

/// A loaded rules set held by a plugin. Freeing a rules set takes milliseconds under the
/// load lock, so when the last holder lets go inside a tokio runtime (a snapshot dropped on
/// an event-loop thread), the free moves to the blocking pool.
pub struct Loaded(Option<Arc<Rules>>);

impl Loaded {
    pub fn new(rules: Arc<Rules>) -> Loaded {
        Loaded(Some(rules))
    }

    pub fn get(&self) -> Arc<Rules> {
        self.0.clone().expect("present until dropped")
    }
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let Some(rules) = self.0.take() else {
            return;
        };
        // Usually not the last holder (other profiles, in-flight requests): then this is
        // only a count going down, wherever it runs.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            drop(runtime.spawn_blocking(move || drop(rules)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_queue_is_refused_and_a_waiter_runs_when_a_slot_frees() {
        let pool = Arc::new(Pool::new(1, 1));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        // The one slot: busy until released.
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().is_ok()).await })
        };
        while pool.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // One may wait...
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| 7).await })
        };
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // ...the next is refused at once.
        assert_eq!(pool.run(|| 8).await, Err(Unavailable::Overloaded));
        assert_eq!(pool.waiting(), 1);
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        assert_eq!(waiter.await.unwrap(), Ok(7));
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.run(|| 9).await, Ok(9));
    }

    #[tokio::test]
    async fn an_abandoned_waiter_leaves_the_queue() {
        let pool = Arc::new(Pool::new(1, 4));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().is_ok()).await })
        };
        while pool.permits.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let waiter = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| ()).await })
        };
        while pool.waiting() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(pool.waiting(), 0);
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
    }

    #[test]
    fn a_request_is_taken_as_received() {
        let req = testing::request(
            "POST",
            "/api/notes?id=1%27",
            &[
                ("host", "shop.example.com"),
                ("content-type", "application/json"),
                ("x-request-id", "abc-123"),
            ],
        );
        let owned = Request::new(&req, "192.0.2.1", Some(b"{}"));
        let view = owned.view();
        assert_eq!(view.method, "POST");
        assert_eq!(view.uri, b"/api/notes?id=1%27");
        assert_eq!(view.http_version, "1.1");
        assert_eq!(view.id, "abc-123");
        assert_eq!(view.client_ip, "192.0.2.1");
        assert_eq!(view.body, Some(&b"{}"[..]));
        assert!(view
            .headers
            .contains(&(&b"content-type"[..], &b"application/json"[..])));
        // Without a usable client id, one of ours; without a Host, the authority.
        let mut h2 = testing::request("GET", "/", &[("x-request-id", "a b")]);
        h2.set_uri(http::Uri::from_static("https://api.example.com/x?y=1"));
        h2.set_version(http::Version::HTTP_2);
        let owned = Request::new(&h2, "", None);
        let view = owned.view();
        assert!(view.id.starts_with("tidegate-waf-"), "{}", view.id);
        assert_eq!(view.uri, b"/x?y=1");
        assert_eq!(view.http_version, "2.0");
        assert_eq!(view.client_ip, "0.0.0.0");
        assert!(view
            .headers
            .contains(&(&b"host"[..], &b"api.example.com"[..])));
    }
}
