//! One active check of one endpoint: a TCP connect, an HTTP/1.1 GET, or a gRPC health check
//! (`grpc.health.v1.Health/Check` over HTTP/2 with prior knowledge).

use crate::config::HealthCheckConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One check: a TCP connect, an HTTP/1.1 GET whose status must be 2xx or 3xx, or a gRPC
/// health check that must answer SERVING.
pub async fn probe(check: &HealthCheckConfig, addr: SocketAddr) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        match check.r#type.as_str() {
            "tcp" => return Some(true),
            "grpc" => return grpc(stream, addr, &check.grpc_service).await,
            _ => {}
        }
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: tidegate-health-check\r\nConnection: close\r\n\r\n",
            check.path
        );
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.1 200"
        let status = std::str::from_utf8(&head[9..12])
            .ok()?
            .parse::<u16>()
            .ok()?;
        Some((200..400).contains(&status))
    };
    matches!(
        tokio::time::timeout(Duration::from_millis(check.timeout_ms), attempt).await,
        Ok(Some(true))
    )
}

/// `grpc.health.v1.Health/Check { service }` must answer `{ status: SERVING }` with
/// `grpc-status: 0`. The two messages are tiny protobufs, written and read by hand.
async fn grpc(stream: TcpStream, addr: SocketAddr, service: &str) -> Option<bool> {
    let (mut client, connection) = h2::client::handshake(stream).await.ok()?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "tidegate-health-check")
        .body(())
        .ok()?;
    let (response, mut send) = client.send_request(request, false).ok()?;
    // HealthCheckRequest: field 1 (service), a length-delimited string.
    let mut message = Vec::with_capacity(service.len() + 2);
    if !service.is_empty() {
        message.push(0x0a);
        message.push(u8::try_from(service.len()).ok().filter(|n| *n < 0x80)?);
        message.extend_from_slice(service.as_bytes());
    }
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).ok()?.to_be_bytes());
    frame.extend_from_slice(&message);
    send.send_data(bytes::Bytes::from(frame), true).ok()?;
    let response = response.await.ok()?;
    if response.status() != http::StatusCode::OK {
        return Some(false);
    }
    let header_status = response.headers().get("grpc-status").cloned();
    let mut body = response.into_body();
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
        if data.len() > 64 {
            break;
        }
    }
    let trailer_status = body
        .trailers()
        .await
        .ok()
        .flatten()
        .and_then(|t| t.get("grpc-status").cloned());
    let ok = header_status.or(trailer_status).is_some_and(|s| s == "0");
    // HealthCheckResponse: field 1 (status) as a varint; SERVING = 1.
    Some(ok && data.len() >= 7 && data[5..7] == [0x08, 0x01])
}
