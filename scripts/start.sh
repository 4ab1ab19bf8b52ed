#!/usr/bin/env bash
# Starts the gateway on embedded defaults (no Redis: in-process worker threads, filesystem store in
# ./data) with the shipped model, installing npm packages and building first when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}" npm_config_onnxruntime_node_install="${ONNXRUNTIME_NODE_INSTALL:-skip}"
stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
npm run --silent build
exec node dist/src/server/main.js
