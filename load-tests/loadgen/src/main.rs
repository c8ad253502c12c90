//! Load pieces for `load-tests/run.sh` that no packaged tool provides:
//! - `echo-server ADDR`: the WebSocket upstream, echoing every message;
//! - `idle URL N SECS`: opens N tunnels, holds them idle, then checks each still echoes;
//! - `echo URL CONNS SECS SIZE`: CONNS clients send SIZE-byte messages back to back and count
//!   echoes; prints messages per second;
//! - `grpc-server ADDR`: a gRPC upstream over h2c that answers every unary call with its own
//!   request message ([`grpc`]), fast enough that the proxy in front is what is measured;
//! - `tls ADDR CONNS SECS new|resume`: TLS connections per second, one request each, with
//!   full or resumed handshakes ([`tls`]).
//!
//! Every loop is bounded by its count and time.

mod grpc;
mod tls;

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    EchoServer {
        addr: String,
    },
    Idle {
        url: String,
        count: usize,
        seconds: u64,
    },
    Echo {
        url: String,
        conns: usize,
        seconds: u64,
        size: usize,
    },
    GrpcServer {
        addr: String,
    },
    Tls {
        addr: String,
        conns: usize,
        seconds: u64,
        /// `new` (full handshakes) or `resume` (offer the previous session)
        mode: String,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match Cli::parse().command {
        Command::EchoServer { addr } => echo_server(&addr).await,
        Command::Idle {
            url,
            count,
            seconds,
        } => idle(&url, count, seconds).await,
        Command::Echo {
            url,
            conns,
            seconds,
            size,
        } => echo(&url, conns, seconds, size).await,
        Command::GrpcServer { addr } => grpc::serve(&addr).await,
        Command::Tls {
            addr,
            conns,
            seconds,
            mode,
        } => tls::connections(&addr, conns, seconds, mode == "resume").await,
    }
}

async fn echo_server(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() {
                    return;
                }
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn idle(url: &str, count: usize, seconds: u64) {
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => clients.push(ws),
            Err(e) => {
                println!("opened {i} of {count}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("opened {count}");
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let mut alive = 0;
    for ws in &mut clients {
        if ws.send(Message::text("still there?")).await.is_ok()
            && matches!(
                tokio::time::timeout(Duration::from_secs(5), ws.next()).await,
                Ok(Some(Ok(_)))
            )
        {
            alive += 1;
        }
    }
    println!("alive {alive}");
}

async fn echo(url: &str, conns: usize, seconds: u64, size: usize) {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let payload = vec![b'x'; size];
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (done, payload, url) = (done.clone(), payload.clone(), url.to_string());
        tasks.push(tokio::spawn(async move {
            let Ok((mut ws, _)) = tokio_tungstenite::connect_async(&url).await else {
                return;
            };
            while Instant::now() < deadline {
                if ws.send(Message::binary(payload.clone())).await.is_err() {
                    return;
                }
                match ws.next().await {
                    Some(Ok(_)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => return,
                };
            }
        }));
    }
    let started = Instant::now();
    for t in tasks {
        let _ = t.await;
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "messages {n} in {:.2}s = {:.0}/s",
        started.elapsed().as_secs_f64(),
        n as f64 / started.elapsed().as_secs_f64()
    );
}
