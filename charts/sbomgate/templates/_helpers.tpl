{{/* The chart's name, or nameOverride. */}}
{{- define "sbomgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: fullnameOverride, or <release>-<chart> unless one contains the other. */}}
{{- define "sbomgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sbomgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sbomgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sbomgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sbomgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sbomgate
{{- end -}}

{{- define "sbomgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sbomgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sbomgate.image" -}}
{{- $repository := .Values.image.repository -}}
{{- if .Values.image.registry -}}
{{- /* A mirror: its host replaces the repository's registry host (the first part, when it
  names a host: it has a dot or a port, or is localhost). */ -}}
{{- $parts := splitList "/" $repository -}}
{{- $first := first $parts -}}
{{- if and (gt (len $parts) 1) (or (contains "." $first) (contains ":" $first) (eq "localhost" $first)) -}}
{{- $repository = join "/" (rest $parts) -}}
{{- end -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" .Values.image.registry) $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the credentials of trusted source number N are mounted. */}}
{{- define "sbomgate.credentialsDir" -}}
{{- printf "/etc/sbomgate/credentials/%d" . -}}
{{- end -}}

{{/* The webhook's Secret holding tls.crt, tls.key and ca.crt. */}}
{{- define "sbomgate.tlsSecretName" -}}
{{- printf "%s-tls" (include "sbomgate.fullname" .) -}}
{{- end -}}

{{/* "true" when cert-manager issues the serving certificate. */}}
{{- define "sbomgate.useCertManager" -}}
{{- if or .Values.certManager.enabled (and .Values.certManager.autoDetect (.Capabilities.APIVersions.Has "cert-manager.io/v1")) -}}
true
{{- end -}}
{{- end -}}

{{/* Namespaces never gated: kube-system, the release namespace, config.exemptNamespaces. */}}
{{- define "sbomgate.exemptNamespaces" -}}
{{- concat (list "kube-system" .Release.Namespace) .Values.config.exemptNamespaces | uniq | toJson -}}
{{- end -}}

{{/*
"true" when the chart should render the PolicyReport CRD named by .crd: installCRDs is on and
either the API is absent, or the CRD exists and belongs to this release (so that an upgrade does
not drop the CRD the first install created, which would make the API "present").
*/}}
{{- define "sbomgate.renderPolicyReportCRD" -}}
{{- $root := .root -}}
{{- if $root.Values.policyReports.installCRDs -}}
{{- if not ($root.Capabilities.APIVersions.Has "wgpolicyk8s.io/v1alpha2") -}}
true
{{- else -}}
{{- $existing := lookup "apiextensions.k8s.io/v1" "CustomResourceDefinition" "" .crd -}}
{{- $annotations := dig "metadata" "annotations" (dict) $existing -}}
{{- if and (eq (get $annotations "meta.helm.sh/release-name") $root.Release.Name) (eq (get $annotations "meta.helm.sh/release-namespace") $root.Release.Namespace) -}}
true
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A webhook clientConfig: the Service, a path, and the caBundle when the chart made the CA. */}}
{{/* What both webhooks are sent: Pods and everything that makes Pods, and kubectl debug. */}}
{{- define "sbomgate.workloadRules" -}}
- apiGroups: [""]
  apiVersions: [v1]
  resources: [pods, pods/ephemeralcontainers, replicationcontrollers]
  operations: [CREATE, UPDATE]
  scope: Namespaced
- apiGroups: [apps]
  apiVersions: [v1]
  resources: [deployments, replicasets, statefulsets, daemonsets]
  operations: [CREATE, UPDATE]
  scope: Namespaced
- apiGroups: [batch]
  apiVersions: [v1]
  resources: [jobs, cronjobs]
  operations: [CREATE, UPDATE]
  scope: Namespaced
{{- end -}}

{{- define "sbomgate.webhookClientConfig" -}}
service:
  name: {{ .fullname }}
  namespace: {{ .namespace }}
  path: {{ .path }}
  port: {{ .port }}
{{- with .caBundle }}
caBundle: {{ . }}
{{- end }}
{{- end -}}

{{/* The webhooks' failurePolicy: as set, else Fail only once config.mode is Enforce. */}}
{{- define "sbomgate.failurePolicy" -}}
{{- .Values.webhook.failurePolicy | default (ternary "Fail" "Ignore" (eq .Values.config.mode "Enforce")) -}}
{{- end -}}
