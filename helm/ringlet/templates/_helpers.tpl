{{/*
Names, labels and the pieces every Ringlet pod shares. Object names are "<fullname>-<component>"; every object
carries the app.kubernetes.io labels from here, and selectors use name, instance and component only.
*/}}

{{- define "ringlet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-ringlet", or the release's name when it already holds the chart's; cut to leave room for suffixes. */}}
{{- define "ringlet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ringlet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A component's object name: (dict "root" $ "component" "worker"). */}}
{{- define "ringlet.componentName" -}}
{{- printf "%s-%s" (include "ringlet.fullname" .root) .component }}
{{- end }}

{{/* Selector labels of a component: (dict "root" $ "component" "coordinator"). */}}
{{- define "ringlet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ringlet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* Every label of an object: (dict "root" $ "component" "coordinator"); component may be empty. */}}
{{- define "ringlet.labels" -}}
helm.sh/chart: {{ include "ringlet.chart" .root }}
{{ include "ringlet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: ringlet
{{- end }}

{{- define "ringlet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ringlet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Ringlet image: (dict "root" $ "override" .Values.workers.image), override optional. */}}
{{- define "ringlet.image" -}}
{{- $o := .override | default dict }}
{{- $repository := $o.repository | default .root.Values.image.repository }}
{{- $tag := $o.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{/* The Secret holding join-token, evaluator-token and nats-token. */}}
{{- define "ringlet.tokensSecret" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-tokens" (include "ringlet.fullname" .)) }}
{{- end }}

{{/* The Secret holding the job's mTLS material (ca.crt, tls.crt, tls.key). */}}
{{- define "ringlet.tlsSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-ring-tls" (include "ringlet.fullname" .)) }}
{{- end }}

{{/* DNS names: the coordinator's Service, and a worker pod's (given the pod's name, as $(POD_NAME)). */}}
{{- define "ringlet.coordinatorHost" -}}
{{- printf "%s.%s.svc.%s" (include "ringlet.componentName" (dict "root" . "component" "coordinator")) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{- define "ringlet.workerDomain" -}}
{{- printf "%s.%s.svc.%s" (include "ringlet.componentName" (dict "root" . "component" "worker")) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* NATS servers the coordinator and the evaluator connect to; empty with nats.mode none. */}}
{{- define "ringlet.natsUrl" -}}
{{- if eq .Values.nats.mode "internal" }}
{{- printf "nats://%s.%s.svc.%s:%d" (include "ringlet.componentName" (dict "root" . "component" "nats")) .Release.Namespace .Values.clusterDomain (int .Values.nats.ports.client) }}
{{- else if eq .Values.nats.mode "external" }}
{{- required "nats.external.url is required with nats.mode external" .Values.nats.external.url }}
{{- end }}
{{- end }}

{{/* Paths in every Ringlet pod: the shared claim, its datasets and runs, the training ConfigMap, the TLS files. */}}
{{- define "ringlet.sharedPath" -}}/ringlet{{- end }}
{{- define "ringlet.dataPath" -}}/ringlet/data{{- end }}
{{- define "ringlet.runsPath" -}}/ringlet/runs{{- end }}
{{- define "ringlet.configPath" -}}/etc/ringlet/training{{- end }}
{{- define "ringlet.tlsPath" -}}/etc/ringlet/tls{{- end }}
{{- define "ringlet.resultsPath" -}}/var/lib/ringlet{{- end }}

{{/* The training config the ConfigMap holds: trainingConfig with data and out set by the chart. */}}
{{- define "ringlet.trainingConfig" -}}
{{- $paths := dict "data" (printf "%s/%s" (include "ringlet.dataPath" .) .Values.dataset.name) "out" (printf "%s/%s" (include "ringlet.runsPath" .) .Values.job.id) }}
{{- mustMergeOverwrite (deepCopy .Values.trainingConfig) $paths | toPrettyJson }}
{{- end }}

{{/* The mTLS flags the coordinator and the workers pass (with tls.enabled), as args. */}}
{{- define "ringlet.tlsArgs" -}}
- --tls-ca={{ include "ringlet.tlsPath" . }}/ca.crt
- --tls-cert={{ include "ringlet.tlsPath" . }}/tls.crt
- --tls-key={{ include "ringlet.tlsPath" . }}/tls.key
{{- end }}

{{/* A token from the release's Secret as an environment variable: (dict "root" $ "name" "RINGLET_TOKEN" "key" "join-token"). */}}
{{- define "ringlet.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ringlet.tokensSecret" .root }}
      key: {{ .key }}
{{- end }}

{{/* Environment every Ringlet container has: caches under /tmp (the root filesystem is read-only). */}}
{{- define "ringlet.commonEnv" -}}
- name: HOME
  value: /tmp
- name: XDG_CACHE_HOME
  value: /tmp/.cache
{{- end }}

{{/* Volumes and mounts every Ringlet pod has: /tmp, and the shared claim (read-only where the pod only reads). */}}
{{- define "ringlet.sharedVolumes" -}}
- name: tmp
  emptyDir: {}
- name: shared
  persistentVolumeClaim:
    claimName: {{ .Values.storage.shared.existingClaim | default (printf "%s-shared" (include "ringlet.fullname" .)) }}
{{- if .Values.storage.dataClaim }}
- name: data
  persistentVolumeClaim:
    claimName: {{ .Values.storage.dataClaim }}
{{- end }}
{{- end }}

{{- define "ringlet.sharedMounts" -}}
- name: tmp
  mountPath: /tmp
- name: shared
  mountPath: {{ include "ringlet.sharedPath" .root }}
  readOnly: {{ .readOnly }}
{{- if .root.Values.storage.dataClaim }}
- name: data
  mountPath: {{ include "ringlet.dataPath" .root }}
  readOnly: {{ .readOnly }}
{{- end }}
{{- end }}

{{/* Refusals the schema cannot express. */}}
{{- define "ringlet.validate" -}}
{{- if and .Values.workers.gpu.enabled (not (has .Values.trainingConfig.backend (list "cuda" "tensorflow-gpu" "auto"))) }}
{{- fail (printf "workers.gpu.enabled needs trainingConfig.backend cuda, tensorflow-gpu or auto, not %v" (.Values.trainingConfig.backend | default "wasm")) }}
{{- end }}
{{- if gt (int .Values.coordinator.minWorkers) (int .Values.workers.replicas) }}
{{- fail (printf "coordinator.minWorkers (%d) must not exceed workers.replicas (%d)" (int .Values.coordinator.minWorkers) (int .Values.workers.replicas)) }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not .Values.tls.certManager.enabled) }}
{{- fail "tls.enabled needs tls.existingSecret or tls.certManager.enabled" }}
{{- end }}
{{- if and .Values.tls.certManager.enabled (not (.Capabilities.APIVersions.Has "cert-manager.io/v1/Certificate")) }}
{{- fail "tls.certManager.enabled: this cluster does not serve cert-manager.io/v1 Certificate (install cert-manager first)" }}
{{- end }}
{{- end }}
