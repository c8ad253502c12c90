#!/usr/bin/env bash
# Makes (or brings up to date) a Python venv with the Nacos SDK the interop tests drive:
#   gateway/tests/nacos_sdk/setup.sh VENV
# Then: TIDEGATE_NACOS_SDK_PYTHON=VENV/bin/python cargo test -p tidegate --test nacos_grpc
# Wheels only (no compiler); running it again on a ready venv does nothing but check.
set -euo pipefail
(($# == 1)) || { echo "usage: $0 VENV" >&2; exit 2; }
venv=$1
req="$(cd "$(dirname "$0")" && pwd)/requirements.txt"
python=${PYTHON:-python3}

if [[ ! -x $venv/bin/python ]]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 has venv in its own package.
    rm -rf "$venv"
    if command -v apt-get >/dev/null; then
      echo "== installing python3-venv"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
    fi
    "$python" -m venv "$venv"
  fi
fi

# Up to date when every pinned name==version is already installed.
want=$(grep -E '^[A-Za-z]' "$req" | tr 'A-Z_' 'a-z-' | sort)
have=$("$venv/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null | tr 'A-Z_' 'a-z-' | sort)
if [[ -n $(comm -23 <(echo "$want") <(echo "$have")) ]]; then
  echo "== pip install into $venv: $(echo $want)"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: -r "$req"
fi
"$venv/bin/python" -c 'import nacos_sdk_rust_binding_py, sys; print("nacos sdk kit ready: nacos-sdk-rust-binding-py in", sys.prefix)'
