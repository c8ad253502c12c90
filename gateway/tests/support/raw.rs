//! Raw HTTP/1.1 over a std TcpStream, for clients that must never retry or pool behind the
//! test's back: every refused connection or broken response counts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One `GET /api/x` over raw HTTP/1.1, answered with its body. `conn` is reused while the server keeps it alive; the client
/// never retries, so every refused connection or broken response counts.
pub fn get(addr: &str, conn: &mut Option<TcpStream>, keep_alive: bool) -> Result<String, String> {
    if conn.is_none() {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        *conn = Some(s);
    }
    let s = conn.as_mut().unwrap();
    let req = if keep_alive {
        "GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n"
    } else {
        "GET /api/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    };
    s.write_all(req.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    // Read the head, then exactly content-length bytes.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            Ok(_) => return Err(format!("closed mid-response after {} bytes", buf.len())),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("status: {}", head.lines().next().unwrap_or("")));
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or("no content-length")?;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).map_err(|e| format!("body: {e}"))?;
    if !keep_alive || head.contains("connection: close") {
        *conn = None;
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}
