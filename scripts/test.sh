#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs what it needs, then runs every suite.
# Usage: ./scripts/test.sh [extra pytest args]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# System packages (Debian), only the missing ones and only as root: fonts for rendered text,
# ffmpeg (HEVC anchor) and Tesseract for the evaluation harness, avifenc for the text codec, Redis for the queue-mode tests,
# Chromium for the browser tests.
missing=()
fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core fontconfig)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v tesseract >/dev/null || missing+=(tesseract-ocr tesseract-ocr-eng)
# avifenc: the gateway's text codec avif-screen (AV1 screen-content tools).
command -v avifenc >/dev/null || missing+=(libavif-bin)
command -v redis-server >/dev/null || [ -n "${VLMPRESS_TEST_REDIS_URL:-}" ] || missing+=(redis-server)
# Chromium for the inspector page's tests (driven by puppeteer-core; no browser download).
[ -x /usr/bin/chromium ] || [ -n "${VLMPRESS_CHROMIUM:-}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: missing system packages: ${missing[*]} (apt-get install them)" >&2
  fi
fi

# Python (training, export, evaluation): a project-local virtual environment.
py="${PYTHON:-python3.11}"
command -v "$py" >/dev/null || py=python3
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want="$(cat training/requirements.txt eval/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # The PyTorch wheel and its CUDA libraries take about 6 GB installed; say so plainly when the disk
  # cannot hold them instead of failing half-way through pip. No pip cache: it would double that.
  free_kb="$(df -Pk .venv | awk 'NR==2 {print $4}')"
  if [ -n "$free_kb" ] && [ "$free_kb" -lt 7000000 ]; then
    echo "warning: only $((free_kb / 1024)) MiB free for the Python environment; about 7 GiB is needed" >&2
  fi
  .venv/bin/python -m pip install -q --no-cache-dir --upgrade pip
  .venv/bin/python -m pip install -q --no-cache-dir -r training/requirements.txt -r eval/requirements.txt
  echo "$want" > "$stamp"
fi

# Node.js (codec runtime, CLI, gateway): packages from the lockfile, then a TypeScript build.
source scripts/npm-install.sh

# Redis for the queue-mode tests: VLMPRESS_TEST_REDIS_URL if set, else one already running on the
# default port (tests use their own random key prefixes and delete nothing else), else a private one.
if [ -z "${VLMPRESS_TEST_REDIS_URL:-}" ]; then
  if command -v redis-cli >/dev/null && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; then
    export VLMPRESS_TEST_REDIS_URL=redis://127.0.0.1:6379
  else
    if ! command -v redis-server >/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
      else
        echo "error: the tests need redis-server (apt-get install redis-server) or VLMPRESS_TEST_REDIS_URL" >&2
        exit 1
      fi
    fi
    redis_dir="$(mktemp -d)"
    redis_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
      --dir "$redis_dir" --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
    trap 'kill "$(cat "$redis_dir/redis.pid" 2>/dev/null)" 2>/dev/null; rm -rf "$redis_dir"' EXIT
    for _ in $(seq 50); do
      [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break
      sleep 0.1
    done
    export VLMPRESS_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
  fi
fi
echo "== Redis for the tests: $VLMPRESS_TEST_REDIS_URL =="

# A real S3 server for the S3 store's tests (each test file starts its own on free ports): SeaweedFS,
# built once from the Go module registry into .tools/bin/weed.
./scripts/build-seaweedfs.sh

# The time each suite takes, printed at the end.
timings=()
suite_start=0  # bash counts SECONDS from the start of the script
suite_done() { timings+=("$(printf '%-28s %4d s' "$1" $((SECONDS - suite_start)))"); suite_start=$SECONDS; }
suite_done "setup (packages, build)"

# Formatting and lint, both languages: Prettier + ESLint (npm run format fixes what it can), Ruff.
echo "== lint and format check (ESLint, Prettier, Ruff) =="
npm run --silent lint
.venv/bin/ruff check training eval
.venv/bin/ruff format --check training eval
suite_done "lint and format"

# Deployment files: helm lint + kubeconform, promtool on live scrapes, the release the Dockerfiles
# build run as they run it. Also installs .tools/bin/helm, which a node test uses.
echo "== deployment files (scripts/validate-deploy.sh) =="
./scripts/validate-deploy.sh
suite_done "deployment files"

echo "== node --test (src/, test/) =="
mapfile -t node_tests < <(find dist/test -name '*.test.js' | sort)
node --test --test-reporter=spec "${node_tests[@]}"
suite_done "node --test"

echo "== chaos suite, quick (bench/chaos.ts: Redis with AOF, a gateway, two workers, faults injected) =="
node dist/bench/chaos.js --quick
suite_done "chaos suite (quick)"

echo "== pytest (training/) =="
(cd training && ../.venv/bin/python -m pytest -q "$@")
suite_done "pytest training/"

echo "== pytest (eval/) =="
(cd eval && ../.venv/bin/python -m pytest -q "$@")
suite_done "pytest eval/"

echo "== time per suite =="
printf '%s\n' "${timings[@]}"
