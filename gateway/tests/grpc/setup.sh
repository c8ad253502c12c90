#!/usr/bin/env bash
# Makes (or brings up to date) a Python venv with the gRPC test kit's pinned packages:
#   gateway/tests/grpc/setup.sh VENV
# Then: VENV/bin/python gateway/tests/grpc/server.py ... / client.py ...
set -euo pipefail
(($# == 1)) || { echo "usage: $0 VENV" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
exec "$here/../../../scripts/python-venv.sh" "$1" "$here/requirements.txt" \
  'import grpc, grpc_health.v1.health, sys; print("grpc test kit ready: grpcio", grpc.__version__, "in", sys.prefix)'
