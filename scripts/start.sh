#!/usr/bin/env bash
# Starts the gateway on embedded defaults (no Redis: in-process worker threads, filesystem store in
# ./data) with the shipped model, installing npm packages and building first when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/npm-install.sh
# avifenc for the text codec avif-screen; without it the gateway warns and text takes sharp AVIF.
if ! command -v avifenc >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libavif-bin >/dev/null) ||
    echo "warning: could not install libavif-bin (avifenc); rendered text will use sharp AVIF" >&2
fi
exec node dist/src/server/main.js
