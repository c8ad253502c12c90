#!/usr/bin/env bash
# rnacos, a Nacos-compatible registry and config server, for local runs and tests.
#   scripts/rnacos.sh install            cargo install --locked rnacos (if missing)
#   scripts/rnacos.sh start [PORT] [DIR]   start on 127.0.0.1:PORT (default 8848), data in DIR
#   scripts/rnacos.sh stop [DIR]           stop the one started with DIR
# gRPC listens on PORT+1000 and the web console on PORT+2000, both on 127.0.0.1 too.
set -euo pipefail

RNACOS_VERSION=0.8.8
bin() { command -v rnacos || echo "${CARGO_HOME:-$HOME/.cargo}/bin/rnacos"; }

case "${1:-}" in
  install)
    if [[ -x "$(bin)" ]]; then
      echo "rnacos: $(bin)"
    else
      echo "== installing rnacos $RNACOS_VERSION (cargo install, takes several minutes)"
      cargo install --locked --quiet rnacos --version "$RNACOS_VERSION"
    fi
    ;;
  start)
    port="${2:-8848}"
    dir="${3:-/tmp/tidegate-rnacos}"
    mkdir -p "$dir"
    RNACOS_HTTP_PORT="$port" RNACOS_SDK_HOST=127.0.0.1 RNACOS_CONSOLE_HOST=127.0.0.1 \
      RNACOS_RAFT_NODE_ADDR="127.0.0.1:$((port + 1000))" RNACOS_DATA_DIR="$dir/data" \
      nohup "$(bin)" >"$dir/rnacos.log" 2>&1 &
    echo $! >"$dir/rnacos.pid"
    for _ in $(seq 1 100); do
      if curl -fsS "http://127.0.0.1:$port/nacos/v1/ns/service/list?pageNo=1&pageSize=1" >/dev/null 2>&1; then
        echo "rnacos listening on http://127.0.0.1:$port (pid $(cat "$dir/rnacos.pid"), log $dir/rnacos.log)"
        exit 0
      fi
      sleep 0.1
    done
    echo "rnacos did not start; see $dir/rnacos.log" >&2
    exit 1
    ;;
  stop)
    dir="${2:-/tmp/tidegate-rnacos}"
    if [[ -f "$dir/rnacos.pid" ]]; then
      kill "$(cat "$dir/rnacos.pid")" 2>/dev/null || true
      rm -f "$dir/rnacos.pid"
    fi
    ;;
  *)
    echo "usage: $0 install | start [PORT] [DIR] | stop [DIR]" >&2
    exit 2
    ;;
esac
