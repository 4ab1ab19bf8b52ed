#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (Apache-2.0; its S3 server is the real S3 implementation the S3 store's
# tests, chaos run and benchmark use) from the Go module registry into .tools/bin/weed. `go install
# module@version` refuses modules whose go.mod has replace directives, as SeaweedFS's does, so the
# module is downloaded and built as the main module. About 6 minutes on 2 cores the first time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
bin="$root/.tools/bin"
stamp="$root/.tools/weed.version"
if [ -x "$bin/weed" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then exit 0; fi
command -v go >/dev/null || { echo "error: Go is needed to build SeaweedFS for the S3 tests" >&2; exit 1; }
mkdir -p "$bin"
src="$(go mod download -json "github.com/seaweedfs/seaweedfs@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
(cd "$work" && go build -trimpath -ldflags="-s -w" -o "$bin/weed" ./weed)
echo "$version" > "$stamp"
"$bin/weed" version
