//! One gRPC connection to one Nacos server: one tonic `Channel`, which is one HTTP/2
//! connection carrying both the unary calls and the bi-stream. Both servers tie a Nacos
//! connection to the transport (rnacos: to the TCP peer address), so the two must share it.
//!
//! Opening: ServerCheckRequest (unary) → the bi-stream, its first message
//! ConnectionSetupRequest queued before the call starts (grpc-java sends the stream's
//! response headers only with its first message, so awaiting `streaming()` before sending
//! would hang against Java Nacos) → HealthCheckRequest every 100 ms until it answers 200
//! (both servers answer 301 before the connection is registered).
//!
//! Then: `request(type, json)` with the access token in `metadata.headers`; server pushes
//! acked on the stream with their requestId and delivered to the owner's channel;
//! HealthCheckRequest when idle for 5 s (no HTTP/2 PINGs: Java Nacos GOAWAYs pings more
//! often than every 5 min). The connection is down — for good; the owner builds a new one
//! and redoes everything — on a 301 answer, the end of the stream, a transport error, or
//! three failed health checks. tonic's `Channel` would reconnect on its own, silently, to a
//! new Nacos connection without stream or registrations: that is never relied on.

use super::messages::{self, Outcome, UNREGISTERED};
use super::proto::{Codec, Payload, BI_STREAM, REQUEST};
use http::uri::PathAndQuery;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::client::Grpc;
use tonic::transport::{Channel, Endpoint};

/// Largest answer accepted (tonic's default is 4 MiB; a big service's ServiceInfo can pass it).
const MAX_MESSAGE: usize = 64 << 20;
/// A health check after this long without traffic (Java client: `connectionKeepAlive`).
const KEEPALIVE: Duration = Duration::from_secs(5);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Failed health checks in a row that end the connection.
const HEALTH_TRIES: u32 = 3;
/// How often readiness is asked while the connection is being set up.
const READY_POLL: Duration = Duration::from_millis(100);
/// Messages queued for the stream (the setup, then acks).
const OUTBOUND: usize = 64;

/// Where a connection goes: the gRPC address of a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its place in `[nacos] servers`; `None` for a server a ConnectResetRequest named.
    pub index: Option<usize>,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// What the server pushed, already acked.
#[derive(Debug)]
pub enum Push {
    /// NotifySubscriberRequest: the `serviceInfo` of a subscribed service.
    Service(Value),
    /// ConfigChangeNotifyRequest: the data id changed; query it.
    ConfigChanged { data_id: String, group: String },
    /// ConnectResetRequest: reconnect, to this server (HTTP port) when it says one.
    Reset {
        host: Option<String>,
        port: Option<u16>,
    },
}

#[derive(Debug)]
pub enum RpcError {
    /// The connection is gone (or the server forgot it): reconnect.
    Down(String),
    /// No answer in time.
    Timeout,
    /// The server answered with an error.
    Refused { code: i64, message: String },
    /// The HTTP login for the access token failed.
    Login(String),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::Down(why) => write!(f, "connection down: {why}"),
            RpcError::Timeout => write!(f, "no answer in time"),
            RpcError::Refused { code, message } => write!(f, "refused with code {code}: {message}"),
            RpcError::Login(e) => write!(f, "login: {e}"),
        }
    }
}

/// What the connection's tasks share with it.
struct Shared {
    /// Last inbound message or answered request.
    last_active: parking_lot::Mutex<Instant>,
    /// Why the connection is down; `None` while it is up.
    down: watch::Sender<Option<String>>,
}

impl Shared {
    fn touch(&self) {
        *self.last_active.lock() = Instant::now();
    }

    fn idle(&self) -> Duration {
        self.last_active.lock().elapsed()
    }

    fn mark_down(&self, why: String) {
        self.down.send_if_modified(|down| {
            if down.is_none() {
                *down = Some(why);
                true
            } else {
                false
            }
        });
    }

    fn down_reason(&self) -> Option<String> {
        self.down.borrow().clone()
    }
}

pub struct Connection {
    pub server: Server,
    /// The server's name for this connection (ServerCheckResponse.connectionId).
    pub id: String,
    channel: Channel,
    client_ip: String,
    timeout: Duration,
    shared: Arc<Shared>,
    /// The stream reader and the keepalive; aborted when the connection is dropped.
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Connection {
    /// Connects and sets up; returns once the server has registered the connection.
    /// Pushes go to `pushes` (dropped when nobody receives them).
    pub async fn open(
        server: Server,
        namespace: &str,
        timeout: Duration,
        pushes: mpsc::Sender<Push>,
    ) -> Result<Connection, String> {
        let endpoint = Endpoint::from_shared(format!("http://{server}"))
            .map_err(|e| format!("bad address: {e}"))?
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .tcp_nodelay(true)
            .tcp_keepalive(Some(Duration::from_secs(30)));
        let channel = tokio::time::timeout(timeout, endpoint.connect())
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("connect: {}", error_chain(&e)))?;
        let client_ip = local_ip(&server.host, server.port).await;

        let check = unary(
            &channel,
            Payload::new(
                "ServerCheckRequest",
                &messages::server_check(),
                &client_ip,
                None,
            ),
            timeout,
        )
        .await
        .map_err(|e| format!("server check: {e}"))?;
        let answer = check.json()?;
        if let Outcome::Error { code, message } = messages::outcome(check.kind(), &answer) {
            return Err(format!("server check refused with code {code}: {message}"));
        }
        let id = answer["connectionId"].as_str().unwrap_or("").to_string();

        let (down, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            last_active: parking_lot::Mutex::new(Instant::now()),
            down,
        });
        let (outbound, outbound_rx) = mpsc::channel(OUTBOUND);
        // Queued before the stream call starts: it goes out with the request, whatever the
        // server does with its response headers.
        outbound
            .try_send(Payload::new(
                "ConnectionSetupRequest",
                &messages::connection_setup(namespace),
                &client_ip,
                None,
            ))
            .map_err(|_| "cannot queue the connection setup".to_string())?;
        let reader = tokio::spawn(read_stream(
            channel.clone(),
            outbound_rx,
            outbound,
            shared.clone(),
            pushes,
            client_ip.clone(),
        ));
        let mut connection = Connection {
            server,
            id,
            channel,
            client_ip,
            timeout,
            shared,
            tasks: vec![reader],
        };
        connection.wait_ready().await?;
        connection.tasks.push(tokio::spawn(keep_alive(
            connection.channel.clone(),
            connection.shared.clone(),
            connection.client_ip.clone(),
        )));
        Ok(connection)
    }

    /// HealthCheck until it answers 200: the server has registered the connection.
    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + self.timeout.max(Duration::from_secs(1));
        loop {
            if let Some(why) = self.shared.down_reason() {
                return Err(why);
            }
            let last = match health_check(&self.channel, &self.client_ip, self.timeout).await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready in time: {last}"));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// One request: the answer's JSON when it says success, else why not. A 301 answer or a
    /// transport error takes the connection down.
    pub async fn request(
        &self,
        kind: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Result<Value, RpcError> {
        if let Some(why) = self.shared.down_reason() {
            return Err(RpcError::Down(why));
        }
        let result = self
            .exchange(Payload::new(kind, body, &self.client_ip, token))
            .await;
        let answered = matches!(result, Ok(_) | Err(RpcError::Refused { .. }));
        crate::metrics::get()
            .nacos_requests
            .with_label_values(&[if answered { "ok" } else { "error" }])
            .inc();
        result
    }

    async fn exchange(&self, payload: Payload) -> Result<Value, RpcError> {
        let answer = match unary(&self.channel, payload, self.timeout).await {
            Ok(answer) => answer,
            Err(e) => {
                if let RpcError::Down(why) = &e {
                    self.shared.mark_down(why.clone());
                }
                return Err(e);
            }
        };
        self.shared.touch();
        let json = answer
            .json()
            .map_err(|message| RpcError::Refused { code: 500, message })?;
        match messages::outcome(answer.kind(), &json) {
            Outcome::Ok => Ok(json),
            Outcome::Error {
                code: UNREGISTERED,
                message,
            } => {
                let why = format!("the server does not know the connection ({message})");
                self.shared.mark_down(why.clone());
                Err(RpcError::Down(why))
            }
            Outcome::Error { code, message } => Err(RpcError::Refused { code, message }),
        }
    }

    /// Why the connection is down, if it is.
    pub fn down_reason(&self) -> Option<String> {
        self.shared.down_reason()
    }

    /// Waits until the connection is down; returns why.
    pub async fn closed(&self) -> String {
        let mut down = self.shared.down.subscribe();
        let why = down
            .wait_for(Option::is_some)
            .await
            .map(|why| why.clone().unwrap_or_default());
        why.unwrap_or_else(|_| "closed".into())
    }

    /// Takes the connection down (a ConnectResetRequest, the test hook).
    pub fn close(&self, why: String) {
        self.shared.mark_down(why);
    }
}

async fn unary(
    channel: &Channel,
    payload: Payload,
    timeout: Duration,
) -> Result<Payload, RpcError> {
    let channel = channel.clone();
    let call = async move {
        let mut grpc = Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE);
        grpc.ready()
            .await
            .map_err(|e| RpcError::Down(format!("channel: {}", error_chain(&e))))?;
        grpc.unary(
            tonic::Request::new(payload),
            PathAndQuery::from_static(REQUEST),
            Codec::default(),
        )
        .await
        .map(tonic::Response::into_inner)
        .map_err(status_error)
    };
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(RpcError::Timeout))
}

/// A failed call: too big an answer is the server's; anything else means the transport.
fn status_error(status: tonic::Status) -> RpcError {
    match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => RpcError::Refused {
            code: 500,
            message: status.message().to_string(),
        },
        code => RpcError::Down(format!("{code:?}: {}", status.message())),
    }
}

async fn health_check(
    channel: &Channel,
    client_ip: &str,
    timeout: Duration,
) -> Result<(), RpcError> {
    let payload = Payload::new(
        "HealthCheckRequest",
        &messages::health_check(),
        client_ip,
        None,
    );
    let answer = unary(channel, payload, timeout).await?;
    let json = answer
        .json()
        .map_err(|message| RpcError::Refused { code: 500, message })?;
    match messages::outcome(answer.kind(), &json) {
        Outcome::Ok => Ok(()),
        Outcome::Error { code, message } => Err(RpcError::Refused { code, message }),
    }
}

/// Runs the bi-stream: sends what is queued on `outbound` (the setup, then acks), reads
/// pushes, acks them through `acks` and hands them to `pushes`. Its end takes the connection
/// down.
async fn read_stream(
    channel: Channel,
    outbound: mpsc::Receiver<Payload>,
    acks: mpsc::Sender<Payload>,
    shared: Arc<Shared>,
    pushes: mpsc::Sender<Push>,
    client_ip: String,
) {
    let requests = futures_util::stream::unfold(outbound, |mut rx| async move {
        rx.recv().await.map(|payload| (payload, rx))
    });
    let mut grpc = Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE);
    if let Err(e) = grpc.ready().await {
        shared.mark_down(format!("channel: {}", error_chain(&e)));
        return;
    }
    let response = grpc
        .streaming(
            tonic::Request::new(requests),
            PathAndQuery::from_static(BI_STREAM),
            Codec::default(),
        )
        .await;
    let mut stream = match response {
        Ok(response) => response.into_inner(),
        Err(status) => {
            shared.mark_down(format!(
                "stream refused: {:?}: {}",
                status.code(),
                status.message()
            ));
            return;
        }
    };
    loop {
        let payload = match stream.message().await {
            Ok(Some(payload)) => payload,
            Ok(None) => {
                shared.mark_down("the server ended the stream".into());
                return;
            }
            Err(status) => {
                shared.mark_down(format!("stream: {:?}: {}", status.code(), status.message()));
                return;
            }
        };
        shared.touch();
        on_push(payload, &acks, &pushes, &client_ip).await;
    }
}

/// One message from the server: acked (same requestId), then handed on.
async fn on_push(
    payload: Payload,
    acks: &mpsc::Sender<Payload>,
    pushes: &mpsc::Sender<Push>,
    client_ip: &str,
) {
    let kind = payload.kind().to_string();
    let body = match payload.json() {
        Ok(body) => body,
        Err(e) => {
            log::warn!("nacos push: {e}");
            return;
        }
    };
    if let Some((answer_kind, answer)) = messages::ack(&kind, &messages::request_id(&body)) {
        let _ = acks
            .send(Payload::new(&answer_kind, &answer, client_ip, None))
            .await;
    }
    let text = |field: &str| body[field].as_str().unwrap_or("").to_string();
    let push = match kind.as_str() {
        "NotifySubscriberRequest" => Push::Service(body["serviceInfo"].clone()),
        "ConfigChangeNotifyRequest" => Push::ConfigChanged {
            data_id: text("dataId"),
            group: text("group"),
        },
        "ConnectResetRequest" => Push::Reset {
            host: Some(text("serverIp")).filter(|h| !h.is_empty()),
            port: match &body["serverPort"] {
                Value::String(s) => s.parse().ok(),
                Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
                _ => None,
            },
        },
        "ClientDetectionRequest" | "SetupAckRequest" => return,
        other => {
            log::debug!("nacos: push {other} ignored");
            return;
        }
    };
    // Nobody may be listening (the startup prefetch): then the push is dropped.
    let _ = pushes.send(push).await;
}

/// Health checks while the connection is idle; three failures in a row take it down.
async fn keep_alive(channel: Channel, shared: Arc<Shared>, client_ip: String) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0;
    loop {
        ticker.tick().await;
        if shared.down_reason().is_some() {
            return;
        }
        if shared.idle() < KEEPALIVE {
            continue;
        }
        match health_check(&channel, &client_ip, HEALTH_TIMEOUT).await {
            Ok(()) => {
                failures = 0;
                shared.touch();
            }
            Err(RpcError::Refused {
                code: UNREGISTERED,
                message,
            }) => {
                shared.mark_down(format!(
                    "the server does not know the connection ({message})"
                ));
                return;
            }
            Err(RpcError::Down(why)) => {
                shared.mark_down(why);
                return;
            }
            Err(e) => {
                failures += 1;
                if failures >= HEALTH_TRIES {
                    shared.mark_down(format!("{HEALTH_TRIES} health checks failed: {e}"));
                    return;
                }
            }
        }
    }
}

/// The local address towards the server, for `metadata.clientIp` (no packet is sent: a UDP
/// socket is only connected). Empty when it cannot be found.
async fn local_ip(host: &str, port: u16) -> String {
    let Ok(mut addrs) = tokio::net::lookup_host((host, port)).await else {
        return String::new();
    };
    let Some(remote) = addrs.next() else {
        return String::new();
    };
    let bind = if remote.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(bind).await else {
        return String::new();
    };
    if socket.connect(remote).await.is_err() {
        return String::new();
    }
    socket
        .local_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

/// An error with its sources ("transport error" alone says nothing).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
