//! A gRPC echo upstream for the benchmark: HTTP/2 with prior knowledge (h2c), every request
//! answered `200` with `content-type: application/grpc`, the request's own length-prefixed
//! message as the response message, and `grpc-status: 0` in the trailers — what a unary
//! call looks like on the wire, whatever the method. The message is not decoded: the proxy in
//! front is what is measured, not protobuf.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use tokio::net::TcpListener;

pub async fn serve(addr: &str) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let Ok(mut conn) = h2::server::handshake(stream).await else {
                return;
            };
            while let Some(Ok((request, respond))) = conn.accept().await {
                tokio::spawn(answer(request, respond));
            }
        });
    }
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let mut body = request.into_body();
    let mut message = BytesMut::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        message.extend_from_slice(&chunk);
    }
    let response = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .expect("a valid response head");
    let Ok(mut stream) = respond.send_response(response, false) else {
        return;
    };
    if stream.send_data(message.freeze(), false).is_err() {
        return;
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let _ = stream.send_trailers(trailers);
}
