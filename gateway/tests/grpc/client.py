#!/usr/bin/env python3
"""Runs one gRPC test case against a target (server.py, or Tidegate in front of it) and prints
one JSON line: case, code (a grpc.StatusCode name), details, messages, initial_metadata,
trailing_metadata, elapsed_ms (grpc_web adds http_status and content_type).

    client.py --target HOST:PORT --case CASE [--tls-ca CA] [--authority NAME]
              [--tls-client CERT KEY] [--metadata K=V]... [--message M]... [--expect CODE]

Cases (the Echo methods are described in server.py):
  unary          Unary "hello"
  server_stream  ServerStream "3": three messages
  client_stream  ClientStream "a" "b" "c": one message "abc"
  bidi           Bidi "one" "two" "three": the same three back
  deadline       Slow "2000" with a 200 ms deadline (--deadline-ms): DEADLINE_EXCEEDED
  fail           Fail "PERMISSION_DENIED:denied by echo": that status, message and trailers
  health         grpc.health.v1.Health/Check for --service (default ""): SERVING or NOT_SERVING
  set_health     SetHealth --message (default NOT_SERVING)
  no_route       Unary "hello" on --path (default /tidegate.test.NoSuch/Nothing): whatever
                 status the client sees (UNIMPLEMENTED straight from grpcio)
  grpc_web       (gateway only) a hand-built gRPC-Web call over plain HTTP/1.1 (HTTPS with
                 --tls-ca): POST /tidegate.test.Echo/--method (default Unary) with
                 application/grpc-web+proto frames, response frames and trailer frame parsed
--message replaces the case's request message(s) (repeat it for client_stream and bidi).
Binary (-bin) metadata values are printed base64-encoded. Exits 0 once the case ran, whatever
its status, unless --expect CODE names another status (then 1).
"""
import argparse
import base64
import http.client
import json
import socket
import ssl
import struct
import sys
import time
import urllib.parse

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ECHO = "/tidegate.test.Echo/"
DEFAULTS = {
    "unary": [b"hello"],
    "server_stream": [b"3"],
    "client_stream": [b"a", b"b", b"c"],
    "bidi": [b"one", b"two", b"three"],
    "deadline": [b"2000"],
    "fail": [b"PERMISSION_DENIED:denied by echo"],
    "set_health": [b"NOT_SERVING"],
    "no_route": [b"hello"],
}
GRPC_WEB_DEFAULTS = {"ServerStream": b"3", "Slow": b"100", "Fail": DEFAULTS["fail"][0], "SetHealth": b"SERVING"}
# How gRPC maps an HTTP status to a gRPC one when a response has no grpc-status.
HTTP_TO_GRPC = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "UNIMPLEMENTED",
                429: "UNAVAILABLE", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "UNAVAILABLE"}


def text(b):
    return b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else b


def md_dict(pairs):
    """Metadata as a dict; a repeated key gets a list; -bin values base64."""
    out = {}
    for k, v in pairs or ():
        v = base64.b64encode(v).decode() if isinstance(v, bytes) else v
        if k not in out:
            out[k] = v
        elif isinstance(out[k], list):
            out[k].append(v)
        else:
            out[k] = [out[k], v]
    return out


def channel(args):
    options = [("grpc.enable_http_proxy", 0), ("grpc.enable_retries", 0)]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    if not args.tls_ca:
        return grpc.insecure_channel(args.target, options=options)
    if args.authority:
        options.append(("grpc.ssl_target_name_override", args.authority))
    cert, key = (open(f, "rb").read() for f in args.tls_client) if args.tls_client else (None, None)
    creds = grpc.ssl_channel_credentials(open(args.tls_ca, "rb").read(), private_key=key, certificate_chain=cert)
    return grpc.secure_channel(args.target, creds, options=options)


def run_grpc(args, messages):
    """Runs a native gRPC case; returns (code, details, messages, initial md, trailing md)."""
    ch = channel(args)
    md = tuple(args.metadata)
    timeout = args.timeout
    case = args.case
    got = []
    try:
        if case == "health":
            stub = health_pb2_grpc.HealthStub(ch)
            resp, call = stub.Check.with_call(health_pb2.HealthCheckRequest(service=args.service),
                                              metadata=md, timeout=timeout)
            got = [health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)]
        elif case in ("server_stream", "bidi"):
            kind = ch.unary_stream if case == "server_stream" else ch.stream_stream
            method = "ServerStream" if case == "server_stream" else "Bidi"
            req = messages[0] if case == "server_stream" else iter(messages)
            call = kind(ECHO + method)(req, metadata=md, timeout=timeout)
            for m in call:
                got.append(m)
        else:
            if case == "client_stream":
                rpc, req = ch.stream_unary(ECHO + "ClientStream"), iter(messages)
            else:
                path = {"unary": ECHO + "Unary", "deadline": ECHO + "Slow", "fail": ECHO + "Fail",
                        "set_health": ECHO + "SetHealth", "no_route": args.path}[case]
                rpc, req = ch.unary_unary(path), messages[0]
                if case == "deadline":
                    timeout = args.deadline_ms / 1000
            resp, call = rpc.with_call(req, metadata=md, timeout=timeout)
            got = [resp]
        return call.code(), call.details(), got, call.initial_metadata(), call.trailing_metadata()
    except grpc.RpcError as e:  # the error is also the call: status, details and metadata
        return e.code(), e.details(), got, e.initial_metadata(), e.trailing_metadata()
    finally:
        ch.close()


def run_grpc_web(args, messages):
    """A gRPC-Web (application/grpc-web+proto) call over HTTP/1.1, framed by hand."""
    host, _, port = args.target.rpartition(":")
    authority = args.authority or args.target
    if args.tls_ca:
        ctx = ssl.create_default_context(cafile=args.tls_ca)
        ctx.set_alpn_protocols(["http/1.1"])
        if args.tls_client:
            ctx.load_cert_chain(*args.tls_client)
        sni = authority.rpartition(":")[0] if authority.rsplit(":", 1)[-1].isdigit() else authority

        class Conn(http.client.HTTPSConnection):
            def connect(self):  # SNI and certificate check against --authority, not the address
                http.client.HTTPConnection.connect(self)
                self.sock = ctx.wrap_socket(self.sock, server_hostname=sni)

        conn = Conn(host, int(port), timeout=args.timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(host, int(port), timeout=args.timeout)
    body = b"".join(b"\x00" + struct.pack(">I", len(m)) + m for m in messages)
    headers = {"Host": authority, "Content-Type": "application/grpc-web+proto",
               "Accept": "application/grpc-web+proto", "X-Grpc-Web": "1", "X-User-Agent": "tidegate-test"}
    headers.update(args.metadata)
    conn.request("POST", ECHO + args.method, body=body, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    header_md = [(k.lower(), v) for k, v in resp.getheaders()]
    got, trailers, pos = [], [], 0
    while pos + 5 <= len(raw):
        flag, size = raw[pos], struct.unpack(">I", raw[pos + 1:pos + 5])[0]
        frame, pos = raw[pos + 5:pos + 5 + size], pos + 5 + size
        if flag & 0x80:  # the trailer frame: HTTP/1-style header lines
            for line in frame.decode("latin-1").split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    trailers.append((k.strip().lower(), v.strip()))
        elif flag & 0x01:
            got.append(f"<compressed frame, {size} bytes>".encode())
        else:
            got.append(frame)
    if pos != len(raw):
        got.append(f"<{len(raw) - pos} trailing bytes that are no whole frame>".encode())
    status = dict(trailers).get("grpc-status") or dict(header_md).get("grpc-status")  # or trailers-only
    message = dict(trailers).get("grpc-message") or dict(header_md).get("grpc-message") or ""
    if status is not None:
        code = next((c for c in grpc.StatusCode if str(c.value[0]) == status.strip()), None)
        code = code.name if code else f"UNKNOWN({status})"
    else:
        code = "OK" if resp.status == 200 and trailers else HTTP_TO_GRPC.get(resp.status, "UNKNOWN")
    extra = {"http_status": resp.status, "content_type": resp.getheader("content-type")}
    return code, urllib.parse.unquote(message), got, header_md, trailers, extra


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--target", required=True, help="HOST:PORT")
    p.add_argument("--case", required=True, choices=[*DEFAULTS, "health", "grpc_web"])
    p.add_argument("--tls-ca", metavar="CA", help="use TLS, trusting this CA")
    p.add_argument("--authority", metavar="NAME", help=":authority/Host (and the TLS name checked)")
    p.add_argument("--tls-client", nargs=2, metavar=("CERT", "KEY"), help="client certificate for mTLS")
    p.add_argument("--metadata", action="append", default=[], metavar="K=V", help="request metadata")
    p.add_argument("--message", action="append", metavar="M", help="request message(s) instead of the defaults")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds for the whole call (default 10)")
    p.add_argument("--deadline-ms", type=int, default=200, help="the deadline case's deadline (default 200)")
    p.add_argument("--service", default="", help="the health case's service name (default \"\")")
    p.add_argument("--path", default="/tidegate.test.NoSuch/Nothing", help="the no_route case's path")
    p.add_argument("--method", default="Unary", help="the grpc_web case's Echo method (default Unary)")
    p.add_argument("--expect", metavar="CODE", help="exit 1 unless the status is CODE")
    args = p.parse_args()
    args.metadata = [tuple(kv.split("=", 1)) for kv in args.metadata]
    if args.message:
        messages = [m.encode() for m in args.message]
    elif args.case == "grpc_web":
        messages = [GRPC_WEB_DEFAULTS.get(args.method, b"hello")]
    else:
        messages = DEFAULTS.get(args.case, [b""])

    start = time.monotonic()
    extra = {}
    try:
        if args.case == "grpc_web":
            code, details, got, initial, trailing, extra = run_grpc_web(args, messages)
        else:
            code, details, got, initial, trailing = run_grpc(args, messages)
            code = code.name
    except (OSError, http.client.HTTPException, socket.timeout) as e:  # grpc_web transport errors
        code, details, got, initial, trailing = "TRANSPORT_ERROR", f"{type(e).__name__}: {e}", [], [], []
    result = {"case": args.case, "code": code, "details": details, "messages": [text(m) for m in got],
              "initial_metadata": md_dict(initial), "trailing_metadata": md_dict(trailing),
              "elapsed_ms": round((time.monotonic() - start) * 1000), **extra}
    print(json.dumps(result, sort_keys=True), flush=True)
    if args.expect and args.expect.upper() != code:
        sys.exit(1)


if __name__ == "__main__":
    main()
