#!/usr/bin/env bash
# Makes (or brings up to date) a Python venv with the pinned packages of a requirements file,
# then runs a check in it. The test kits' setup.sh scripts call this:
#   scripts/python-venv.sh VENV REQUIREMENTS CHECK_PYTHON_CODE
# Wheels only (no compiler); on a ready venv it does nothing but check. Debian's python3 has
# venv in a package of its own (python3-venv), installed here when it is missing.
set -euo pipefail
(($# == 3)) || { echo "usage: $0 VENV REQUIREMENTS CHECK_PYTHON_CODE" >&2; exit 2; }
venv=$1 req=$2 check=$3
python=${PYTHON:-python3}

if [[ ! -x $venv/bin/python ]]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
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
"$venv/bin/python" -c "$check"
