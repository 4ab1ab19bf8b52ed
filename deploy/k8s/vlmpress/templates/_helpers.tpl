{{/* Names, labels and the pieces shared by the gateway and worker templates. */}}

{{- define "vlmpress.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "vlmpress.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "vlmpress.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "ctx" $ "component" "gateway"). */}}
{{- define "vlmpress.labels" -}}
helm.sh/chart: {{ include "vlmpress.chart" .ctx }}
{{ include "vlmpress.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: vlmpress
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "vlmpress.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vlmpress.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{- define "vlmpress.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vlmpress.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository[:tag][@digest]; call with (dict "ctx" $ "image" .Values.worker.image) for an override. */}}
{{- define "vlmpress.image" -}}
{{- $img := merge (dict) (.image | default dict) .ctx.Values.image }}
{{- $tag := $img.tag | default .ctx.Chart.AppVersion | toString }}
{{- if $img.digest }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{- define "vlmpress.imagePullPolicy" -}}
{{- $img := merge (dict) (.image | default dict) .ctx.Values.image }}
{{- $img.pullPolicy }}
{{- end }}

{{/* Job mode: "redis" (chart Redis or an external one) or "embedded" (codec threads in the gateway). */}}
{{- define "vlmpress.mode" -}}
{{- if or .Values.redis.enabled .Values.redis.url .Values.redis.existingSecret }}redis{{ else }}embedded{{ end }}
{{- end }}

{{- define "vlmpress.redisAddress" -}}
{{- printf "%s-redis.%s.svc:%d" (include "vlmpress.fullname" .) .Release.Namespace (int .Values.redis.service.port) }}
{{- end }}

{{/* REDIS_URL for the gateway and the workers (nothing in embedded mode). */}}
{{- define "vlmpress.redisEnv" -}}
{{- if .Values.redis.enabled }}
- name: REDIS_URL
  value: {{ printf "redis://%s-redis:%d" (include "vlmpress.fullname" .) (int .Values.redis.service.port) | quote }}
{{- else if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "vlmpress.fullname" . }}
      key: REDIS_URL
{{- end }}
{{- end }}

{{/* The S3 store's settings for the gateway (nothing unless s3.bucket is set). */}}
{{- define "vlmpress.s3Env" -}}
{{- with .Values.s3 }}
{{- if .bucket }}
- name: VLMPRESS_S3_BUCKET
  value: {{ .bucket | quote }}
- name: VLMPRESS_S3_REGION
  value: {{ .region | quote }}
- name: VLMPRESS_S3_PREFIX
  value: {{ .prefix | quote }}
{{- if .endpoint }}
- name: VLMPRESS_S3_ENDPOINT
  value: {{ .endpoint | quote }}
{{- end }}
{{- if .pathStyle }}
- name: VLMPRESS_S3_PATH_STYLE
  value: {{ .pathStyle | quote }}
{{- end }}
{{- if .existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: AWS_SECRET_ACCESS_KEY
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: AWS_SESSION_TOKEN
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment values are strings; integers from YAML arrive as float64 and must not become 4e+07. */}}
{{- define "vlmpress.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}{{ int64 . | toString | quote }}{{ else }}{{ toString . | quote }}{{ end }}
{{- end }}

{{/* The Secret the chart renders: client keys, the upstream key and an external Redis URL. */}}
{{- define "vlmpress.secretData" -}}
{{- $d := dict }}
{{- if not .Values.auth.existingSecret }}
{{- if .Values.auth.apiKeys }}{{ $_ := set $d "VLMPRESS_API_KEYS" (join "," .Values.auth.apiKeys) }}{{ end }}
{{- if .Values.auth.upstreamApiKey }}{{ $_ := set $d "VLMPRESS_UPSTREAM_API_KEY" .Values.auth.upstreamApiKey }}{{ end }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.redis.existingSecret) .Values.redis.url }}{{ $_ := set $d "REDIS_URL" .Values.redis.url }}{{ end }}
{{- toJson $d }}
{{- end }}

{{- define "vlmpress.authSecretName" -}}
{{- if .Values.auth.existingSecret }}{{ .Values.auth.existingSecret }}{{ else if or .Values.auth.apiKeys .Values.auth.upstreamApiKey }}{{ include "vlmpress.fullname" . }}{{ end }}
{{- end }}

{{/* Pod and container security contexts: non-root, read-only root filesystem, no capabilities. */}}
{{- define "vlmpress.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "vlmpress.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Refuse combinations that would deploy but not work. */}}
{{- define "vlmpress.validate" -}}
{{- $mode := include "vlmpress.mode" . }}
{{- if and (eq $mode "embedded") .Values.worker.enabled }}
{{- fail "worker.enabled needs Redis: set redis.enabled=true, redis.url or redis.existingSecret (or worker.enabled=false for embedded mode)" }}
{{- end }}
{{- if and (eq $mode "embedded") (or .Values.gateway.autoscaling.enabled (gt (int .Values.gateway.replicaCount) 1)) }}
{{- fail "embedded mode (no Redis) keeps bitstreams in each pod's own store: use gateway.replicaCount=1 and gateway.autoscaling.enabled=false, or enable Redis" }}
{{- end }}
{{- if and .Values.redis.enabled (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "redis.url / redis.existingSecret name an external Redis: set redis.enabled=false to use it" }}
{{- end }}
{{- $store := (merge (dict) .Values.gateway.config .Values.config).VLMPRESS_STORE | default "" }}
{{- if and (eq $store "s3") (not .Values.s3.bucket) }}
{{- fail "config.VLMPRESS_STORE=s3 needs s3.bucket" }}
{{- end }}
{{- if and .Values.s3.bucket (ne $store "s3") }}
{{- fail "s3.bucket is set: set config.VLMPRESS_STORE=s3 to keep bitstreams there" }}
{{- end }}
{{- if and .Values.worker.autoscaling.keda.enabled .Values.worker.autoscaling.hpa.enabled }}
{{- fail "worker.autoscaling: enable either keda or hpa, not both" }}
{{- end }}
{{- if and .Values.worker.autoscaling.keda.enabled (not .Values.redis.enabled) (not .Values.worker.autoscaling.keda.redis.address) }}
{{- fail "worker.autoscaling.keda.redis.address (host:port) is required with an external Redis" }}
{{- end }}
{{- end }}
