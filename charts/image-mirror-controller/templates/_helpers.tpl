{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "image-mirror-controller.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name; the release name alone when it already contains the chart name. */}}
{{- define "image-mirror-controller.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "image-mirror-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that never change after install: the Deployment's selector. */}}
{{- define "image-mirror-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "image-mirror-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "image-mirror-controller.labels" -}}
helm.sh/chart: {{ include "image-mirror-controller.chart" . }}
{{ include "image-mirror-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: image-mirror-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
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
