//! WebSocket upgrades on the request path: Tidegate does the handshake with the upstream
//! itself, answers the client, takes the client connection out of Pingora's session and
//! hands both sockets to a relay of its own (see [`crate::tunnel`] for why).

use super::{forwarded, respond, RequestCtx};
use crate::router::Route;
use crate::tunnel::{self, Registry, TunnelInfo};
use crate::upstream::{Members, Service};
use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use pingora_core::protocols::http::ServerSession;
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::Session;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// A non-101 answer to an Upgrade is relayed whole up to this size.
const MAX_REFUSAL_BODY: usize = 64 * 1024;

/// True for an HTTP/1.1 request asking to switch protocols.
pub fn is_upgrade_request(session: &Session) -> bool {
    session.as_downstream().as_http1().is_some() && session.as_downstream().is_upgrade_req()
}

/// Handles an Upgrade request completely: afterwards the session holds a stand-in connection
/// and the caller only has to report the request as answered.
pub async fn open(
    registry: &Arc<Registry>,
    session: &mut Session,
    ctx: &mut RequestCtx,
    route: &Arc<Route>,
    service: &Arc<Service>,
) -> pingora_core::Result<()> {
    let mut request = session.req_header().clone();
    forwarded::upstream_request(session, &mut request, ctx, route);
    let head = request_head(&request);

    let members = service.members();
    let Some((endpoint, mut upstream)) = connect(session, ctx, service, &members).await else {
        return respond::error(session, ctx, 502, "no upstream endpoint could be reached").await;
    };
    let endpoint = &members.endpoints[endpoint];
    ctx.upstream = Some(endpoint.addr);
    let _ = upstream.set_nodelay(true);

    let answer = tokio::time::timeout(service.read_timeout, async {
        upstream.write_all(&head).await?;
        read_response_head(&mut upstream).await
    })
    .await;
    let (response, extra) = match answer {
        Err(_) => {
            return respond::error(
                session,
                ctx,
                504,
                "upstream did not answer the upgrade in time",
            )
            .await
        }
        Ok(Err(e)) => {
            log::warn!("websocket handshake with {} failed: {e}", endpoint.addr);
            return respond::error(session, ctx, 502, "upstream refused the upgrade").await;
        }
        Ok(Ok(answer)) => answer,
    };

    if response.status.as_u16() != 101 {
        return relay_refusal(session, ctx, response, extra, &mut upstream).await;
    }
    let mut response = response;
    let _ = response.insert_header("x-request-id", ctx.request_id.as_str());
    ctx.status = 101;
    session
        .write_response_header(Box::new(response), false)
        .await?;

    // Bytes the client sent after its request (rare, but allowed once the 101 is out) sit in
    // the session's buffers; collect them before the connection leaves the session.
    let mut early = BytesMut::new();
    for _ in 0..16 {
        match session
            .as_downstream_mut()
            .read_request_body()
            .now_or_never()
        {
            Some(Ok(Some(bytes))) => early.extend_from_slice(&bytes),
            _ => break,
        }
    }
    ctx.original_request = Some(Box::new(session.req_header().clone()));
    let client = take_client_stream(session).await?;

    let info = TunnelInfo {
        route: route.name.clone(),
        service: service.name.clone(),
        endpoint: endpoint.addr,
        idle_ms: route.websocket_idle_timeout.as_millis() as u64,
    };
    let (client, buffered) = tunnel::detach(client);
    early.extend_from_slice(&buffered);
    let state = endpoint.state.clone();
    tunnel::spawn_relay(
        registry,
        info,
        client,
        upstream,
        early,
        extra,
        Default::default(),
        state,
    );
    Ok(())
}

async fn connect(
    session: &Session,
    ctx: &mut RequestCtx,
    service: &Service,
    members: &Members,
) -> Option<(usize, TcpStream)> {
    for _ in 0..=service.retries {
        let subset = ctx
            .route
            .as_ref()
            .and_then(|r| r.subsets.as_ref())
            .and_then(|s| s.choose(&session.req_header().headers));
        let key = service.key_for(session, &ctx.client_ip);
        if let (Some(chosen), Some(route), 0) = (&subset, &ctx.route, ctx.tried.count()) {
            crate::metrics::count_subset(&route.name, chosen.name);
        }
        let index = members.select_in(
            &key,
            &ctx.tried,
            subset.as_ref().map(|c| c.labels.as_slice()),
        )?;
        drop((subset, key));
        ctx.tried.add(index);
        let addr = members.endpoints[index].addr;
        match tokio::time::timeout(service.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Some((index, stream)),
            Ok(Err(e)) => log::warn!("websocket connect to {addr} failed: {e}"),
            Err(_) => log::warn!("websocket connect to {addr} timed out"),
        }
        service.connect_failed(&members.endpoints[index].state, &addr);
    }
    None
}

fn request_head(req: &RequestHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in &req.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Reads and parses the upstream's response head; returns it with any bytes read past it.
async fn read_response_head(upstream: &mut TcpStream) -> std::io::Result<(ResponseHeader, Bytes)> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if upstream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::other("upstream closed before answering"));
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.unwrap_or(502);
                let mut response = ResponseHeader::build(status, Some(parsed.headers.len()))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                for h in parsed.headers.iter() {
                    response
                        .append_header(h.name.to_string(), h.value)
                        .map_err(|e| std::io::Error::other(e.to_string()))?;
                }
                let extra = buf.split_off(len).freeze();
                return Ok((response, extra));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => continue,
            Ok(httparse::Status::Partial) => {
                return Err(std::io::Error::other("upstream response head too large"))
            }
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
}

/// The upstream said no (401, 403, 426, …): pass its answer on as an ordinary response.
async fn relay_refusal(
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut response: ResponseHeader,
    extra: Bytes,
    upstream: &mut TcpStream,
) -> pingora_core::Result<()> {
    let length = response
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_REFUSAL_BODY);
    let mut body = BytesMut::from(&extra[..extra.len().min(length)]);
    while body.len() < length {
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            upstream.read_buf(&mut body),
        )
        .await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            break;
        }
    }
    body.truncate(length);
    ctx.status = response.status.as_u16();
    response.remove_header(&http::header::TRANSFER_ENCODING);
    let _ = response.insert_header(http::header::CONTENT_LENGTH, body.len().to_string());
    let _ = response.insert_header("x-request-id", ctx.request_id.as_str());
    session.set_keepalive(None);
    session
        .write_response_header(Box::new(response), false)
        .await?;
    session
        .write_response_body(Some(body.freeze()), true)
        .await?;
    Ok(())
}

/// Takes the client connection out of Pingora's session, leaving a stand-in that has read a
/// `Connection: close` request so that Pingora's remaining bookkeeping ends quietly.
async fn take_client_stream(
    session: &mut Session,
) -> pingora_core::Result<pingora_core::protocols::Stream> {
    use pingora_core::protocols::l4::stream::Stream as L4Stream;
    let (stand_in, mut feeder) = tokio::net::UnixStream::pair().map_err(|e| {
        pingora_core::Error::because(pingora_core::ErrorType::InternalError, "socketpair", e)
    })?;
    feeder
        .write_all(b"GET / HTTP/1.1\r\nHost: tunnel\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| {
            pingora_core::Error::because(pingora_core::ErrorType::InternalError, "stand-in", e)
        })?;
    let mut replacement = ServerSession::new_http1(Box::new(L4Stream::from(stand_in)));
    replacement.read_request().await?;
    drop(feeder);
    let taken = std::mem::replace(session.as_downstream_mut(), replacement);
    match taken {
        ServerSession::H1(h1) => {
            let mut stream = h1.into_inner();
            // Pingora buffers writes; the 101 must be on the wire before the relay starts.
            stream.flush().await.map_err(|e| {
                pingora_core::Error::because(pingora_core::ErrorType::WriteError, "flush 101", e)
            })?;
            Ok(stream)
        }
        _ => pingora_core::Error::e_explain(
            pingora_core::ErrorType::InternalError,
            "upgrade on a non-HTTP/1 session",
        ),
    }
}
