{{/* Chart name, possibly overridden. */}}
{{- define "framefleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources. */}}
{{- define "framefleet.fullname" -}}
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

{{- define "framefleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "framefleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: framefleet
{{- end }}

{{- define "framefleet.operatorSelector" -}}
app.kubernetes.io/name: {{ include "framefleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "framefleet.operatorImage" -}}
{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "framefleet.workerImage" -}}
{{ .Values.workers.image.repository }}:{{ .Values.workers.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Namespaces that get the worker ServiceAccount and Role. */}}
{{- define "framefleet.workerNamespaces" -}}
{{- $ns := .Values.workers.namespaces | default (list .Release.Namespace) }}
{{- toJson $ns }}
{{- end }}

{{/* The operator's arguments, built in one place. Its configuration arrives in FRAMEFLEET_CONFIG. */}}
{{- define "framefleet.operatorArgs" -}}
- operator
{{- end }}

{{/* The operator's configuration file (src/api/operatorconfig.ts is its schema). */}}
{{- define "framefleet.operatorConfig" -}}
gpuClasses: {{ toJson .Values.gpuClasses }}
workerImage: {{ include "framefleet.workerImage" . | quote }}
workerServiceAccount: framefleet-worker
watchNamespaces: {{ toJson .Values.operator.watchNamespaces }}
leaderElection:
  enabled: {{ .Values.operator.leaderElection.enabled }}
  leaseName: {{ include "framefleet.fullname" . }}-leader
  namespace: {{ .Release.Namespace }}
  leaseDurationSeconds: {{ .Values.operator.leaderElection.leaseDurationSeconds }}
  renewDeadlineSeconds: {{ .Values.operator.leaderElection.renewDeadlineSeconds }}
  retryPeriodSeconds: {{ .Values.operator.leaderElection.retryPeriodSeconds }}
autoscaler:
  enabled: {{ .Values.autoscaler.enabled }}
  noCapacityFallbackSeconds: {{ .Values.autoscaler.noCapacityFallbackSeconds }}
workerLeaseSeconds: {{ .Values.operator.workerLeaseSeconds }}
metricsPort: {{ .Values.metrics.port }}
healthPort: {{ .Values.metrics.healthPort }}
{{- end }}
