//! TLS connections per second from many concurrent clients: each client connects, completes
//! the handshake, sends one `GET /` with `Connection: close`, reads the answer to the end
//! (which also reads TLS 1.3's session tickets) and starts over. With `resume`, every
//! connection after a client's first offers the session of its previous one, so the server
//! does an abbreviated handshake when it accepts the ticket. A sequential client (openssl
//! s_time) measures the round trips of one connection, not what a server sustains.

use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslConnector, SslMethod, SslSession, SslSessionCacheMode, SslVerifyMode};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

pub async fn connections(addr: &str, conns: usize, seconds: u64, resume: bool) {
    let mut builder = SslConnector::builder(SslMethod::tls_client()).expect("TLS client");
    // The benchmark's certificate is made for the run; what is measured is the handshake.
    builder.set_verify(SslVerifyMode::NONE);
    // TLS 1.3 tickets arrive after the handshake; OpenSSL hands each new session to this
    // callback, which keeps it in the connection's slot for that client's next connection.
    builder.set_session_cache_mode(SslSessionCacheMode::CLIENT);
    builder.set_new_session_callback(|ssl, session| {
        if let Some(slot) = ssl.ex_data(slot_index()) {
            *slot.lock().expect("slot") = Some(session);
        }
    });
    let connector = Arc::new(builder.build());
    let (done, reused, failed) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (connector, addr) = (connector.clone(), addr.to_string());
        let (done, reused, failed) = (done.clone(), reused.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            let mut session: Option<SslSession> = None;
            while Instant::now() < deadline {
                match one(&connector, &addr, session.as_ref()).await {
                    Ok((was_reused, next)) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if was_reused {
                            reused.fetch_add(1, Ordering::Relaxed);
                        }
                        if resume {
                            session = next;
                        }
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "connections {n} in {secs:.2}s = {:.0}/s, resumed {}, failed {}",
        n as f64 / secs,
        reused.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed)
    );
}

type Outcome = (bool, Option<SslSession>);
type Slot = Arc<Mutex<Option<SslSession>>>;

fn slot_index() -> Index<Ssl, Slot> {
    static INDEX: OnceLock<Index<Ssl, Slot>> = OnceLock::new();
    *INDEX.get_or_init(|| Ssl::new_ex_index().expect("an ex_data index"))
}

async fn one(
    connector: &SslConnector,
    addr: &str,
    session: Option<&SslSession>,
) -> Result<Outcome, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut ssl = connector.configure()?.into_ssl("localhost")?;
    let slot: Slot = Arc::default();
    ssl.set_ex_data(slot_index(), slot.clone());
    if let Some(session) = session {
        // SAFETY: the session came from a connection of this same connector (same SSL_CTX),
        // which is what SSL_set_session requires.
        unsafe { ssl.set_session(session)? };
    }
    let mut stream = SslStream::new(ssl, tcp)?;
    Pin::new(&mut stream).connect().await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut sink = Vec::with_capacity(512);
    stream.read_to_end(&mut sink).await?;
    // Answer the server's close_notify: OpenSSL marks the session of a connection freed
    // without a shutdown as not resumable.
    let _ = stream.shutdown().await;
    let reused = stream.ssl().session_reused();
    let next = slot
        .lock()
        .expect("slot")
        .take()
        .or_else(|| stream.ssl().session().map(ToOwned::to_owned));
    Ok((reused, next))
}
