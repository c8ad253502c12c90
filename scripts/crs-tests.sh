#!/usr/bin/env bash
# The OWASP CRS 3.3.4 regression tests (ftw YAML) sent through a real gateway and judged from
# its WAF's logs by gateway/tests/crs/run_crs.py. See gateway/tests/crs/README.md.
#
#   scripts/crs-tests.sh fetch                  Debian's modsecurity-crs source package into
#                                               target/crs/ (tests/ and rules/); idempotent
#   scripts/crs-tests.sh nginx-peer PL [ARGS…]  nginx + ModSecurity v3 + Debian's CRS at
#                                               paranoia level PL, measured by the runner
#   scripts/crs-tests.sh tidegate PL [ARGS…]    the same through Tidegate ($TIDEGATE_BIN) with
#                                               the `waf` plugin in block mode on every route
#   scripts/crs-tests.sh run ARGS…              just the runner (any gateway; see --help)
#   scripts/crs-tests.sh upstream PORT LOG      the logging upstream, in the foreground
#
# ARGS go to the runner, e.g. --floor 97.8 --baseline FILE --only 942. Everything listens on
# 127.0.0.1 only; every server started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CRS_VERSION=3.3.4
DEB_VERSION=3.3.4-1+deb12u3   # bookworm's; the tests come from the .orig tarball, same in all
ORIG=modsecurity-crs_${CRS_VERSION}.orig.tar.gz
ORIG_SHA256=15a84aaa041aa532905a34546b613bd3aed122e3f9814fbb5c28e1655d02b74d
DEBIAN_TAR=modsecurity-crs_${DEB_VERSION}.debian.tar.xz
DEBIAN_SHA256=b16d376ac771d1e3f21b6b38261cbfec3303acecfed167e7efcfad2e15ff1c0e
PYYAML_VERSION=6.0.2

CRS=$ROOT/target/crs
VENV=$CRS/venv
PY=$VENV/bin/python
RUNNER=$ROOT/gateway/tests/crs/run_crs.py
UPSTREAM=$ROOT/gateway/tests/crs/upstream.py

log() { echo "== $*" >&2; }
die() { echo "crs-tests: $*" >&2; exit 2; }

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

ensure_tools() {
  local need=()
  command -v apt-get >/dev/null || die "needs apt-get (Debian) to fetch the source package"
  command -v patch >/dev/null || need+=(patch)
  command -v xz >/dev/null || need+=(xz-utils)
  if ((${#need[@]})); then
    log "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# `apt-get source` with a private deb-src list made from this machine's own Debian sources
# (the same archive, suites and keyring; `Types: deb` -> `deb-src`) and private state and
# cache dirs, so the system's apt configuration is left as it is.
apt_source_download() {
  local apt=$CRS/apt
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial"
  local out=$apt/sources.list.d/debian-src.sources
  : >"$out"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    grep -q 'debian-archive-keyring' "$f" || continue   # Debian's own archives only
    sed -E 's/^Types:.*/Types: deb-src/' "$f" >>"$out"
    echo >>"$out"
  done
  if [[ -f /etc/apt/sources.list ]]; then
    grep -E '^deb ' /etc/apt/sources.list | sed -E 's/^deb /deb-src /' >"$apt/sources.list" || true
  else
    : >"$apt/sources.list"
  fi
  [[ -s "$out" || -s "$apt/sources.list" ]] || die "no Debian apt sources on this machine"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
              -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")
  log "apt-get update (deb-src only, private lists under $apt)"
  apt-get "${opts[@]}" update -qq >/dev/null
  (
    cd "$CRS/dl"
    log "apt-get source --download-only modsecurity-crs=$DEB_VERSION"
    if ! apt-get "${opts[@]}" source --download-only -qq "modsecurity-crs=$DEB_VERSION" >/dev/null; then
      # Superseded by a newer bookworm revision: its .orig tarball is the same file (checked
      # below by sha256); only the Debian patches may differ.
      log "revision $DEB_VERSION not in the archive any more; taking bookworm's current one"
      apt-get "${opts[@]}" source --download-only -qq modsecurity-crs >/dev/null
    fi
  )
  rm -rf "$apt/lists" "$apt/cache"   # the indexes are not needed once the files are here
}

fetch() {
  local stamp=$CRS/.fetched-$DEB_VERSION
  if [[ -f "$stamp" && -d "$CRS/tests" && -d "$CRS/rules" ]]; then
    echo "CRS $CRS_VERSION tests: $CRS/tests ($(find "$CRS/tests" -name '*.yaml' | wc -l) files, cached)"
    return
  fi
  ensure_tools
  mkdir -p "$CRS/dl"
  sha_ok "$CRS/dl/$ORIG" "$ORIG_SHA256" || apt_source_download
  sha_ok "$CRS/dl/$ORIG" "$ORIG_SHA256" ||
    die "$ORIG: sha256 is not $ORIG_SHA256 (or missing) — refusing to use it"
  local deb_tar
  deb_tar=$(ls "$CRS/dl"/modsecurity-crs_3.3.4-*.debian.tar.xz 2>/dev/null | sort -V | tail -1 || true)
  if [[ "$deb_tar" == "$CRS/dl/$DEBIAN_TAR" ]]; then
    sha_ok "$deb_tar" "$DEBIAN_SHA256" || die "$DEBIAN_TAR: sha256 is not $DEBIAN_SHA256"
  elif [[ -n "$deb_tar" ]]; then
    log "using $(basename "$deb_tar") (sha256 $(sha256sum "$deb_tar" | cut -d' ' -f1)), not the pinned $DEBIAN_TAR"
  fi

  local src=$CRS/src
  rm -rf "$src" "$CRS/tests" "$CRS/rules"
  mkdir -p "$src"
  tar -xzf "$CRS/dl/$ORIG" -C "$src" --strip-components=1
  if [[ -n "$deb_tar" ]]; then
    # Debian's patches (CVE fixes to the rules; one adds a test file, disabled) in series order
    tar -xJf "$deb_tar" -C "$src"
    local p
    while read -r p; do
      [[ -z "$p" || "$p" == \#* ]] && continue
      patch -s -p1 -N -d "$src" <"$src/debian/patches/$p" >/dev/null
    done <"$src/debian/patches/series"
  fi
  cp -r "$src/tests/regression/tests" "$CRS/tests"
  cp -r "$src/rules" "$CRS/rules"
  touch "$stamp"
  echo "CRS $CRS_VERSION tests: $CRS/tests ($(find "$CRS/tests" -name '*.yaml' | wc -l) files)"
}

venv() {
  if [[ -x "$PY" ]] && "$PY" -c "import yaml; assert yaml.__version__ == '$PYYAML_VERSION'" 2>/dev/null; then
    return
  fi
  log "python venv with PyYAML $PYYAML_VERSION in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "PyYAML==$PYYAML_VERSION"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # PORT WHAT
  for _ in $(seq 1 100); do
    port_free "$1" || return 0
    sleep 0.1
  done
  die "$2 did not start listening on 127.0.0.1:$1"
}

PIDS=()          # started here, stopped on exit: the logging upstream
TIDEGATE_PID=
cleanup() {
  local pid
  # SIGINT is pingora's fast shutdown (SIGTERM would wait out its graceful period)
  if [[ -n "$TIDEGATE_PID" ]]; then
    kill -INT "$TIDEGATE_PID" 2>/dev/null || true
    wait "$TIDEGATE_PID" 2>/dev/null || true
  fi
  if [[ -n "${NGINX_PREFIX:-}" && -f "$NGINX_PREFIX/logs/nginx.pid" ]]; then
    kill -TERM "$(cat "$NGINX_PREFIX/logs/nginx.pid")" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

start_upstream() {  # PORT LOG
  port_free "$1" || die "port $1 (upstream) is in use; set CRS_UPSTREAM_PORT"
  : >"$2"
  "$PY" "$UPSTREAM" --port "$1" --log "$2" --max-seconds 3600 &
  PIDS+=($!)
  wait_port "$1" "the logging upstream"
}

nginx_peer() {
  local pl=${1:-}
  [[ "$pl" =~ ^[1-4]$ ]] || die "usage: $0 nginx-peer PL(1-4) [runner args]"
  shift
  command -v nginx >/dev/null && [[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so && -d /usr/share/modsecurity-crs/rules ]] || {
    log "installing nginx-light libnginx-mod-http-modsecurity modsecurity-crs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq nginx-light libnginx-mod-http-modsecurity modsecurity-crs >/dev/null
  }
  fetch
  venv
  local up_port=${CRS_UPSTREAM_PORT:-18480} port=${CRS_NGINX_PORT:-$((18480 + pl))}
  local dir=$CRS/nginx-$pl
  NGINX_PREFIX=$dir
  rm -rf "$dir"
  mkdir -p "$dir/conf" "$dir/logs" "$dir/tmp"
  chmod 1777 "$dir/tmp"

  # Debian's recommended ModSecurity setup (/etc/nginx/modsecurity.conf), blocking, with the
  # audit log as one JSON line per transaction under this prefix.
  sed -E -e 's/^SecRuleEngine .*/SecRuleEngine On/' \
         -e 's|^SecAuditEngine .*|SecAuditEngine On|' \
         -e "s|^SecAuditLog .*|SecAuditLog $dir/logs/modsec_audit.log|" \
         -e 's|^SecAuditLogParts .*|SecAuditLogParts ABFHZ|' \
         -e "s|^SecTmpDir .*|SecTmpDir $dir/tmp/|" -e "s|^SecDataDir .*|SecDataDir $dir/tmp/|" \
         -e 's|^SecUnicodeMapFile unicode.mapping|SecUnicodeMapFile /etc/nginx/unicode.mapping|' \
         /etc/nginx/modsecurity.conf >"$dir/conf/modsecurity.conf"
  # CRS as Debian installs it (/usr/share/modsecurity-crs/owasp-crs.load), at paranoia level
  # PL; libmodsecurity has no IncludeOptional, so the optional files are checked here.
  local before=/etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
  local after=/etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
  {
    echo
    echo "SecAuditLogFormat JSON"
    echo "SecAuditLogType Serial"
    echo "Include /etc/modsecurity/crs/crs-setup.conf"
    echo "SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=$pl\""
    if [[ -f "$before" ]]; then echo "Include $before"; fi
    echo "Include /usr/share/modsecurity-crs/rules/*.conf"
    if [[ -f "$after" ]]; then echo "Include $after"; fi
  } >>"$dir/conf/modsecurity.conf"

  cat >"$dir/conf/nginx.conf" <<EOF
# nginx + ModSecurity v3 + CRS at PL$pl in front of the logging upstream (crs-tests.sh)
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes 1;
pid $dir/logs/nginx.pid;
# ModSecurity's rule messages are logged at level info
error_log $dir/logs/error.log info;
events { worker_connections 256; }
http {
    # the request's id: the client's X-Request-Id, else nginx's own. It is ModSecurity's
    # unique_id, goes to the upstream and comes back in the response.
    map \$http_x_request_id \$crs_id { "" \$request_id; default \$http_x_request_id; }
    log_format crs 'crs_id=\$crs_id status=\$status up=\$upstream_addr req="\$request"';
    access_log $dir/logs/access.log crs;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    client_header_timeout 4s;
    client_body_timeout 4s;
    send_timeout 4s;
    keepalive_timeout 4s;
    server {
        listen 127.0.0.1:$port default_server;
        server_name _;
        modsecurity on;
        modsecurity_rules_file $dir/conf/modsecurity.conf;
        modsecurity_transaction_id \$crs_id;
        add_header X-Request-Id \$crs_id always;
        location / {
            proxy_pass http://127.0.0.1:$up_port;
            proxy_set_header X-Request-Id \$crs_id;
            proxy_read_timeout 5s;
        }
    }
}
EOF
  trap cleanup EXIT
  trap "exit 130" INT TERM
  start_upstream "$up_port" "$dir/upstream.log"
  port_free "$port" || die "port $port (nginx) is in use; set CRS_NGINX_PORT"
  nginx -q -t -p "$dir" -e "$dir/logs/error.log" -c "$dir/conf/nginx.conf"
  nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/conf/nginx.conf"
  wait_port "$port" nginx
  log "nginx $(nginx -v 2>&1 | sed 's|.*/||') + ModSecurity $(dpkg-query -W -f '${Version}' libmodsecurity3 2>/dev/null) + CRS $(dpkg-query -W -f '${Version}' modsecurity-crs 2>/dev/null) at PL$pl on 127.0.0.1:$port"
  local rc=0
  "$PY" "$RUNNER" --tests "$CRS/tests" --rules "$CRS/rules" --pl "$pl" \
    --target "127.0.0.1:$port" --adapter nginx \
    --error-log "$dir/logs/error.log" --access-log "$dir/logs/access.log" \
    --audit-log "$dir/logs/modsec_audit.log" --upstream-log "$dir/upstream.log" \
    --json "$CRS/results-nginx-pl$pl.json" --markdown "$CRS/results-nginx-pl$pl.md" "$@" || rc=$?
  return $rc
}

tidegate() {
  local pl=${1:-}
  [[ "$pl" =~ ^[1-4]$ ]] || die "usage: $0 tidegate PL(1-4) [runner args]"
  shift
  local bin=${TIDEGATE_BIN:-$ROOT/target/debug/tidegate}
  [[ -x "$bin" ]] || die "no Tidegate binary at $bin (build it, or set TIDEGATE_BIN)"
  fetch
  venv
  local up_port=${CRS_UPSTREAM_PORT:-18480} port=${CRS_TIDEGATE_PORT:-$((18490 + pl))}
  local admin_port=${CRS_TIDEGATE_ADMIN_PORT:-$((18500 + pl))}
  local dir=$CRS/tidegate-$pl
  rm -rf "$dir"
  mkdir -p "$dir"
  # TIDEGATE_WAF_EXTRA: more lines for the plugin table ({PL} becomes the level), e.g.
  # 'inbound_anomaly_threshold = 10'. TIDEGATE_WAF_ENGINE=lite measures the cheap engine
  # (which has no paranoia levels).
  local extra=${TIDEGATE_WAF_EXTRA:-}
  local engine=${TIDEGATE_WAF_ENGINE:-crs} level="paranoia_level = $pl"
  [[ $engine == crs ]] || level=""
  cat >"$dir/tidegate.toml" <<EOF
[server]
listen = ["127.0.0.1:$port"]
threads = 2
[admin]
listen = "127.0.0.1:$admin_port"
[access_log]
enabled = true
path = "$dir/access.log"
# The runner waits for each request's line: no batching delay.
flush_interval_ms = 1
[plugins.waf]
type = "waf"
engine = "$engine"
mode = "block"
$level
${extra//\{PL\}/$pl}
[[services]]
name = "crs-upstream"
endpoints = [{ addr = "127.0.0.1:$up_port" }]
[[routes]]
name = "all"
path = "/"
service = "crs-upstream"
plugins = ["waf"]
EOF
  trap cleanup EXIT
  trap "exit 130" INT TERM
  start_upstream "$up_port" "$dir/upstream.log"
  port_free "$port" || die "port $port (Tidegate) is in use; set CRS_TIDEGATE_PORT"
  "$bin" -c "$dir/tidegate.toml" >"$dir/tidegate.out" 2>&1 &
  TIDEGATE_PID=$!
  wait_port "$port" Tidegate
  log "Tidegate $bin with the waf plugin (block) at PL$pl on 127.0.0.1:$port"
  local rc=0
  "$PY" "$RUNNER" --tests "$CRS/tests" --rules "$CRS/rules" --pl "$pl" \
    --target "127.0.0.1:$port" --adapter tidegate \
    --access-log "$dir/access.log" --upstream-log "$dir/upstream.log" \
    --json "$CRS/results-tidegate-pl$pl.json" --markdown "$CRS/results-tidegate-pl$pl.md" "$@" || rc=$?
  return $rc
}

case "${1:-}" in
  fetch) fetch ;;
  nginx-peer) shift; nginx_peer "$@" ;;
  tidegate) shift; tidegate "$@" ;;
  run) shift; fetch >/dev/null; venv; exec "$PY" "$RUNNER" "$@" ;;
  upstream)
    [[ $# -eq 3 ]] || die "usage: $0 upstream PORT LOG"
    venv; exec "$PY" "$UPSTREAM" --port "$2" --log "$3" ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac
