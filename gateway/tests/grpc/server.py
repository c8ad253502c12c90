#!/usr/bin/env python3
"""A gRPC test upstream for Tidegate: service tidegate.test.Echo plus grpc.health.v1.Health.

    server.py --port P [--name N] [--tls CERT KEY [--client-ca CA]] [--health-file PATH]

Listens on 127.0.0.1 only: h2c (prior knowledge) by default, TLS with --tls (mTLS when
--client-ca is given too). --port 0 picks a free port. The first line on stdout is
`listening 127.0.0.1:PORT`. No protobuf for Echo: every message is raw bytes (the identity
serializer), so there is no protoc step and nothing generated. Methods (/tidegate.test.Echo/...):

  Unary         b"NAME:" + request
  ServerStream  request is a count n (ASCII, default 3): n messages b"NAME:0" .. b"NAME:n-1"
  ClientStream  the request messages concatenated
  Bidi          each request message back, as it comes
  Slow          request is ms (ASCII): sleeps that long, then b"slept MS ms"; stops early
                when the call is cancelled or its deadline passes
  Fail          request b"CODE[:message]" (a status name such as UNAVAILABLE or a number):
                ends with that status and message, and trailers fail-code, fail-detail-bin
  SetHealth     request b"STATUS" or b"SERVICE=STATUS" (SERVING / NOT_SERVING): sets what
                grpc.health.v1.Health reports for SERVICE ("" and tidegate.test.Echo if none)

Every Echo call gets initial metadata x-served-by: NAME and trailing metadata
echo-x-forwarded-for / echo-x-request-id (when the request had them), echo-peer (the address
the call came from) and echo-metadata (all the text metadata seen, as JSON).
--health-file PATH: whenever that file's content changes (read every 100 ms) its first word,
a status name, becomes the status of "" and tidegate.test.Echo; a missing file means SERVING.
"""
import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "tidegate.test.Echo"
STATUS = health_pb2.HealthCheckResponse.ServingStatus


def raw(handler):
    """A handler factory with bytes in and bytes out (no protobuf)."""
    return lambda behaviour: handler(behaviour, request_deserializer=None, response_serializer=None)


unary, server_stream = raw(grpc.unary_unary_rpc_method_handler), raw(grpc.unary_stream_rpc_method_handler)
client_stream, bidi = raw(grpc.stream_unary_rpc_method_handler), raw(grpc.stream_stream_rpc_method_handler)


def code_of(text):
    text = text.strip().upper()
    for code in grpc.StatusCode:
        if text in (code.name, str(code.value[0])):
            return code
    raise ValueError(f"unknown status code {text!r}")


class Echo:
    def __init__(self, name, health_servicer):
        self.name, self.health = name, health_servicer

    def seen(self, context):
        """Initial metadata now, and the echo-* trailers; called first by every method."""
        context.send_initial_metadata((("x-served-by", self.name),))
        md = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        trailers = [("echo-peer", context.peer()), ("echo-metadata", json.dumps(md, sort_keys=True))]
        trailers += [(f"echo-{k}", md[k]) for k in ("x-forwarded-for", "x-request-id") if k in md]
        context.set_trailing_metadata(trailers)
        return trailers

    def unary(self, request, context):
        self.seen(context)
        return self.name.encode() + b":" + request

    def server_stream(self, request, context):
        self.seen(context)
        for i in range(int(request or b"3")):
            yield f"{self.name}:{i}".encode()

    def client_stream(self, requests, context):
        self.seen(context)
        return b"".join(requests)

    def bidi(self, requests, context):
        self.seen(context)
        yield from requests

    def slow(self, request, context):
        self.seen(context)
        ms = int(request or b"1000")
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            if not context.is_active():  # cancelled, or the deadline passed
                return b""
            time.sleep(min(0.01, max(0.0, end - time.monotonic())))
        return f"slept {ms} ms".encode()

    def fail(self, request, context):
        trailers = self.seen(context)
        code, _, message = request.decode().partition(":")
        try:
            code = code_of(code or "INTERNAL")
        except ValueError as e:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(e)
        context.set_trailing_metadata(
            trailers + [("fail-code", code.name), ("fail-detail-bin", b"\x00\x01tidegate\xfe\xff")]
        )
        context.abort(code, message or f"failed with {code.name} as asked")

    def set_health(self, request, context):
        self.seen(context)
        service, _, status = request.decode().rpartition("=")
        try:
            value = STATUS.Value(status.strip().upper())
        except ValueError:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown health status {status!r}")
        for s in [service] if service else ["", SERVICE]:
            self.health.set(s, value)
        return f"{service or '*'}={STATUS.Name(value)}".encode()

    def handler(self):
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": unary(self.unary),
                "ServerStream": server_stream(self.server_stream),
                "ClientStream": client_stream(self.client_stream),
                "Bidi": bidi(self.bidi),
                "Slow": unary(self.slow),
                "Fail": unary(self.fail),
                "SetHealth": unary(self.set_health),
            },
        )


def watch_health_file(path, health_servicer):
    last = None
    while True:
        try:
            with open(path) as f:
                words = f.read().split()
            text = words[0].upper() if words else "SERVING"
        except FileNotFoundError:
            text = "SERVING"
        if text != last:
            last = text
            value = STATUS.Value(text) if text in STATUS.keys() else STATUS.NOT_SERVING
            for s in ("", SERVICE):
                health_servicer.set(s, value)
            print(f"health {STATUS.Name(value)} (from {path})", flush=True)
        time.sleep(0.1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1; 0 picks a free one")
    p.add_argument("--name", default="echo", help="this server's name in replies (default echo)")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve grpcs with this pair")
    p.add_argument("--client-ca", metavar="CA", help="with --tls: require client certificates from CA")
    p.add_argument("--health-file", metavar="PATH", help="health status follows this file")
    args = p.parse_args()

    health_servicer = health.HealthServicer()
    for s in ("", SERVICE):
        health_servicer.set(s, STATUS.SERVING)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    server.add_generic_rpc_handlers((Echo(args.name, health_servicer).handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    address = f"127.0.0.1:{args.port}"
    if args.tls:
        cert, key = (open(f, "rb").read() for f in args.tls)
        ca = open(args.client_ca, "rb").read() if args.client_ca else None
        creds = grpc.ssl_server_credentials([(key, cert)], ca, require_client_auth=ca is not None)
        port = server.add_secure_port(address, creds)
    else:
        port = server.add_insecure_port(address)
    if not port:
        sys.exit(f"server.py: cannot listen on {address}")
    server.start()
    print(f"listening 127.0.0.1:{port}" + (" (tls)" if args.tls else ""), flush=True)
    if args.health_file:
        threading.Thread(target=watch_health_file, args=(args.health_file, health_servicer), daemon=True).start()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    server.stop(0)


if __name__ == "__main__":
    main()
