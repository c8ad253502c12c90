#!/usr/bin/env bash
# Tidegate vs nginx as a reverse proxy on this machine, same run, same upstream.
#
#   load-tests/run.sh                 full comparison (≈12 min), report in load-tests/results/
#   load-tests/run.sh --quick         one 5 s run per target, for development (≈4 min)
#   load-tests/run.sh --smoke         a few seconds per target, to keep the harness working (CI)
#   options: --duration SECS  --runs N (interleaved rounds of the paired scenarios, default 3)
#            --bin PATH (tidegate binary; default: release build)
#   load-tests/run.sh nacos-scale [ARGS]   only the Nacos discovery scale scenario
#                                     (load-tests/nacos_scale.py ARGS; ~15 min, --quick < 1 min)
#
# Layout on 2 cores: each proxy (tidegate with 1 worker thread, nginx with 1 worker) is pinned
# to CPU 0; the upstream (nginx `return 200`) and the load generators to CPU 1. Throughput is
# wrk's maximum; latency percentiles come from oha at a fixed rate (half of nginx's maximum)
# with --latency-correction, so coordinated omission does not hide stalls. CPU is the proxy
# process's user+system time over the wrk run; RSS is its peak (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The Nacos scale scenario is a simulation of its own (N simulated gateways against one
# rnacos): no proxy, no nginx, no build. Python with grpcio (the gRPC test kit's venv when
# scripts/test.sh made one; otherwise the script makes its own under target/).
NACOS_PY=${TIDEGATE_GRPC_PYTHON:-python3}
if [[ "${1:-}" == nacos-scale ]]; then
  shift
  exec "$NACOS_PY" "$ROOT/load-tests/nacos_scale.py" "$@"
fi

DURATION=10
RUNS=3
SMOKE=0
QUICK=0
BIN=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1; DURATION=2; RUNS=1 ;;
    --quick) QUICK=1; DURATION=5; RUNS=1 ;;
    --duration) DURATION=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --bin) BIN=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

for tool in nginx wrk taskset python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install nginx-light wrk util-linux)" >&2; exit 2; }
done
HAVE_OHA=1
command -v oha >/dev/null || HAVE_OHA=0
if ((!HAVE_OHA && !SMOKE)); then
  echo "missing oha (cargo install --locked oha)" >&2
  exit 2
fi
if [[ -z "$BIN" ]]; then
  cargo build --release -p tidegate >&2
  BIN=$ROOT/target/release/tidegate
fi
# The WebSocket load generator and echo upstream (small; built like the binary under test).
if [[ "$BIN" == */debug/* ]]; then
  cargo build -p tidegate-loadgen >&2
  LOADGEN=$ROOT/target/debug/tidegate-loadgen
else
  cargo build --release -p tidegate-loadgen >&2
  LOADGEN=$ROOT/target/release/tidegate-loadgen
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d /tmp/tidegate-bench.XXXXXX)
PIDS=()
TLSX=()
cleanup() {
  exec 2>/dev/null
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
CLK=$(getconf CLK_TCK)
cpu_ticks() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' /proc/"$p"/stat))); done; echo "$t"; }
peak_rss_kb() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmHWM/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
children() { pgrep -P "$1" | tr '\n' ' '; }

UP=$(free_port)
cat > "$WORK/upstream.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/upstream.pid;
error_log $WORK/upstream.err;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UP;
    location / { return 200 "ok\n"; }
    location /bodies/ { root $WORK; }
  }
}
CONF
# Response bodies of the body-size scenario (served from the page cache by the upstream).
# nginx's workers drop to an unprivileged user: they may pass through $WORK and read these.
chmod 711 "$WORK"
mkdir -m 755 "$WORK/bodies"
for size in 1 16 256; do head -c $((size * 1024)) /dev/zero | tr '\0' 'x' > "$WORK/bodies/${size}k"; done
taskset -c 1 nginx -c "$WORK/upstream.conf" & PIDS+=($!)
wait_port "$UP"
WSUP=$(free_port)
taskset -c 1 "$LOADGEN" echo-server "127.0.0.1:$WSUP" & PIDS+=($!)
wait_port "$WSUP"

# nginx as the proxy, with the same forwarding headers Tidegate adds.
nginx_conf() { # $1 port, $2 number of extra locations
  local locations=""
  if (($2 > 0)); then
    locations=$(python3 -c "
import sys
for i in range($2):
    print(f'    location /svc{i}/ {{ proxy_pass http://up; }}')")
  fi
  cat > "$WORK/nginx-$1.conf" <<CONF
worker_processes ${WORKERS:-1};
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/nginx-$1.pid;
error_log $WORK/nginx-$1.err;
events { worker_connections 8192; }
http {
  access_log $(if ((${ACCESS_LOG:-0})); then echo "$WORK/nginx-$1.access.log"; else echo off; fi);
  keepalive_requests 1000000;
  upstream up { ${UP_SERVERS:-server 127.0.0.1:$UP;} keepalive 64; }
  upstream wsup { server 127.0.0.1:$WSUP; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host \$host;
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Forwarded-Proto \$scheme;
  proxy_set_header X-Forwarded-Host \$host;
  proxy_set_header X-Request-Id \$request_id;
  add_header X-Request-Id \$request_id;
  server {
    listen 127.0.0.1:$1;
$locations
    location / { proxy_pass http://up; }
    location = /ws {
      proxy_pass http://wsup;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
    }
  }
}
CONF
  echo "$WORK/nginx-$1.conf"
}

# nginx + ModSecurity v3 + Debian's CRS at paranoia level 1: Debian's recommended
# modsecurity.conf, blocking, without the audit log; response bodies inspected only with
# $2 = responses (Debian's default: text/plain, text/html, text/xml up to 512 KiB), else off
# — the Tidegate rows beside each do the same work.
nginx_waf_conf() { # $1 port, $2 requests|responses → config path
  local rules=$WORK/modsec-$1.conf body_access=Off
  [[ ${2:-requests} == responses ]] && body_access=On
  sed -E -e 's/^SecRuleEngine .*/SecRuleEngine On/' -e 's/^SecAuditEngine .*/SecAuditEngine Off/' \
    -e "s/^SecResponseBodyAccess .*/SecResponseBodyAccess $body_access/" \
    -e "s|^SecTmpDir .*|SecTmpDir $WORK/|" -e "s|^SecDataDir .*|SecDataDir $WORK/|" \
    -e 's|^SecUnicodeMapFile unicode.mapping|SecUnicodeMapFile /etc/nginx/unicode.mapping|' \
    /etc/nginx/modsecurity.conf > "$rules"
  {
    echo "Include /etc/modsecurity/crs/crs-setup.conf"
    echo 'SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=1"'
    echo "Include /usr/share/modsecurity-crs/rules/*.conf"
  } >> "$rules"
  nginx_conf "$1" 0 > /dev/null
  sed -i -e "1i load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;" \
    -e "s|^    listen 127.0.0.1:$1;|    listen 127.0.0.1:$1;\n    modsecurity on;\n    modsecurity_rules_file $rules;|" \
    "$WORK/nginx-$1.conf"
  echo "$WORK/nginx-$1.conf"
}

tidegate_conf() { # $1 port, $2 admin port, $3 number of extra routes, $4 plugin: none|local|cluster|chain|waf|crs|crs-responses|lite
  local plugin_line="" endpoints=${UP_ENDPOINTS:-"{ addr = \"127.0.0.1:$UP\" }"}
  case "${4:-none}" in
    local|cluster) plugin_line='plugins = ["limit"]' ;;
    chain) plugin_line='plugins = ["auth", "tenant-limit"]' ;;
    waf) plugin_line='plugins = ["auth", "tenant-limit", "waf"]' ;;
    crs|crs-responses|lite) plugin_line='plugins = ["waf"]' ;;
  esac
  {
    cat <<CONF
[server]
listen = ["127.0.0.1:$1"]
threads = ${WORKERS:-1}
pid_file = "$WORK/tidegate-$1.pid"
upgrade_sock = "$WORK/tidegate-$1.sock"
grace_period_seconds = 1
graceful_shutdown_timeout_seconds = 1
[admin]
listen = "127.0.0.1:$2"
[access_log]
$(if ((${ACCESS_LOG:-0})); then echo "path = \"$WORK/tidegate-$1.access.log\""; else echo "enabled = false"; fi)
[edge]
# nginx's client_header_timeout default, so the flood scenarios hold connections alike.
header_read_timeout_ms = 60000
[[services]]
name = "up"
endpoints = [$endpoints]
[[services]]
name = "ws"
endpoints = [{ addr = "127.0.0.1:$WSUP" }]
[[routes]]
name = "ws"
path = "=/ws"
service = "ws"
CONF
    for ((i = 0; i < $3; i++)); do
      printf '[[routes]]\nname = "svc%d"\npath = "/svc%d/"\nservice = "up"\n' "$i" "$i"
    done
    printf '[[routes]]\nname = "root"\npath = "/"\nservice = "up"\n%s\n' "$plugin_line"
    if [[ "${4:-none}" == chain || "${4:-none}" == waf ]]; then
      # A typical chain: key-auth naming the consumer and tenant, then a per-tenant limit.
      printf '[[consumers]]\nname = "bench"\ntenant = "bench-tenant"\nkeys = ["bench-key-0001"]\n'
      printf '[plugins.auth]\ntype = "key-auth"\n'
      printf '[plugins.tenant-limit]\ntype = "key-rate-limit"\nkey = "tenant"\n'
      printf 'limits = [{ per = "second", count = 100000000 }]\n'
      # The cheap WAF engine (all checks, block mode) on the same chain.
      printf '[plugins.waf]\ntype = "waf"\nengine = "lite"\nmode = "block"\n'
    elif [[ "${4:-none}" == crs* || "${4:-none}" == lite ]]; then
      # The same paranoia level as the nginx + ModSecurity peer (the lite engine has none),
      # and the same response inspection: none, or Debian's body types.
      printf '[plugins.waf]\ntype = "waf"\nengine = "%s"\nmode = "block"\n' "${4%-responses}"
      if [[ $4 == crs ]]; then printf 'paranoia_level = 1\ninspect_responses = false\n'; fi
      if [[ $4 == crs-responses ]]; then
        printf 'paranoia_level = 1\nresponse_body_types = ["text/plain", "text/html", "text/xml"]\n'
      fi
    elif [[ "${4:-none}" != none ]]; then
      # Limits far above the load: the scenario measures the cost of checking, not refusing.
      printf '[plugins.limit]\ntype = "key-rate-limit"\nkey = "header:x-tenant-id"\nscope = "%s"\n' "$4"
      printf 'limits = [{ per = "second", count = 100000000 }, { per = "minute", count = 1000000000 }]\n'
      printf '[redis]\nurl = "redis://127.0.0.1:%s/"\ntimeout_ms = 20\n' "${REDIS_PORT:-1}"
    fi
  } > "$WORK/tidegate-$1.toml"
  echo "$WORK/tidegate-$1.toml"
}

start_nginx() { # $1 extra locations → sets NG_PORT, NG_PIDS
  NG_PORT=$(free_port)
  local conf; conf=$(nginx_conf "$NG_PORT" "$1")
  taskset -c "${PROXY_CPUS:-0}" nginx -c "$conf" & local master=$!
  PIDS+=("$master")
  wait_port "$NG_PORT"
  NG_PIDS="$master $(children "$master")"
}
start_nginx_waf() { # $1 requests|responses → sets NG_PORT, NG_PIDS
  NG_PORT=$(free_port)
  local conf; conf=$(nginx_waf_conf "$NG_PORT" "${1:-requests}")
  taskset -c "${PROXY_CPUS:-0}" nginx -c "$conf" & local master=$!
  PIDS+=("$master")
  wait_port "$NG_PORT"
  NG_PIDS="$master $(children "$master")"
}
start_tidegate() { # $1 extra routes, $2 limit plugin → sets TG_PORT, TG_PIDS
  TG_PORT=$(free_port)
  local admin; admin=$(free_port)
  local conf; conf=$(tidegate_conf "$TG_PORT" "$admin" "$1" "${2:-none}")
  RUST_LOG=warn taskset -c "${PROXY_CPUS:-0}" "$BIN" -c "$conf" > "$WORK/tidegate-$TG_PORT.log" 2>&1 & local pid=$!
  PIDS+=("$pid")
  wait_port "$TG_PORT"
  TG_PIDS="$pid"
}

CONNS=50
((SMOKE)) && CONNS=10
# wrk_measure NAME URL PIDS [wrk args...] → LAST_RPS LAST_CPU LAST_RSS LAST_ERR
wrk_measure() {
  local name=$1 url=$2 pids=$3; shift 3
  local before after out total
  # One second of warm-up (connection pools, allocator, caches), not measured.
  taskset -c "${LOAD_CPUS:-1}" wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$(taskset -c "${LOAD_CPUS:-1}" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "$url")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  LAST_RPS=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  total=$(awk '/requests in/{print $1}' <<<"$out")
  LAST_ERR=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  LAST_CPU=$(python3 -c "print(f'{($after-$before)/$CLK/max($total,1)*1e6:.1f}')")
  # shellcheck disable=SC2086
  LAST_RSS=$(peak_rss_kb $pids)
  echo "  $name: $LAST_RPS req/s, $LAST_CPU CPU-s per 1M requests, peak RSS ${LAST_RSS} KiB ${LAST_ERR}" >&2
}

# wrk_run NAME URL PIDS [wrk args...] → appends a result line (one run)
RESULTS=()
wrk_run() {
  wrk_measure "$@"
  RESULTS+=("$1|$LAST_RPS|$LAST_CPU|$LAST_RSS|${LAST_ERR:-}")
}

# wrk_pair "NAME|URL|PIDS[|HEADER]" "NAME|URL|PIDS[|HEADER]" [wrk args...] → RUNS rounds, A B A B …, so that
# drift of the machine falls on both alike; each row is the median requests/s and the median
# CPU per request of its runs, with the spread (min–max requests/s) in its notes.
wrk_pair() {
  local a=$1 b=$2; shift 2
  local -A rps cpu rss err
  local side n u p r
  for ((r = 0; r < RUNS; r++)); do
    for side in "$a" "$b"; do
      IFS='|' read -r n u p h <<<"$side"
      local extra=()
      [[ -n "$h" ]] && extra=(-H "$h")
      wrk_measure "$n" "$u" "$p" "$@" "${extra[@]}"
      rps[$n]+="$LAST_RPS "; cpu[$n]+="$LAST_CPU "; rss[$n]=$LAST_RSS; err[$n]+="$LAST_ERR"
    done
  done
  for side in "$a" "$b"; do
    IFS='|' read -r n _ _ <<<"$side"
    local stats
    stats=$(python3 -c "
import statistics as s, sys
r = [float(x) for x in '${rps[$n]}'.split()]; c = [float(x) for x in '${cpu[$n]}'.split()]
note = f'median of {len(r)}: {min(r):.0f}–{max(r):.0f} req/s' if len(r) > 1 else ''
print(f'{s.median(r):.2f}|{s.median(c):.1f}|{note}')")
    IFS='|' read -r mr mc note <<<"$stats"
    RESULTS+=("$n|$mr|$mc|${rss[$n]}|$note${err[$n]:+ }${err[$n]}")
  done
}

LAT=()
oha_run() { # NAME URL RATE
  ((HAVE_OHA)) || return 0
  local json
  json=$(taskset -c 1 oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" -q "$3" --latency-correction "$2")
  LAT+=("$1|$(python3 -c "
import json,sys
d=json.loads(sys.stdin.read())
p=d['latencyPercentiles']
print('|'.join(f\"{p[k]*1000:.3f}\" for k in ('p50','p99','p99.9')))" <<<"$json")")
}

echo "== scenario: keep-alive GET (small response)" >&2
start_nginx 0; start_tidegate 0
wrk_run "upstream direct" "http://127.0.0.1:$UP/" "$(cat "$WORK/upstream.pid") $(children "$(cat "$WORK/upstream.pid")")"
wrk_pair "nginx|http://127.0.0.1:$NG_PORT/|$NG_PIDS" "tidegate|http://127.0.0.1:$TG_PORT/|$TG_PIDS"
NGINX_RPS=$(echo "${RESULTS[1]}" | cut -d'|' -f2)
# Two fixed rates: a quarter and a half of nginx's maximum.
RATES=()
for share in 0.25 0.5; do
  rate=$(python3 -c "print(max(100, int(float('$NGINX_RPS') * $share)))")
  RATES+=("$rate")
  oha_run "nginx @ $rate/s" "http://127.0.0.1:$NG_PORT/" "$rate"
  oha_run "tidegate @ $rate/s" "http://127.0.0.1:$TG_PORT/" "$rate"
done

if ((!SMOKE)); then
  echo "== scenario: new connection per request" >&2
  wrk_pair "nginx, new connection per request|http://127.0.0.1:$NG_PORT/|$NG_PIDS" \
    "tidegate, new connection per request|http://127.0.0.1:$TG_PORT/|$TG_PIDS" -H "Connection: close"

  echo "== scenario: 10 000 routes" >&2
  start_nginx 10000; start_tidegate 10000
  wrk_run "nginx, 10 000 locations" "http://127.0.0.1:$NG_PORT/svc5000/x" "$NG_PIDS"
  wrk_run "tidegate, 10 000 routes" "http://127.0.0.1:$TG_PORT/svc5000/x" "$TG_PIDS"

  echo "== scenario: tenant limit plugin (local, then Redis)" >&2
  start_tidegate 0
  wrk_run "tidegate, no plugin (again)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" -H "x-tenant-id: bench"
  start_tidegate 0 local
  wrk_run "tidegate + key-rate-limit (local)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" -H "x-tenant-id: bench"
  if command -v redis-server >/dev/null; then
    REDIS_PORT=$(free_port)
    taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & PIDS+=($!)
    wait_port "$REDIS_PORT"
    start_tidegate 0 cluster
    wrk_run "tidegate + key-rate-limit (Redis)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" -H "x-tenant-id: bench"
  fi
  # Both chains get a request with a query and a cookie, so the WAF has something to read.
  chain_target="/?q=chat+history+for+O%27Brien&page=2&lang=en"
  start_tidegate 0 chain
  wrk_run "tidegate + key-auth + tenant limit" "http://127.0.0.1:$TG_PORT$chain_target" "$TG_PIDS" -H "x-api-key: bench-key-0001" -H "cookie: sid=abc123; theme=dark"
  start_tidegate 0 waf
  wrk_run "tidegate + key-auth + tenant limit + WAF" "http://127.0.0.1:$TG_PORT$chain_target" "$TG_PIDS" -H "x-api-key: bench-key-0001" -H "cookie: sid=abc123; theme=dark"
fi

if true; then  # also in the smoke run, so that it cannot rot
  # The same ordinary request mix (a GET with query parameters and cookies, a JSON POST, a
  # form POST; load-tests/wrk/waf-mix.lua) through nginx + ModSecurity + CRS and through
  # Tidegate's waf plugin, both at paranoia level 1 in block mode; none of it is refused.
  echo "== scenario: WAF (CRS at PL1; the lite engine beside it)" >&2
  mix=(-s "$ROOT/load-tests/wrk/waf-mix.lua")
  start_nginx 0
  wrk_run "nginx, no WAF (request mix)" "http://127.0.0.1:$NG_PORT/" "$NG_PIDS" "${mix[@]}"
  start_nginx_waf
  wrk_run "nginx + ModSecurity + CRS" "http://127.0.0.1:$NG_PORT/" "$NG_PIDS" "${mix[@]}"
  start_tidegate 0
  wrk_run "tidegate, no WAF (request mix)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" "${mix[@]}"
  start_tidegate 0 crs
  wrk_run "tidegate + waf (crs)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" "${mix[@]}"
  start_tidegate 0 lite
  wrk_run "tidegate + waf (lite)" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" "${mix[@]}"
  # Outbound rules too (the CRS's RESPONSE-95x): the same mix, whose answers are 3 bytes of
  # text/plain, and a 16 KiB text/plain page, each inspected in full on both.
  start_nginx_waf responses
  wrk_run "nginx + ModSecurity + CRS, responses" "http://127.0.0.1:$NG_PORT/" "$NG_PIDS" "${mix[@]}"
  wrk_run "nginx + ModSecurity + CRS, 16k page" "http://127.0.0.1:$NG_PORT/bodies/16k" "$NG_PIDS"
  start_tidegate 0 crs-responses
  wrk_run "tidegate + waf (crs), responses" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" "${mix[@]}"
  wrk_run "tidegate + waf (crs), 16k page" "http://127.0.0.1:$TG_PORT/bodies/16k" "$TG_PIDS"
fi

if true; then  # also in the smoke run, so that it cannot rot
  # TLS, HTTP/2 and gRPC, nginx beside Tidegate with the same certificate (EC P-256), the same
  # protocol versions and ciphers, one worker each.
  echo "== scenario: TLS, HTTP/2 and gRPC" >&2
  TLSD=$WORK/tls
  "$ROOT/scripts/make-test-cert.sh" "$TLSD" localhost >/dev/null
  CIPHERS=$(awk -F'"' '/ciphers: "ECDHE/{print $2; exit}' "$ROOT/gateway/src/config/tls.rs")
  GRPCUP=$(free_port)
  taskset -c 1 "$LOADGEN" grpc-server "127.0.0.1:$GRPCUP" & PIDS+=($!)
  wait_port "$GRPCUP"
  # The TLS upstream of the upstream-TLS rows: nginx `return 200` over TLS, on CPU 1.
  UPTLS=$(free_port)
  cat > "$WORK/uptls.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/uptls.pid;
error_log $WORK/uptls.err;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$UPTLS ssl;
    ssl_certificate $TLSD/localhost.pem;
    ssl_certificate_key $TLSD/localhost.key;
    location / { return 200 "ok\n"; }
  }
}
CONF
  taskset -c 1 nginx -c "$WORK/uptls.conf" & PIDS+=($!)
  wait_port "$UPTLS"

  NG_TLS=$(free_port); NG_H2C=$(free_port); NG_UPTLS=$(free_port)
  cat > "$WORK/nginx-tls.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/nginx-tls.pid;
error_log $WORK/nginx-tls.err;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  upstream grpcup { server 127.0.0.1:$GRPCUP; keepalive 64; }
  upstream uptls { server 127.0.0.1:$UPTLS; keepalive 64; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers $CIPHERS;
  ssl_session_tickets on;
  server {
    listen 127.0.0.1:$NG_TLS ssl http2;
    ssl_certificate $TLSD/localhost.pem;
    ssl_certificate_key $TLSD/localhost.key;
    location / { proxy_pass http://up; }
  }
  server {
    listen 127.0.0.1:$NG_H2C http2;
    location / { grpc_pass grpc://grpcup; }
  }
  server {
    listen 127.0.0.1:$NG_UPTLS;
    location / {
      proxy_pass https://uptls;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $TLSD/ca.pem;
      proxy_ssl_session_reuse on;
    }
  }
}
CONF
  taskset -c 0 nginx -c "$WORK/nginx-tls.conf" & ngtls=$!
  PIDS+=("$ngtls")
  wait_port "$NG_TLS"
  NG_PIDS="$ngtls $(children "$ngtls")"

  TG_TLS=$(free_port); TG_PLAIN=$(free_port); tgadmin=$(free_port)
  cat > "$WORK/tidegate-tls.toml" <<CONF
[server]
listen = ["127.0.0.1:$TG_PLAIN"]
tls_listen = ["127.0.0.1:$TG_TLS"]
threads = 1
pid_file = "$WORK/tidegate-tls.pid"
upgrade_sock = "$WORK/tidegate-tls.sock"
grace_period_seconds = 1
graceful_shutdown_timeout_seconds = 1
[admin]
listen = "127.0.0.1:$tgadmin"
[access_log]
enabled = false
[[certificates]]
cert = "$TLSD/localhost.pem"
key = "$TLSD/localhost.key"
default = true
[[services]]
name = "up"
endpoints = [{ addr = "127.0.0.1:$UP" }]
[[services]]
name = "grpc"
protocol = "grpc"
endpoints = [{ addr = "127.0.0.1:$GRPCUP" }]
[[services]]
name = "uptls"
protocol = "https"
tls = { sni = "localhost", verify = true, ca = "$TLSD/ca.pem" }
endpoints = [{ addr = "127.0.0.1:$UPTLS" }]
[[routes]]
name = "grpc"
path = "/bench.Echo/"
service = "grpc"
[[routes]]
name = "uptls"
path = "/uptls/"
service = "uptls"
[[routes]]
name = "root"
path = "/"
service = "up"
CONF
  RUST_LOG=warn taskset -c 0 "$BIN" -c "$WORK/tidegate-tls.toml" > "$WORK/tidegate-tls.log" 2>&1 & tgtls=$!
  PIDS+=("$tgtls")
  wait_port "$TG_TLS"

  wrk_run "nginx, TLS keep-alive" "https://127.0.0.1:$NG_TLS/" "$NG_PIDS"
  wrk_run "tidegate, TLS keep-alive" "https://127.0.0.1:$TG_TLS/" "$tgtls"
  wrk_run "nginx, TLS new connection per request" "https://127.0.0.1:$NG_TLS/" "$NG_PIDS" -H "Connection: close"
  wrk_run "tidegate, TLS new connection per request" "https://127.0.0.1:$TG_TLS/" "$tgtls" -H "Connection: close"
  wrk_run "nginx, upstream TLS (kept alive)" "http://127.0.0.1:$NG_UPTLS/uptls/" "$NG_PIDS"
  wrk_run "tidegate, upstream TLS (kept alive)" "http://127.0.0.1:$TG_PLAIN/uptls/" "$tgtls"

  # h2load: rate, and the proxy's CPU per request. NAME PIDS h2load-args...
  h2_run() {
    local name=$1 pids=$2; shift 2
    local before after out rps total cpu
    taskset -c 1 h2load -D 1 "$@" >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    out=$(taskset -c 1 h2load -D "$DURATION" "$@" 2>&1)
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    rps=$(awk '/^finished in/{gsub(",","",$4); print $4}' <<<"$out")
    # "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
    total=$(awk '/^requests:/{print $8}' <<<"$out")
    local failed; failed=$(awk '/^requests:/{f=$10+$12+$14} /^status codes:/{f+=$5+$7+$9} END{if (f) print f " failed or not 2xx"}' <<<"$out")
    cpu=$(python3 -c "print(f'{($after-$before)/$CLK/max(${total:-0},1)*1e6:.1f}')")
    TLSX+=("$name|$rps|$cpu|$failed")
    echo "  $name: $rps req/s, $cpu CPU-s per 1M ${failed}" >&2
  }
  h2_run "nginx, h2 over TLS (10 connections × 10 streams)" "$NG_PIDS" -c 10 -m 10 "https://127.0.0.1:$NG_TLS/"
  h2_run "tidegate, h2 over TLS (10 connections × 10 streams)" "$tgtls" -c 10 -m 10 "https://127.0.0.1:$TG_TLS/"
  # A unary gRPC call: the 5-byte gRPC prefix and an 11-byte message.
  printf '\x00\x00\x00\x00\x0b\x0a\x09bench-msg' > "$WORK/grpc-call.bin"
  grpc_args=(-c 10 -m 10 -d "$WORK/grpc-call.bin" -H "content-type: application/grpc" -H "te: trailers")
  h2_run "gRPC unary, direct" "$(pgrep -f "grpc-server 127.0.0.1:$GRPCUP" | head -1)" "${grpc_args[@]}" "http://127.0.0.1:$GRPCUP/bench.Echo/Say"
  h2_run "nginx, gRPC unary (h2c)" "$NG_PIDS" "${grpc_args[@]}" "http://127.0.0.1:$NG_H2C/bench.Echo/Say"
  h2_run "tidegate, gRPC unary (h2c)" "$tgtls" "${grpc_args[@]}" "http://127.0.0.1:$TG_PLAIN/bench.Echo/Say"

  # TLS connections per second, one request each, from 50 concurrent clients (the loadgen's
  # `tls`): full handshakes, then resumed ones (each client offers its previous session's
  # ticket). NAME PORT PIDS MODE
  hs_run() {
    local name=$1 port=$2 pids=$3 mode=$4 before after out n rate resumed failed cpu
    # shellcheck disable=SC2086
    before=$(cpu_ticks $pids)
    out=$(taskset -c 1 "$LOADGEN" tls "127.0.0.1:$port" "$CONNS" "$DURATION" "$mode")
    # shellcheck disable=SC2086
    after=$(cpu_ticks $pids)
    # "connections N in Ts = R/s, resumed M, failed F"
    n=$(awk '{print $2}' <<<"$out"); rate=$(awk '{print $6}' <<<"$out" | tr -d '/s,')
    resumed=$(awk '{print $8}' <<<"$out" | tr -d ','); failed=$(awk '{print $10}' <<<"$out")
    cpu=$(python3 -c "print(f'{($after-$before)/$CLK/max(${n:-0},1)*1e6:.1f}')")
    local bad=""
    [[ "${failed:-0}" == 0 ]] || bad="$failed failed"
    TLSX+=("$name|$rate|$cpu|$bad|resumed $resumed of $n")
    echo "  $name: $rate connections/s, $cpu CPU-µs each (resumed $resumed of $n) $bad" >&2
  }
  hs_run "nginx, TLS connections, full handshakes" "$NG_TLS" "$NG_PIDS" new
  hs_run "tidegate, TLS connections, full handshakes" "$TG_TLS" "$tgtls" new
  hs_run "nginx, TLS connections, resumed handshakes" "$NG_TLS" "$NG_PIDS" resume
  hs_run "tidegate, TLS connections, resumed handshakes" "$TG_TLS" "$tgtls" resume
fi

if true; then  # also in the smoke run, so that it cannot rot
  # Bodies: where one write of head and body (nginx's writev) against two shows.
  echo "== scenario: response bodies (1 KiB, 16 KiB, 256 KiB)" >&2
  start_nginx 0; start_tidegate 0
  for size in 1k 16k 256k; do
    wrk_pair "nginx, $size body|http://127.0.0.1:$NG_PORT/bodies/$size|$NG_PIDS" \
      "tidegate, $size body|http://127.0.0.1:$TG_PORT/bodies/$size|$TG_PIDS"
  done
  # Operators never run without logs: nginx's combined log and Tidegate's JSON log, to files.
  echo "== scenario: access logs on (to a file)" >&2
  ACCESS_LOG=1 start_nginx 0; ACCESS_LOG=1 start_tidegate 0
  wrk_pair "nginx, access log on|http://127.0.0.1:$NG_PORT/|$NG_PIDS" \
    "tidegate, access log on|http://127.0.0.1:$TG_PORT/|$TG_PIDS"
  for f in "$WORK"/nginx-*.access.log "$WORK"/tidegate-*.access.log; do
    [[ -s $f ]] || { echo "access log $f is empty" >&2; exit 1; }
  done
fi

if ((!SMOKE)); then
  # Two workers each. This machine has two cores, so here the proxies, the upstream and wrk
  # all share both: the figure is how each proxy's throughput grows from one worker to two
  # under the same contention (1-worker rows taken the same way, unpinned), not a clean
  # scaling measurement — that needs a machine with cores to spare for the load.
  echo "== scenario: 1 and 2 workers each, unpinned (scaling under shared cores)" >&2
  for w in 1 2; do
    WORKERS=$w PROXY_CPUS=0,1 start_nginx 0; WORKERS=$w PROXY_CPUS=0,1 start_tidegate 0
    LOAD_CPUS=0,1 wrk_pair "nginx, $w worker(s) unpinned|http://127.0.0.1:$NG_PORT/|$NG_PIDS" \
      "tidegate, $w worker(s) unpinned|http://127.0.0.1:$TG_PORT/|$TG_PIDS"
  done
fi

if ((!SMOKE)); then
  # The decision behind Tidegate's own HTTP/1 exchange, measured in every report: the same
  # binary and bodiless GETs, once through the exchange and once through Pingora's proxy
  # loop (a Connection header naming a field keeps a request on Pingora's path; see
  # `takes` in gateway/src/proxy/exchange.rs).
  echo "== scenario: Tidegate's own exchange vs Pingora's proxy loop" >&2
  start_tidegate 0
  wrk_pair "tidegate, own exchange|http://127.0.0.1:$TG_PORT/|$TG_PIDS" \
    "tidegate, Pingora's proxy loop|http://127.0.0.1:$TG_PORT/|$TG_PIDS|Connection: keep-alive, x-hop"
fi

echo "== scenario: WebSocket" >&2
TUNNELS=2000
((SMOKE)) && TUNNELS=50
current_rss_kb() { local t=0; for p in "$@"; do t=$((t + $(awk '/VmRSS/{print $2}' /proc/"$p"/status))); done; echo "$t"; }
WS=()
ws_run() { # NAME URL PIDS
  local name=$1 url=$2 pids=$3 before after out rate
  # shellcheck disable=SC2086
  before=$(current_rss_kb $pids)
  taskset -c 1 "$LOADGEN" idle "$url" "$TUNNELS" 3 > "$WORK/idle.out" &
  local lg=$!
  for _ in $(seq 300); do grep -q "^opened" "$WORK/idle.out" && break; sleep 0.1; done
  sleep 1
  # shellcheck disable=SC2086
  after=$(current_rss_kb $pids)
  wait "$lg" || true
  local alive; alive=$(awk '/^alive/{print $2}' "$WORK/idle.out")
  out=$(taskset -c 1 "$LOADGEN" echo "$url" 50 "$DURATION" 64)
  rate=$(awk '{print $NF}' <<<"$out" | tr -d '/s')
  local per; per=$(python3 -c "print(f'{($after-$before)/$TUNNELS:.1f}')")
  WS+=("$name|$per|$alive|$rate")
  echo "  $name: $per KiB per idle tunnel ($alive of $TUNNELS alive after idling), echo $rate msg/s" >&2
}
start_nginx 0; start_tidegate 0
ws_run "upstream direct" "ws://127.0.0.1:$WSUP/ws" "$(pgrep -f "tidegate-loadgen echo-server" | head -1)"
ws_run "nginx" "ws://127.0.0.1:$NG_PORT/ws" "$NG_PIDS"
ws_run "tidegate" "ws://127.0.0.1:$TG_PORT/ws" "$TG_PIDS"

echo "== scenario: connection floods (memory per connection, RSS after a flood)" >&2
FLOOD_N=3000
((SMOKE)) && FLOOD_N=200
FLOODS=()
for mode in silent idle slowloris; do
  # A fresh process for each flood, so one does not live on another's freed memory.
  start_nginx 0
  ng=$(python3 "$ROOT/load-tests/flood.py" "$NG_PORT" "$(tr ' ' ',' <<<"${NG_PIDS% }")" "$FLOOD_N" "$mode")
  start_tidegate 0
  tg=$(python3 "$ROOT/load-tests/flood.py" "$TG_PORT" "$TG_PIDS" "$FLOOD_N" "$mode")
  FLOODS+=("$mode|$ng|$tg")
  echo "  $mode: nginx $ng; tidegate $tg" >&2
done

# Connection churn (full runs): 200 upstream endpoints at a low rate each (oha, a fixed total
# rate), each closing its connections after 20 requests, so the proxy must open new ones. New
# TCP connections per 1000 requests, from the kernel's ActiveOpens (/proc/net/snmp: the
# load generator's own 50 connections count alike for both): how well each proxy's
# upstream pool keeps connections for 200 endpoints (nginx: 64 idle per worker, shared;
# Pingora: per endpoint).
CHURN=()
if ((!SMOKE && !QUICK && HAVE_OHA)); then
  echo "== scenario: 200 upstream endpoints, upstream keep-alive limited" >&2
  mapfile -t CHURN_PORTS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(200)]
for s in socks: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))')
  {
    echo "worker_processes 1; daemon off; pid $WORK/churn.pid; error_log $WORK/churn.err;"
    echo "events { worker_connections 8192; } http { access_log off; keepalive_requests 20;"
    for port in "${CHURN_PORTS[@]}"; do echo "server { listen 127.0.0.1:$port; location / { return 200 \"ok\\n\"; } }"; done
    echo "}"
  } > "$WORK/churn.conf"
  taskset -c 1 nginx -c "$WORK/churn.conf" & PIDS+=($!)
  wait_port "${CHURN_PORTS[199]}"
  UP_SERVERS=$(printf 'server 127.0.0.1:%s; ' "${CHURN_PORTS[@]}")
  UP_ENDPOINTS=$(printf '{ addr = "127.0.0.1:%s" }, ' "${CHURN_PORTS[@]}")
  start_nginx 0; start_tidegate 0
  unset UP_SERVERS UP_ENDPOINTS
  opens() { awk '/^Tcp: [0-9]/{print $6}' /proc/net/snmp; }
  for proxy in nginx tidegate; do
    if [[ $proxy == nginx ]]; then port=$NG_PORT; else port=$TG_PORT; fi
    before=$(opens)
    json=$(taskset -c 1 oha --no-tui --output-format json -z "${DURATION}s" -c "$CONNS" -q 2000 "http://127.0.0.1:$port/")
    after=$(opens)
    CHURN+=("$proxy|$(python3 -c "
import json, sys
d = json.loads(sys.argv[1]); codes = d['statusCodeDistribution']; n = sum(codes.values())
print(f'{n}|{codes.get(\"200\", 0)}|{($after - $before) / max(n, 1) * 1000:.1f}')" "$json")")
    echo "  $proxy: ${CHURN[-1]}" >&2
  done
fi

# Where the time goes, keep-alive GET (full runs): user vs system CPU per request, system
# calls per request (strace -c over a short run: it slows the proxy, the counts stay), and
# the hottest symbols (perf, user space and kernel, without children).
PROFILE=()
if ((!SMOKE && !QUICK)); then
  echo "== scenario: profile (keep-alive GET)" >&2
  start_nginx 0; start_tidegate 0
  for proxy in nginx tidegate; do
    if [[ $proxy == nginx ]]; then # the worker, not the master
      url="http://127.0.0.1:$NG_PORT/"; pid=$(children "${NG_PIDS%% *}"); pid=${pid%% *}
    else
      url="http://127.0.0.1:$TG_PORT/"; pid=$TG_PIDS
    fi
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' /proc/"$pid"/stat)
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")
    read -r u1 s1 < <(awk '{print $14, $15}' /proc/"$pid"/stat)
    total=$(awk '/requests in/{print $1}' <<<"$out")
    split=$(python3 -c "t=max($total,1); print(f'{($u1-$u0)/$CLK/t*1e6:.1f}|{($s1-$s0)/$CLK/t*1e6:.1f}')")
    strace -c -f -q -o "$WORK/strace-$proxy.txt" -p "$pid" & tracer=$!
    sleep 0.5
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d3s "$url")
    kill -INT "$tracer" 2>/dev/null; wait "$tracer" 2>/dev/null || true
    traced=$(awk '/requests in/{print $1}' <<<"$out")
    calls=$(python3 - "$WORK/strace-$proxy.txt" "$traced" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[0].replace(".", "").isdigit() and f[-1] not in ("total",):
        rows.append((int(f[3]), f[-1]))
n = max(int(sys.argv[2] or 1), 1)
total = sum(c for c, _ in rows)
top = ", ".join(f"{name} {c / n:.2f}" for c, name in sorted(rows, reverse=True)[:5])
print(f"{total / n:.2f}|{top}")
PY
)
    hot="(perf could not record here)"
    perf record -q -F 999 -g -p "$pid" -o "$WORK/perf-$proxy.data" -- sleep 3 >/dev/null 2>&1 &
    perf_pid=$!
    taskset -c 1 wrk -t1 -c"$CONNS" -d3s "$url" >/dev/null
    if wait "$perf_pid"; then
      hot=$(perf report -q -i "$WORK/perf-$proxy.data" --stdio --no-children --sort dso,sym \
        --percent-limit 1.5 -g none 2>/dev/null | grep -v '^$' | head -15 | sed 's/^ *//')
    fi
    PROFILE+=("$proxy|$split|$calls")
    printf '%s\n' "$hot" > "$WORK/hot-$proxy.txt"
    echo "  $proxy: user|sys µs/request $split; syscalls/request $calls" >&2
  done
fi

# Report.
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
if ((SMOKE)); then REPORT=$WORK/report.md; else REPORT=$ROOT/load-tests/results/$STAMP.md; fi
{
  echo "# Tidegate vs nginx — $STAMP"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(nginx -v 2>&1); tidegate $("$BIN" --version | awk '{print $2}')."
  echo "Each proxy: 1 worker, pinned to CPU 0. Upstream (nginx \`return 200\`) and load generators on CPU 1."
  echo "wrk: 1 thread, $CONNS connections, ${DURATION}s per run."
  echo "Paired scenarios (keep-alive, new connection per request, bodies, access logs, 1 and 2 workers unpinned; and Tidegate's own exchange then Pingora's proxy loop): $RUNS interleaved round(s) of nginx then Tidegate; each row is the median, the spread in its notes. Other rows: one run."
  echo
  echo "## Charts"
  echo
  python3 -c '
import json, sys
print(json.dumps({"results": sys.argv[1].split("\n"), "latency": sys.argv[2].split("\n")}))' \
    "$(printf '%s\n' "${RESULTS[@]}")" "$(printf '%s\n' "${LAT[@]:-}")" |
    python3 "$ROOT/load-tests/charts.py" "${REPORT%.md}"
  echo "## Throughput and cost (wrk, maximum rate)"
  echo
  echo "| target | requests/s | CPU-s per 1M requests | peak RSS (KiB) | notes |"
  echo "| --- | ---: | ---: | ---: | --- |"
  for r in "${RESULTS[@]}"; do IFS='|' read -r n rps cpu rss err <<<"$r"; echo "| $n | $rps | $cpu | $rss | $err |"; done
  echo
  ratio() { python3 -c "a,b=float('$1' or 0),float('$2' or 0); print(f'{a/b:.2f}' if b else 'n/a')"; }
  field() { echo "${RESULTS[$1]}" | cut -d'|' -f"$2"; }
  echo "## Ratios, Tidegate / nginx (same run)"
  echo
  echo "| scenario | throughput | CPU per request | peak RSS |"
  echo "| --- | ---: | ---: | ---: |"
  echo "| keep-alive GET | $(ratio "$(field 2 2)" "$(field 1 2)") | $(ratio "$(field 2 3)" "$(field 1 3)") | $(ratio "$(field 2 4)" "$(field 1 4)") |"
  if ((!SMOKE)); then
    echo "| new connection per request | $(ratio "$(field 4 2)" "$(field 3 2)") | $(ratio "$(field 4 3)" "$(field 3 3)") | — |"
    echo "| 10 000 routes | $(ratio "$(field 6 2)" "$(field 5 2)") | $(ratio "$(field 6 3)" "$(field 5 3)") | $(ratio "$(field 6 4)" "$(field 5 4)") |"
    echo
    echo "Tidegate at 10 000 routes vs 1 route: throughput $(ratio "$(field 6 2)" "$(field 2 2)"); nginx: $(ratio "$(field 5 2)" "$(field 1 2)")."
    echo
    line="Tenant limit plugin vs no plugin (same run): local throughput $(ratio "$(field 8 2)" "$(field 7 2)"), CPU per request $(ratio "$(field 8 3)" "$(field 7 3)")"
    if ((${#RESULTS[@]} > 9)); then
      line="$line; Redis throughput $(ratio "$(field 9 2)" "$(field 7 2)"), CPU per request $(ratio "$(field 9 3)" "$(field 7 3)")"
    fi
    echo "$line."
    chain=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '/key-auth \+ tenant limit\|/{print $2"|"$3}')
    if [[ -n "$chain" ]]; then
      echo
      echo "key-auth + tenant limit chain vs no plugin: throughput $(ratio "${chain%%|*}" "$(field 7 2)"), CPU per request $(ratio "${chain##*|}" "$(field 7 3)")."
    fi
    waf=$(printf '%s\n' "${RESULTS[@]}" | awk -F'|' '/\+ WAF\|/{print $2"|"$3}')
    if [[ -n "$waf" ]]; then
      echo
      echo "key-auth + tenant limit + WAF chain vs no plugin: throughput $(ratio "${waf%%|*}" "$(field 7 2)"), CPU per request $(ratio "${waf##*|}" "$(field 7 3)"); vs the same chain without the WAF: throughput $(ratio "${waf%%|*}" "${chain%%|*}"), CPU per request $(ratio "${waf##*|}" "${chain##*|}")."
    fi
  fi
  if true; then
    result() { # ROW → "requests/s|CPU-s per 1M" of that row, empty if it was not run
      printf '%s\n' "${RESULTS[@]}" | awk -F'|' -v n="$1" '$1 == n {print $2"|"$3}'
    }
    pair() { # LABEL TIDEGATE-ROW NGINX-ROW
      local t g
      t=$(result "$2"); g=$(result "$3")
      [[ -n "$t" && -n "$g" ]] || return 0
      echo "| $1 | $(ratio "${t%%|*}" "${g%%|*}") | $(ratio "${t##*|}" "${g##*|}") |"
    }
    echo
    echo "## Bodies, access logs and workers, Tidegate / nginx (same run)"
    echo
    echo "| scenario | throughput | CPU per request |"
    echo "| --- | ---: | ---: |"
    for size in 1k 16k 256k; do pair "$size response body" "tidegate, $size body" "nginx, $size body"; done
    pair "access logs on (to a file)" "tidegate, access log on" "nginx, access log on"
    pair "1 worker, unpinned (shared cores)" "tidegate, 1 worker(s) unpinned" "nginx, 1 worker(s) unpinned"
    pair "2 workers, unpinned (shared cores)" "tidegate, 2 worker(s) unpinned" "nginx, 2 worker(s) unpinned"
    scale() { local r; r=$(result "$1"); echo "${r%%|*}"; }
    ng1=$(scale "nginx, 1 worker(s) unpinned"); ng2=$(scale "nginx, 2 worker(s) unpinned")
    tg1=$(scale "tidegate, 1 worker(s) unpinned"); tg2=$(scale "tidegate, 2 worker(s) unpinned")
    if [[ -n "$ng1" && -n "$ng2" && -n "$tg1" && -n "$tg2" ]]; then
      echo
      echo "Scaling from 1 to 2 workers (throughput at 2 / at 1, proxies, upstream and wrk sharing both cores): nginx $(ratio "$ng2" "$ng1"), Tidegate $(ratio "$tg2" "$tg1")."
    fi
    own=$(result "tidegate, own exchange"); loop=$(result "tidegate, Pingora's proxy loop")
    if [[ -n "$own" && -n "$loop" ]]; then
      echo
      echo "Tidegate's own HTTP/1 exchange / Pingora's proxy loop (same binary, keep-alive GET): throughput $(ratio "${own%%|*}" "${loop%%|*}"), CPU per request $(ratio "${own##*|}" "${loop##*|}")."
    fi
  fi
  if true; then
    row() { printf '%s\n' "${RESULTS[@]}" | awk -F'|' -v n="$1" '$1 == n {print $2"|"$3"|"$4}'; }
    ngwaf=$(row "nginx + ModSecurity + CRS"); tgcrs=$(row "tidegate + waf (crs)"); tglite=$(row "tidegate + waf (lite)")
    ngmix=$(row "nginx, no WAF (request mix)"); tgmix=$(row "tidegate, no WAF (request mix)")
    if [[ -n "$ngwaf" && -n "$tgcrs" ]]; then
      echo
      echo "## WAF: Tidegate + CRS / nginx + ModSecurity + CRS (PL1, same request mix)"
      echo
      echo "| ratio | throughput | CPU per request | peak RSS |"
      echo "| --- | ---: | ---: | ---: |"
      IFS='|' read -r a1 a2 a3 <<<"$tgcrs"; IFS='|' read -r b1 b2 b3 <<<"$ngwaf"
      echo "| Tidegate CRS / nginx ModSecurity | $(ratio "$a1" "$b1") | $(ratio "$a2" "$b2") | $(ratio "$a3" "$b3") |"
      IFS='|' read -r c1 c2 c3 <<<"$tglite"
      echo "| Tidegate lite / nginx ModSecurity | $(ratio "$c1" "$b1") | $(ratio "$c2" "$b2") | $(ratio "$c3" "$b3") |"
      for kind in responses "16k page"; do
        IFS='|' read -r f1 f2 f3 <<<"$(row "tidegate + waf (crs), $kind")"
        IFS='|' read -r g1 g2 g3 <<<"$(row "nginx + ModSecurity + CRS, $kind")"
        [[ -n "$f1" && -n "$g1" ]] || continue
        echo "| Tidegate CRS / nginx ModSecurity, responses inspected (${kind/responses/request mix}) | $(ratio "$f1" "$g1") | $(ratio "$f2" "$g2") | $(ratio "$f3" "$g3") |"
      done
      IFS='|' read -r d1 d2 _ <<<"$tgmix"; IFS='|' read -r e1 e2 _ <<<"$ngmix"
      echo
      echo "Cost of the WAF on each proxy (CPU-s per 1M requests added): nginx + ModSecurity $(python3 -c "print(f'{float(\"$b2\")-float(\"$e2\"):.0f}')"), Tidegate CRS $(python3 -c "print(f'{float(\"$a2\")-float(\"$d2\"):.0f}')"), Tidegate lite $(python3 -c "print(f'{float(\"$c2\")-float(\"$d2\"):.0f}')")."
    fi
  fi
  if ((${#TLSX[@]})); then
    echo
    echo "## TLS, HTTP/2 and gRPC (same certificate, protocol versions and ciphers)"
    echo
    echo "| target | rate (requests, calls or handshakes /s) | proxy CPU-µs each | notes |"
    echo "| --- | ---: | ---: | --- |"
    for x in "${TLSX[@]}"; do IFS='|' read -r n r c f note <<<"$x"; echo "| $n | $r | $c | $f${f:+; }$note |"; done
    tls_row() { printf '%s\n' "${RESULTS[@]}" "${TLSX[@]}" | awk -F'|' -v n="$1" '$1 == n {print $2"|"$3}'; }
    tls_ratio() { # LABEL TIDEGATE-ROW NGINX-ROW
      local t g; t=$(tls_row "$2"); g=$(tls_row "$3")
      [[ -n "$t" && -n "$g" ]] || return 0
      echo "| $1 | $(ratio "${t%%|*}" "${g%%|*}") | $(ratio "${t##*|}" "${g##*|}") |"
    }
    echo
    echo "| Tidegate / nginx | throughput | CPU per request |"
    echo "| --- | ---: | ---: |"
    tls_ratio "TLS keep-alive (wrk)" "tidegate, TLS keep-alive" "nginx, TLS keep-alive"
    tls_ratio "TLS, new connection per request (full handshakes)" "tidegate, TLS new connection per request" "nginx, TLS new connection per request"
    tls_ratio "TLS connections/s, full handshakes (50 clients)" "tidegate, TLS connections, full handshakes" "nginx, TLS connections, full handshakes"
    tls_ratio "TLS connections/s, resumed handshakes (session tickets)" "tidegate, TLS connections, resumed handshakes" "nginx, TLS connections, resumed handshakes"
    tls_ratio "h2 over TLS (h2load, 10 × 10 streams)" "tidegate, h2 over TLS (10 connections × 10 streams)" "nginx, h2 over TLS (10 connections × 10 streams)"
    tls_ratio "gRPC unary (h2c)" "tidegate, gRPC unary (h2c)" "nginx, gRPC unary (h2c)"
    tls_ratio "upstream TLS, kept alive" "tidegate, upstream TLS (kept alive)" "nginx, upstream TLS (kept alive)"
    direct=$(tls_row "gRPC unary, direct"); tgg=$(tls_row "tidegate, gRPC unary (h2c)"); ngg=$(tls_row "nginx, gRPC unary (h2c)")
    if [[ -n "$direct" ]]; then
      echo
      echo "gRPC unary calls through the proxy / direct to the upstream: Tidegate $(ratio "${tgg%%|*}" "${direct%%|*}"), nginx $(ratio "${ngg%%|*}" "${direct%%|*}")."
    fi
  fi
  echo
  echo "## WebSocket ($TUNNELS idle tunnels held 3 s; then 50 clients echoing 64-byte messages for ${DURATION}s)"
  echo
  echo "| target | memory per idle tunnel (KiB) | alive after idling | echo messages/s |"
  echo "| --- | ---: | ---: | ---: |"
  for w in "${WS[@]}"; do IFS='|' read -r n per alive rate <<<"$w"; echo "| $n | $per | $alive | $rate |"; done
  IFS='|' read -r _ ngper _ ngrate <<<"${WS[1]}"; IFS='|' read -r _ tgper _ tgrate <<<"${WS[2]}"
  echo
  echo "Ratios, Tidegate / nginx: echo throughput $(ratio "$tgrate" "$ngrate"), memory per tunnel $(ratio "$tgper" "$ngper")."
  echo
  echo "## Connection floods ($FLOOD_N connections each, a fresh process per flood)"
  echo
  echo "| flood | nginx KiB per connection | Tidegate KiB per connection | nginx RSS after | Tidegate RSS after |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for f in "${FLOODS[@]}"; do
    IFS='|' read -r mode ng tg <<<"$f"
    python3 -c "
import json,sys
n,t=json.loads(sys.argv[2]),json.loads(sys.argv[3])
print(f\"| {sys.argv[1]} | {n['kib_per_connection']} | {t['kib_per_connection']} | {n['rss_after_pct']:+} % | {t['rss_after_pct']:+} % |\")" "$mode" "$ng" "$tg"
  done
  if ((${#LAT[@]})); then
    echo
    echo "## Latency at fixed rates (${RATES[*]} requests/s: a quarter and a half of nginx's maximum; oha --latency-correction)"
    echo
    echo "| target | p50 (ms) | p99 (ms) | p99.9 (ms) |"
    echo "| --- | ---: | ---: | ---: |"
    for l in "${LAT[@]}"; do IFS='|' read -r n a b c <<<"$l"; echo "| $n | $a | $b | $c |"; done
    echo
    for k in 0 2; do
      IFS='|' read -r _ _ ng99 _ <<<"${LAT[$k]}"; IFS='|' read -r _ _ tg99 _ <<<"${LAT[$((k + 1))]}"
      echo "p99 ratio at ${RATES[$((k / 2))]}/s, Tidegate / nginx: $(ratio "$tg99" "$ng99")"
      echo
    done
  fi
  if ((${#CHURN[@]})); then
    echo
    echo "## 200 upstream endpoints, each closing connections after 20 requests (2000 requests/s in all)"
    echo
    echo "| proxy | requests | 200s | new TCP connections per 1000 requests |"
    echo "| --- | ---: | ---: | ---: |"
    for x in "${CHURN[@]}"; do IFS='|' read -r n total ok per <<<"$x"; echo "| $n | $total | $ok | $per |"; done
    IFS='|' read -r _ _ _ ng <<<"${CHURN[0]}"; IFS='|' read -r _ _ _ tg <<<"${CHURN[1]}"
    echo
    echo "New upstream connections, Tidegate / nginx: $(ratio "$tg" "$ng")."
  fi
  if ((${#PROFILE[@]})); then
    echo
    echo "## Profile, keep-alive GET"
    echo
    echo "| proxy | user CPU-µs per request | system CPU-µs per request | system calls per request | the most frequent, per request |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for x in "${PROFILE[@]}"; do IFS='|' read -r n u sy c top <<<"$x"; echo "| $n | $u | $sy | $c | $top |"; done
    for proxy in nginx tidegate; do
      echo
      echo "Hottest symbols, $proxy (perf, self time, ≥ 1.5 %):"
      echo
      echo '```'
      cat "$WORK/hot-$proxy.txt"
      echo '```'
    done
  fi
} > "$REPORT"
cat "$REPORT"
((SMOKE)) || echo "report written to $REPORT" >&2
# The smoke run also keeps the Nacos scale simulator working, at its smallest size (two modes,
# ~30 s); skipped without an rnacos binary (scripts/rnacos.sh install).
if ((SMOKE)); then
  if [[ -x "${RNACOS_BIN:-${CARGO_HOME:-$HOME/.cargo}/bin/rnacos}" ]] || command -v rnacos >/dev/null; then
    echo "== scenario: nacos-scale (--quick)" >&2
    "$NACOS_PY" "$ROOT/load-tests/nacos_scale.py" --quick --modes push,poll1 --out "$WORK" >&2 \
      || { echo "FAILED: nacos-scale" >&2; exit 1; }
  else
    echo "== scenario: nacos-scale skipped (no rnacos; scripts/rnacos.sh install)" >&2
  fi
fi
# Any error or non-2xx answer, a run that served nothing, or a tunnel lost while idle fails
# the harness.
for w in "${WS[@]}"; do
  IFS='|' read -r n _ alive rate <<<"$w"
  if [[ "$alive" != "$TUNNELS" ]]; then echo "FAILED: $n: $alive of $TUNNELS tunnels alive" >&2; exit 1; fi
done
for x in "${TLSX[@]}"; do
  IFS='|' read -r n rate _ failed _ <<<"$x"
  if [[ -n "${failed// /}" ]] || ! python3 -c "import sys; sys.exit(0 if float('$rate' or 0) > 0 else 1)"; then
    echo "FAILED: $n: ${rate}/s ${failed}" >&2
    exit 1
  fi
done
for r in "${RESULTS[@]}"; do
  IFS='|' read -r n rps _ _ err <<<"$r"
  err=${err#median of * req/s}  # the spread of a paired row is a note, not an error
  if [[ -n "${err// /}" ]] || ! python3 -c "import sys; sys.exit(0 if float('$rps' or 0) > 0 else 1)"; then
    echo "FAILED: $n: ${rps} req/s ${err}" >&2
    exit 1
  fi
done
