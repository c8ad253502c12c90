#!/usr/bin/env bash
# Makes (or brings up to date) a Python venv with the Nacos SDK the interop tests drive:
#   gateway/tests/nacos_sdk/setup.sh VENV
# Then: TIDEGATE_NACOS_SDK_PYTHON=VENV/bin/python cargo test -p tidegate --test nacos_grpc
set -euo pipefail
(($# == 1)) || { echo "usage: $0 VENV" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../../scripts/python-venv.sh" "$1" "$here/requirements.txt" \
  'import nacos_sdk_rust_binding_py, sys; print("nacos sdk kit ready: nacos-sdk-rust-binding-py in", sys.prefix)'
