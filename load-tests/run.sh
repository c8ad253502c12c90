#!/usr/bin/env bash
# Tidegate vs nginx as a reverse proxy on this machine, same run, same upstream.
#
#   load-tests/run.sh                 full comparison (≈3 min), report in load-tests/results/
#   load-tests/run.sh --smoke         a few seconds per target, to keep the harness working (CI)
#   options: --duration SECS  --bin PATH (tidegate binary; default: release build)
#
# Layout on 2 cores: each proxy (tidegate with 1 worker thread, nginx with 1 worker) is pinned
# to CPU 0; the upstream (nginx `return 200`) and the load generators to CPU 1. Throughput is
# wrk's maximum; latency percentiles come from oha at a fixed rate (half of nginx's maximum)
# with --latency-correction, so coordinated omission does not hide stalls. CPU is the proxy
# process's user+system time over the wrk run; RSS is its peak (VmHWM).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=10
SMOKE=0
BIN=""
while (($#)); do
  case "$1" in
    --smoke) SMOKE=1; DURATION=2 ;;
    --duration) DURATION=$2; shift ;;
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
  server { listen 127.0.0.1:$UP; location / { return 200 "ok\n"; } }
}
CONF
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
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/nginx-$1.pid;
error_log $WORK/nginx-$1.err;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
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

tidegate_conf() { # $1 port, $2 admin port, $3 number of extra routes, $4 limit plugin: none|local|cluster
  local plugin_line=""
  case "${4:-none}" in
    local|cluster) plugin_line='plugins = ["limit"]' ;;
    chain) plugin_line='plugins = ["auth", "tenant-limit"]' ;;
    waf) plugin_line='plugins = ["auth", "tenant-limit", "waf"]' ;;
  esac
  {
    cat <<CONF
[server]
listen = ["127.0.0.1:$1"]
threads = 1
pid_file = "$WORK/tidegate-$1.pid"
upgrade_sock = "$WORK/tidegate-$1.sock"
grace_period_seconds = 1
graceful_shutdown_timeout_seconds = 1
[admin]
listen = "127.0.0.1:$2"
[access_log]
enabled = false
[edge]
# nginx's client_header_timeout default, so the flood scenarios hold connections alike.
header_read_timeout_ms = 60000
[[services]]
name = "up"
endpoints = [{ addr = "127.0.0.1:$UP" }]
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
      # The WAF (all checks, block mode) on the same chain.
      printf '[plugins.waf]\ntype = "waf"\nmode = "block"\n'
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
  taskset -c 0 nginx -c "$conf" & local master=$!
  PIDS+=("$master")
  wait_port "$NG_PORT"
  NG_PIDS="$master $(children "$master")"
}
start_tidegate() { # $1 extra routes, $2 limit plugin → sets TG_PORT, TG_PIDS
  TG_PORT=$(free_port)
  local admin; admin=$(free_port)
  local conf; conf=$(tidegate_conf "$TG_PORT" "$admin" "$1" "${2:-none}")
  RUST_LOG=warn taskset -c 0 "$BIN" -c "$conf" > "$WORK/tidegate-$TG_PORT.log" 2>&1 & local pid=$!
  PIDS+=("$pid")
  wait_port "$TG_PORT"
  TG_PIDS="$pid"
}

CONNS=50
((SMOKE)) && CONNS=10
# wrk_run NAME URL PIDS [wrk args...] → appends a result line
RESULTS=()
wrk_run() {
  local name=$1 url=$2 pids=$3; shift 3
  local before after out rps total cpu rss
  # One second of warm-up (connection pools, allocator, caches), not measured.
  taskset -c 1 wrk -t1 -c"$CONNS" -d1s "$@" "$url" >/dev/null
  # shellcheck disable=SC2086
  before=$(cpu_ticks $pids)
  out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@" "$url")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  total=$(awk '/requests in/{print $1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
  cpu=$(python3 -c "print(f'{($after-$before)/$CLK/max($total,1)*1e6:.1f}')")
  # shellcheck disable=SC2086
  rss=$(peak_rss_kb $pids)
  RESULTS+=("$name|$rps|$cpu|$rss|${errors:-}")
  echo "  $name: $rps req/s, $cpu CPU-s per 1M requests, peak RSS ${rss} KiB ${errors}" >&2
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
wrk_run "nginx" "http://127.0.0.1:$NG_PORT/" "$NG_PIDS"
wrk_run "tidegate" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS"
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
  wrk_run "nginx, new connection per request" "http://127.0.0.1:$NG_PORT/" "$NG_PIDS" -H "Connection: close"
  wrk_run "tidegate, new connection per request" "http://127.0.0.1:$TG_PORT/" "$TG_PIDS" -H "Connection: close"

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

# Report.
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
if ((SMOKE)); then REPORT=$WORK/report.md; else REPORT=$ROOT/load-tests/results/$STAMP.md; fi
{
  echo "# Tidegate vs nginx — $STAMP"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(nginx -v 2>&1); tidegate $("$BIN" --version | awk '{print $2}')."
  echo "Each proxy: 1 worker, pinned to CPU 0. Upstream (nginx \`return 200\`) and load generators on CPU 1."
  echo "wrk: 1 thread, $CONNS connections, ${DURATION}s per run."
  echo
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
} > "$REPORT"
cat "$REPORT"
((SMOKE)) || echo "report written to $REPORT" >&2
# Any error or non-2xx answer, a run that served nothing, or a tunnel lost while idle fails
# the harness.
for w in "${WS[@]}"; do
  IFS='|' read -r n _ alive rate <<<"$w"
  if [[ "$alive" != "$TUNNELS" ]]; then echo "FAILED: $n: $alive of $TUNNELS tunnels alive" >&2; exit 1; fi
done
for r in "${RESULTS[@]}"; do
  IFS='|' read -r n rps _ _ err <<<"$r"
  if [[ -n "${err// /}" ]] || ! python3 -c "import sys; sys.exit(0 if float('$rps' or 0) > 0 else 1)"; then
    echo "FAILED: $n: ${rps} req/s ${err}" >&2
    exit 1
  fi
done
