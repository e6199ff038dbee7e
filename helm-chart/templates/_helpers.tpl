{{/*
The name of the namespaced objects. It defaults to "fluxd" rather than a
release-derived name because the Service name appears in the artifact URLs fluxd
writes to status, and manifests/install.yaml names them so.
*/}}
{{- define "fluxd.fullname" -}}
{{- default .Chart.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A cluster-scoped object's name: it ends in the namespace (as Flux's
cluster-reconciler-flux-system), so installs in two namespaces keep their own RBAC.
*/}}
{{- define "fluxd.clusterName" -}}
{{- printf "%s-%s" .name .context.Release.Namespace -}}
{{- end -}}

{{- define "fluxd.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
{{- end -}}

{{/*
The labels of every object, those of manifests/install.yaml: `flux check` and
`flux logs` find Flux's components by app.kubernetes.io/part-of=flux. The instance
label is the release name; install.yaml sets it to the namespace, so a release named
as its namespace (flux-system) renders the same objects. Helm's own labels
(helm.sh/chart, app.kubernetes.io/managed-by) are left out for that reason: Helm
tracks its objects by its meta.helm.sh annotations, not by labels.
*/}}
{{- define "fluxd.labels" -}}
{{ include "fluxd.selectorLabels" . }}
app.kubernetes.io/part-of: flux
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fluxd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fluxd.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
