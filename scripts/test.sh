#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs every suite.
# Usage: ./scripts/test.sh [extra pytest args]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# System packages: fonts for the rendered-text training data (Debian). Only when missing and root.
if ! fc-list 2>/dev/null | grep -qi dejavu; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core fontconfig >/dev/null
  else
    echo "warning: DejaVu fonts missing (apt-get install fonts-dejavu-core)" >&2
  fi
fi

# Python (training, export, evaluation): a project-local virtual environment.
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(sha256sum training/requirements.txt | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r training/requirements.txt
  echo "$want" > "$stamp"
fi

# Node.js (codec runtime, CLI, gateway): packages from the lockfile, then a TypeScript build.
source scripts/npm-install.sh

echo "== node --test (src/, test/) =="
mapfile -t node_tests < <(find dist/test -name '*.test.js' | sort)
node --test --test-reporter=spec "${node_tests[@]}"

echo "== pytest (training/) =="
(cd training && ../.venv/bin/python -m pytest -q "$@")
