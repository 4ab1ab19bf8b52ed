#!/usr/bin/env bash
# Installs npm packages from the lockfile (only when it changed) and builds the TypeScript. Sourced by
# start.sh and test.sh. onnxruntime-node's install script would download CUDA provider libraries;
# it is skipped unless ONNXRUNTIME_NODE_INSTALL says otherwise (docs/codec-runtime.md: the CUDA path).
command -v node >/dev/null || { echo "error: Node.js 20 or newer is required" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "error: Node.js 20 or newer is required (found $(node --version))" >&2; exit 1; }
export ONNXRUNTIME_NODE_INSTALL="${ONNXRUNTIME_NODE_INSTALL:-skip}"
export npm_config_onnxruntime_node_install="$ONNXRUNTIME_NODE_INSTALL"
npm_stamp=node_modules/.package-lock.sha256
npm_want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$npm_want" > "$npm_stamp"
fi
npm run --silent build
