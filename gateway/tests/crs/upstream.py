#!/usr/bin/env python3
"""The logging upstream behind the gateway under test in the CRS regression runs.

Answers every request (any method, any path) with `200 ok` and appends one JSON line per
request to LOGFILE, flushed before the answer is sent:

    {"id": "<X-Request-Id or empty>", "line": "<request line>", "t": <unix time>}

so that once the client has its response, the runner can tell whether the request reached
the upstream (the WAF let it through) by looking its id up in the file.

    upstream.py --port 18480 --log target/crs/upstream.log

Binds 127.0.0.1 only. Stops on SIGTERM/SIGINT, or by itself after --max-seconds.
"""

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "crs-upstream"
    sys_version = ""
    timeout = 10

    def log_message(self, fmt, *args):  # no stderr line per request
        pass

    def _drain_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            total = 0
            while total <= MAX_BODY:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    return
                try:
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    return
                if size == 0:
                    # trailers up to the empty line
                    for _ in range(100):
                        line = self.rfile.readline(8192)
                        if line in (b"\r\n", b"\n", b""):
                            break
                    return
                self.rfile.read(size)
                self.rfile.readline(8)
                total += size
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)

    def _answer(self):
        self._drain_body()
        entry = {
            "id": self.headers.get("X-Request-Id") or "",
            "line": self.requestline,
            "t": round(time.time(), 3),
        }
        self.server.log_entry(entry)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name):
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; answer every method the same way.
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, log_path):
        super().__init__(addr, Handler)
        self._lock = threading.Lock()
        self._log = open(log_path, "a", encoding="utf-8")

    def handle_error(self, request, client_address):
        # a gateway that hangs up mid-answer (broken pipe, reset) is not news here
        pass

    def log_entry(self, entry):
        line = json.dumps(entry, ensure_ascii=True) + "\n"
        with self._lock:
            self._log.write(line)
            self._log.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True, help="file the JSON lines are appended to")
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="stop by itself after this long (default 3600)")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), args.log)

    def stop(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    timer = threading.Timer(args.max_seconds, stop)
    timer.daemon = True
    timer.start()
    print(f"crs upstream on 127.0.0.1:{args.port}, log {args.log}", file=sys.stderr, flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
