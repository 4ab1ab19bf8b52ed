#!/usr/bin/env bash
# Starts the gateway on embedded defaults (no Redis: in-process worker threads, filesystem store in
# ./data) with the shipped model, installing npm packages and building first when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm-install.sh
exec node dist/src/server/main.js
