#!/usr/bin/env bash
# The Helm chart's offline tests (deploy/helm/tests/test_chart.py): Helm's SDK and the
# Kubernetes schemas from PyPI into target/helm-venv, then the tests, with TIDEGATE_BIN (the
# binary that checks the rendered config; default target/debug/tidegate).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/helm-venv
scripts/python-venv.sh "$VENV" deploy/helm/tests/requirements.txt \
  "import helm_python, kubernetes_validate, yaml"
TIDEGATE_BIN=${TIDEGATE_BIN:-target/debug/tidegate} "$VENV/bin/python" -m unittest discover \
  -s deploy/helm/tests -p 'test_*.py' "$@"
