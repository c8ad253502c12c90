#!/usr/bin/env bash
# Self-test of the gRPC test kit, with no gateway: every client.py case straight against
# server.py (h2c, TLS, mTLS, health file), and the grpc_web framing against a tiny fake bridge.
#   gateway/tests/grpc/selftest.sh          # venv in a temp dir
#   VENV=/tmp/grpc-venv gateway/tests/grpc/selftest.sh   # or a kept one (made if missing)
# Ends with "N passed, N failed"; exits non-zero on any mismatch. Bounded: 10 minutes in all.
set -euo pipefail
[[ -n ${SELFTEST_BOUNDED:-} ]] || SELFTEST_BOUNDED=1 exec timeout 600 "$0" "$@"
kit=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$kit/../../.." && pwd)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
trap "exit 143" TERM INT

venv=${VENV:-$tmp/venv}
timeout 300 "$kit/setup.sh" "$venv"
py=$venv/bin/python

# start NAME ARGS...: runs server.py in the background and sets $port once it listens.
start() {
  local name=$1; shift
  "$py" -u "$kit/server.py" --port 0 --name "$name" "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/$name.log")
    [[ -n $port ]] && return
    sleep 0.1
  done
  echo "server $name did not start:"; cat "$tmp/$name.log"; exit 1
}

pass=0; fail=0
# check TITLE EXPR CLIENT-ARGS...: runs client.py; EXPR is Python over its JSON result r.
check() {
  local title=$1 expr=$2; shift 2
  local out
  out=$(timeout 30 "$py" "$kit/client.py" "$@" 2>"$tmp/client.err") || true
  if R=$out "$py" -c 'import json,os,sys; r=json.loads(os.environ["R"]); sys.exit(0 if ('"$expr"') else 1)' 2>/dev/null; then
    echo "ok    $title"; pass=$((pass + 1))
  else
    echo "FAIL  $title"; echo "      want: $expr"; echo "      got:  ${out:-(nothing)}"
    sed 's/^/      /' "$tmp/client.err" | tail -5; fail=$((fail + 1))
  fi
}

echo "== h2c server"
start plain
t=(--target "127.0.0.1:$port")
check unary 'r["code"] == "OK" and r["messages"] == ["plain:hello"] and r["initial_metadata"]["x-served-by"] == "plain"' \
  "${t[@]}" --case unary
check "unary echoes x-forwarded-for, x-request-id in trailers" \
  'r["trailing_metadata"]["echo-x-forwarded-for"] == "192.0.2.7" and r["trailing_metadata"]["echo-x-request-id"] == "rid-1" and r["trailing_metadata"]["echo-peer"].startswith("ipv4:127.0.0.1:")' \
  "${t[@]}" --case unary --metadata x-forwarded-for=192.0.2.7 --metadata x-request-id=rid-1
check server_stream 'r["code"] == "OK" and r["messages"] == ["plain:0", "plain:1", "plain:2"]' "${t[@]}" --case server_stream
check "server_stream 50" 'r["code"] == "OK" and len(r["messages"]) == 50' "${t[@]}" --case server_stream --message 50
check client_stream 'r["code"] == "OK" and r["messages"] == ["abc"]' "${t[@]}" --case client_stream
check bidi 'r["code"] == "OK" and r["messages"] == ["one", "two", "three"]' "${t[@]}" --case bidi
check "deadline (200 ms on Slow 2000)" 'r["code"] == "DEADLINE_EXCEEDED" and r["elapsed_ms"] < 1500' "${t[@]}" --case deadline
check "Slow within its deadline" 'r["code"] == "OK"' "${t[@]}" --case deadline --message 50
check "fail: status, message, trailers" \
  'r["code"] == "PERMISSION_DENIED" and r["details"] == "denied by echo" and r["trailing_metadata"]["fail-code"] == "PERMISSION_DENIED" and r["trailing_metadata"]["fail-detail-bin"] == "AAF0aWRlZ2F0Zf7/"' \
  "${t[@]}" --case fail
check "fail with a number" 'r["code"] == "UNAVAILABLE" and r["details"] == "down"' "${t[@]}" --case fail --message 14:down
check health 'r["code"] == "OK" and r["messages"] == ["SERVING"]' "${t[@]}" --case health
check "health of tidegate.test.Echo" 'r["messages"] == ["SERVING"]' "${t[@]}" --case health --service tidegate.test.Echo
check "health of an unknown service" 'r["code"] == "NOT_FOUND"' "${t[@]}" --case health --service nope
check "set_health NOT_SERVING" 'r["code"] == "OK"' "${t[@]}" --case set_health
check "health now NOT_SERVING" 'r["messages"] == ["NOT_SERVING"]' "${t[@]}" --case health
check "set_health SERVING" 'r["code"] == "OK"' "${t[@]}" --case set_health --message SERVING
check "health SERVING again" 'r["messages"] == ["SERVING"]' "${t[@]}" --case health
check "no_route (grpcio answers UNIMPLEMENTED)" 'r["code"] == "UNIMPLEMENTED"' "${t[@]}" --case no_route
check "--expect passes on the right status" 'r["code"] == "OK"' "${t[@]}" --case unary --expect OK
if timeout 30 "$py" "$kit/client.py" "${t[@]}" --case unary --expect INTERNAL >/dev/null; then
  echo "FAIL  --expect exits 1 on another status"; fail=$((fail + 1))
else echo "ok    --expect exits 1 on another status"; pass=$((pass + 1)); fi
echo "skip  grpc_web against grpcio (gateway only: grpcio does not speak gRPC-Web)"

echo "== TLS server with a health file (certificates from scripts/make-test-cert.sh)"
"$repo/scripts/make-test-cert.sh" "$tmp/tls" localhost --client tester >/dev/null
start tls --tls "$tmp/tls/localhost.pem" "$tmp/tls/localhost.key" --health-file "$tmp/health"
t=(--target "127.0.0.1:$port" --tls-ca "$tmp/tls/ca.pem" --authority localhost)
check "grpcs unary" 'r["code"] == "OK" and r["messages"] == ["tls:hello"]' "${t[@]}" --case unary
check "grpcs bidi" 'r["code"] == "OK" and r["messages"] == ["one", "two", "three"]' "${t[@]}" --case bidi
check "grpcs with a wrong authority" 'r["code"] == "UNAVAILABLE"' --target "127.0.0.1:$port" --tls-ca "$tmp/tls/ca.pem" --authority other.test --case unary
check "h2c client on the TLS port" 'r["code"] == "UNAVAILABLE"' --target "127.0.0.1:$port" --case unary --timeout 3
check "health file missing: SERVING" 'r["messages"] == ["SERVING"]' "${t[@]}" --case health
echo NOT_SERVING >"$tmp/health"; sleep 0.5
check "health file NOT_SERVING" 'r["messages"] == ["NOT_SERVING"]' "${t[@]}" --case health
echo SERVING >"$tmp/health"; sleep 0.5
check "health file SERVING" 'r["messages"] == ["SERVING"]' "${t[@]}" --case health

echo "== mTLS server"
start mtls --tls "$tmp/tls/localhost.pem" "$tmp/tls/localhost.key" --client-ca "$tmp/tls/ca.pem"
t=(--target "127.0.0.1:$port" --tls-ca "$tmp/tls/ca.pem" --authority localhost)
check "mTLS with a client certificate" 'r["code"] == "OK" and r["messages"] == ["mtls:hello"]' \
  "${t[@]}" --tls-client "$tmp/tls/tester.client.pem" "$tmp/tls/tester.client.key" --case unary
check "mTLS without one" 'r["code"] == "UNAVAILABLE"' "${t[@]}" --case unary --timeout 3

echo "== grpc_web framing against a fake HTTP/1.1 gRPC-Web bridge (not a real gateway)"
cat >"$tmp/fake_grpc_web.py" <<'EOF'
import http.server, struct, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        msg = body[5:5 + struct.unpack(">I", body[1:5])[0]]
        ok = self.headers["Content-Type"] == "application/grpc-web+proto" and body[0] == 0
        self.send_response(200)
        self.send_header("Content-Type", "application/grpc-web+proto")
        if self.path.endswith("/Fail"):  # trailers-only: the status in the headers, no body
            self.send_header("grpc-status", "7"); self.send_header("grpc-message", "no%20way")
            self.send_header("Content-Length", "0"); self.end_headers(); return
        data = b"".join(b"\x00" + struct.pack(">I", len(m)) + m for m in (b"fake:" + msg, b"second"))
        trailer = f"grpc-status: {0 if ok else 13}\r\ngrpc-message: \r\nx-fake: {self.headers['x-request-id']}\r\n".encode()
        out = data + b"\x80" + struct.pack(">I", len(trailer)) + trailer
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(f"listening 127.0.0.1:{s.server_port}", flush=True)
s.serve_forever()
EOF
"$py" -u "$tmp/fake_grpc_web.py" >"$tmp/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do port=$(sed -n 's/^listening 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/fake.log"); [[ -n $port ]] && break; sleep 0.1; done
check "grpc_web: data frames + trailer frame" \
  'r["code"] == "OK" and r["messages"] == ["fake:hello", "second"] and r["trailing_metadata"]["x-fake"] == "rid-9" and r["http_status"] == 200' \
  --target "127.0.0.1:$port" --case grpc_web --metadata x-request-id=rid-9
check "grpc_web: trailers-only response" 'r["code"] == "PERMISSION_DENIED" and r["details"] == "no way" and r["messages"] == []' \
  --target "127.0.0.1:$port" --case grpc_web --method Fail

echo "$pass passed, $fail failed"
((fail == 0))
