#!/usr/bin/env bash
# Runs every Tidegate test on a fresh machine: installs what the tests need, then
# `cargo test` over the whole workspace. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)             # zlib-ng for pingora's compression
command -v prometheus >/dev/null || need_apt+=(prometheus)   # dashboards/alerts test (+ promtool)
if ((${#need_apt[@]})); then
  echo "== installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked -- --include-ignored
