{{/* Chart name (or nameOverride), truncated to the 63 characters a label value allows. */}}
{{- define "image-mirror-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* fullnameOverride, or the release-qualified name (the release name alone when it already contains the name). */}}
{{- define "image-mirror-controller.fullname" -}}
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

{{/* The metrics Service: a Service name is a DNS label (63 characters), "-metrics" included. */}}
{{- define "image-mirror-controller.metricsService" -}}
{{- printf "%s-metrics" (include "image-mirror-controller.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "image-mirror-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change after install: the Deployment's selector. */}}
{{- define "image-mirror-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "image-mirror-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "image-mirror-controller.ownLabels" -}}
helm.sh/chart: {{ include "image-mirror-controller.chart" . }}
{{ include "image-mirror-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: image-mirror-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of every object: the chart's own, then commonLabels. A key set twice is written once (a
YAML map with a repeated key is refused), and the chart's own win: the selectors rely on them.
*/}}
{{- define "image-mirror-controller.labels" -}}
{{- include "image-mirror-controller.labelsWith" (dict "ctx" . "extra" dict) }}
{{- end }}

{{/* The labels above plus (dict "ctx" . "extra" <map>): the extras win over commonLabels only. */}}
{{- define "image-mirror-controller.labelsWith" -}}
{{- $own := include "image-mirror-controller.ownLabels" .ctx | fromYaml }}
{{- toYaml (merge $own (.extra | default dict) (.ctx.Values.commonLabels | default dict)) }}
{{- end }}

{{- define "image-mirror-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "image-mirror-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "image-mirror-controller.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The API calls the controller makes on ImageMirrors, Secrets and Events (src/controller/rbac.ts). */}}
{{- define "image-mirror-controller.rules" -}}
- apiGroups: ["imagemirror.dev"]
  resources: ["imagemirrors"]
  verbs: ["list", "watch"]
- apiGroups: ["imagemirror.dev"]
  resources: ["imagemirrors/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
