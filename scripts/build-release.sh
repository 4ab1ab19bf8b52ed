#!/usr/bin/env bash
# Builds the runtime directory of the gateway and the queue worker: package.json and lockfile,
# bin/, dist/src (compiled), models/ and production node_modules. Both Dockerfiles RUN this and
# scripts/validate-deploy.sh runs it, so the images and what CI checks cannot drift apart.
#
# Usage: scripts/build-release.sh <outdir>
#   ONNXRUNTIME_NODE_INSTALL=skip    (default) CPU provider only, as in scripts/npm-install.sh; offline
#   ONNXRUNTIME_NODE_INSTALL=cuda12  also installs onnxruntime-node's CUDA provider (downloads from NuGet)
# Start the result with `node dist/src/server/main.js` (gateway) or `node dist/src/workers/worker-main.js`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: $0 <outdir>" >&2; exit 2; }
out="$1"
ort_install="${ONNXRUNTIME_NODE_INSTALL:-skip}"
case "$ort_install" in skip|cuda12) ;; *) echo "error: ONNXRUNTIME_NODE_INSTALL must be skip or cuda12, got '$ort_install'" >&2; exit 2 ;; esac

command -v node >/dev/null || { echo "error: Node.js 20 or newer is required" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { echo "error: Node.js 20 or newer is required (found $(node --version))" >&2; exit 1; }

# Only ever replace a directory this script made (or an empty one): <outdir> is deleted first.
marker=.vlmpress-release
out="$(realpath -m "$out")"
case "$root/" in "$out/"*) echo "error: <outdir> must not be the repository or a folder above it" >&2; exit 2 ;; esac
if [ -e "$out" ]; then
  if [ -n "$(ls -A "$out" 2>/dev/null)" ] && [ ! -f "$out/$marker" ]; then
    echo "error: $out exists and is not a previous release directory; refusing to delete it" >&2
    exit 1
  fi
  rm -rf "$out"
fi
mkdir -p "$out"

# Build in <outdir> itself rather than in the checkout, so the checkout's node_modules and dist/ stay
# untouched and the result depends on the lockfile alone.
cp -R "$root/package.json" "$root/package-lock.json" "$root/tsconfig.json" "$root/bin" "$root/src" "$root/models" "$out/"
cd "$out"
# npm ci never fetches the CUDA provider itself: npm 10 would run onnxruntime-node's install script
# and npm 11 would not (install scripts need approval), so it is skipped here and run explicitly below.
ONNXRUNTIME_NODE_INSTALL=skip npm_config_onnxruntime_node_install=skip \
  npm ci --no-audit --no-fund --loglevel=error
node node_modules/typescript/bin/tsc -p .
cp src/web/index.html src/web/inspector.css dist/src/web/   # the inspector page's static files (GET /ui)
npm prune --omit=dev --no-audit --no-fund --loglevel=error
# Sources and type declarations are not needed at run time; source maps point at the removed sources.
rm -rf src tsconfig.json
find dist -name '*.d.ts' -delete
find dist -name '*.map' -delete
# onnxruntime-node ships binaries for every OS and CPU (about 220 MB are other platforms'); keep this one's.
ort_bin=node_modules/onnxruntime-node/bin/napi-v6
platform="$(node -p process.platform)" arch="$(node -p process.arch)"
[ -d "$ort_bin/$platform/$arch" ] || { echo "error: onnxruntime-node has no binary for $platform/$arch" >&2; exit 1; }
find "$ort_bin" -mindepth 1 -maxdepth 1 ! -name "$platform" -exec rm -rf {} +
find "$ort_bin/$platform" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +

if [ "$ort_install" = cuda12 ]; then
  ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js
  ls "$ort_bin/$platform/$arch/libonnxruntime_providers_cuda.so" >/dev/null
fi

# The runtime must load: the codec module resolves the bundled models from here.
node --input-type=module -e "
  const { installedProviders } = await import('./dist/src/codec/execution-providers.js');
  const { BUNDLED_MODELS_DIR } = await import('./dist/src/codec/index.js');
  const fs = await import('node:fs');
  if (!fs.existsSync(BUNDLED_MODELS_DIR)) throw new Error('models not found at ' + BUNDLED_MODELS_DIR);
  const want = process.argv[1] === 'cuda12' ? ['cuda', 'cpu'] : ['cpu'];
  const got = installedProviders();
  if (want.join() !== got.join()) throw new Error('installed providers ' + got + ', expected ' + want);
  console.log('release ok: providers ' + got.join(',') + ', models ' + BUNDLED_MODELS_DIR);
" "$ort_install"
printf '{"version":"%s","onnxruntime_node_install":"%s"}\n' "$(node -p 'require("./package.json").version')" "$ort_install" > "$marker"
