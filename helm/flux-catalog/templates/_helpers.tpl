{{/* Chart name. */}}
{{- define "flux-catalog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, or the release name when it already contains the chart name. */}}
{{- define "flux-catalog.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "flux-catalog.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "flux-catalog.labels" -}}
helm.sh/chart: {{ include "flux-catalog.chart" . }}
{{ include "flux-catalog.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flux-catalog
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "flux-catalog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flux-catalog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component's objects: (dict "root" $ "component" "read-only"). */}}
{{- define "flux-catalog.componentLabels" -}}
{{ include "flux-catalog.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels that select one component's pods: (dict "root" $ "component" "read-only"). */}}
{{- define "flux-catalog.componentSelectorLabels" -}}
{{ include "flux-catalog.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Name of a component's objects: (dict "root" $ "component" "read-only"). */}}
{{- define "flux-catalog.componentName" -}}
{{- $suffix := ternary "readonly" .component (eq .component "read-only") }}
{{- printf "%s-%s" (include "flux-catalog.fullname" .root | trunc 54 | trimSuffix "-") $suffix }}
{{- end }}

{{/* The serving pods' ServiceAccount. */}}
{{- define "flux-catalog.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flux-catalog.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The migration Job's ServiceAccount: one that exists when the hook runs. */}}
{{- define "flux-catalog.migrationServiceAccountName" -}}
{{- if .Values.migrations.serviceAccountName }}
{{- .Values.migrations.serviceAccountName }}
{{- else if or (not .Values.serviceAccount.create) (eq .Values.database.mode "cnpg") }}
{{- include "flux-catalog.serviceAccountName" . }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{/* The container image reference. */}}
{{- define "flux-catalog.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Checks the values once; every template includes it. */}}
{{- define "flux-catalog.validate" -}}
{{- $mode := .Values.database.mode }}
{{- if not (has $mode (list "external" "cnpg")) }}
{{- fail (printf "database.mode must be \"external\" or \"cnpg\", got %q" $mode) }}
{{- end }}
{{- if and (not .Values.readOnly.enabled) (not .Values.crud.enabled) }}
{{- fail "enable readOnly, crud or both" }}
{{- end }}
{{- if and (not .Values.auth.readToken) (not .Values.auth.existingSecret) }}
{{- fail "set auth.existingSecret (a Secret with the read token) or auth.readToken" }}
{{- end }}
{{- if and .Values.crud.enabled (not .Values.auth.writeToken) (not .Values.auth.existingSecret) }}
{{- fail "set auth.existingSecret (a Secret with the write token) or auth.writeToken" }}
{{- end }}
{{- if eq $mode "external" }}
{{- $ext := .Values.database.external }}
{{- if and (not $ext.url) (not $ext.existingSecret) }}
{{- fail "database.mode=external: set database.external.existingSecret (a Secret with the URL) or database.external.url" }}
{{- end }}
{{- if and $ext.tls.mode (not (has $ext.tls.mode (list "disable" "prefer" "require" "verify-ca" "verify-full"))) }}
{{- fail (printf "database.external.tls.mode must be disable, prefer, require, verify-ca or verify-full, got %q" $ext.tls.mode) }}
{{- end }}
{{- if and (has $ext.tls.mode (list "verify-ca" "verify-full")) (not $ext.tls.caSecret) }}
{{- fail (printf "database.external.tls.mode=%s needs database.external.tls.caSecret (the CA that signed the server's certificate)" $ext.tls.mode) }}
{{- end }}
{{- else }}
{{- $cnpg := .Values.database.cnpg }}
{{- if not (has $cnpg.readOnlyService (list "ro" "r" "rw")) }}
{{- fail (printf "database.cnpg.readOnlyService must be ro, r or rw, got %q" $cnpg.readOnlyService) }}
{{- end }}
{{- if and .Values.readOnly.enabled (eq $cnpg.readOnlyService "ro") (lt (int $cnpg.instances) 2) }}
{{- fail "database.cnpg.readOnlyService=ro needs database.cnpg.instances >= 2 (the -ro service has only hot standbys); use readOnlyService r or rw with one instance" }}
{{- end }}
{{- if or $.Values.database.external.url $.Values.database.external.readOnlyUrl }}
{{- fail "database.external.url / readOnlyUrl are set but database.mode is cnpg: the options are exclusive" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the CloudNativePG Cluster. */}}
{{- define "flux-catalog.cnpgClusterName" -}}
{{- default (printf "%s-db" (include "flux-catalog.fullname" . | trunc 45 | trimSuffix "-")) .Values.database.cnpg.clusterName }}
{{- end }}

{{/* Secret created from auth.readToken / auth.writeToken. */}}
{{- define "flux-catalog.authSecretName" -}}
{{- printf "%s-auth" (include "flux-catalog.fullname" .) }}
{{- end }}

{{/* Secret created from database.external.url / readOnlyUrl. */}}
{{- define "flux-catalog.databaseSecretName" -}}
{{- printf "%s-database" (include "flux-catalog.fullname" .) }}
{{- end }}

{{/* Where the read token is: (dict "name" ... "key" ...) as YAML. */}}
{{- define "flux-catalog.readTokenRef" -}}
{{- if .Values.auth.readToken -}}
name: {{ include "flux-catalog.authSecretName" . }}
key: auth-token
{{- else -}}
name: {{ .Values.auth.existingSecret }}
key: {{ .Values.auth.readTokenKey }}
{{- end }}
{{- end }}

{{/* Where the write token is. */}}
{{- define "flux-catalog.writeTokenRef" -}}
{{- if .Values.auth.writeToken -}}
name: {{ include "flux-catalog.authSecretName" . }}
key: crud-auth-token
{{- else -}}
name: {{ .Values.auth.existingSecret }}
key: {{ .Values.auth.writeTokenKey }}
{{- end }}
{{- end }}

{{/* Where an external database URL is: (dict "root" $ "role" "write"|"read"). */}}
{{- define "flux-catalog.externalUrlRef" -}}
{{- $ext := .root.Values.database.external }}
{{- if and (eq .role "read") $ext.readOnlyUrl -}}
name: {{ include "flux-catalog.databaseSecretName" .root }}
key: database-url-read-only
{{- else if and (eq .role "read") (or $ext.readOnlyExistingSecret $ext.readOnlyUrlKey) -}}
name: {{ default $ext.existingSecret $ext.readOnlyExistingSecret }}
key: {{ default $ext.urlKey $ext.readOnlyUrlKey }}
{{- else if $ext.url -}}
name: {{ include "flux-catalog.databaseSecretName" .root }}
key: database-url
{{- else -}}
name: {{ $ext.existingSecret }}
key: {{ $ext.urlKey }}
{{- end }}
{{- end }}

{{/* Directory where the database CA certificate is mounted. */}}
{{- define "flux-catalog.caDir" -}}
/etc/flux-catalog/database-ca
{{- end }}

{{/*
Database environment of a container: (dict "root" $ "role" "write"|"read").
"write" is the crud Deployment and the migration Job, "read" the read-only Deployment.
Secret values only ever come from secretKeyRef; in CloudNativePG mode DATABASE_URL is composed
from the generated credentials with Kubernetes $(VAR) expansion.
*/}}
{{- define "flux-catalog.databaseEnv" -}}
{{- $root := .root }}
{{- if eq $root.Values.database.mode "cnpg" }}
{{- $cnpg := $root.Values.database.cnpg }}
{{- $cluster := include "flux-catalog.cnpgClusterName" $root }}
{{- $service := ternary "rw" $cnpg.readOnlyService (eq .role "write") }}
- name: DATABASE_USER
  valueFrom:
    secretKeyRef:
      name: {{ $cluster }}-app
      key: username
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $cluster }}-app
      key: password
- name: DATABASE_URL
  value: {{ printf "host=%s-%s.%s.svc port=5432 dbname=%s user=$(DATABASE_USER) password='$(DATABASE_PASSWORD)'" $cluster $service $root.Release.Namespace $cnpg.database | quote }}
- name: FLUX_CATALOG_DATABASE__SSL_MODE
  value: verify-full
- name: FLUX_CATALOG_DATABASE__SSL_ROOT_CERT
  value: {{ include "flux-catalog.caDir" $root }}/ca.crt
{{- else }}
{{- $tls := $root.Values.database.external.tls }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "flux-catalog.externalUrlRef" (dict "root" $root "role" .role) | nindent 6 }}
{{- if $tls.mode }}
- name: FLUX_CATALOG_DATABASE__SSL_MODE
  value: {{ $tls.mode | quote }}
{{- end }}
{{- if $tls.caSecret }}
- name: FLUX_CATALOG_DATABASE__SSL_ROOT_CERT
  value: {{ include "flux-catalog.caDir" $root }}/ca.crt
{{- end }}
{{- end }}
{{- end }}

{{/* Whether a database CA is mounted. */}}
{{- define "flux-catalog.hasCa" -}}
{{- if or (eq .Values.database.mode "cnpg") .Values.database.external.tls.caSecret }}true{{ end }}
{{- end }}

{{/* Volumes of every pod: a writable /tmp and the database CA. */}}
{{- define "flux-catalog.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if include "flux-catalog.hasCa" . }}
- name: database-ca
  secret:
    {{- if eq .Values.database.mode "cnpg" }}
    secretName: {{ include "flux-catalog.cnpgClusterName" . }}-ca
    items:
      # Only the certificate: the Secret also holds the CA's private key.
      - key: ca.crt
        path: ca.crt
    {{- else }}
    secretName: {{ .Values.database.external.tls.caSecret }}
    items:
      - key: {{ .Values.database.external.tls.caKey }}
        path: ca.crt
    {{- end }}
    defaultMode: 0444
{{- end }}
{{- end }}

{{/* Volume mounts matching flux-catalog.volumes. */}}
{{- define "flux-catalog.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "flux-catalog.hasCa" . }}
- name: database-ca
  mountPath: {{ include "flux-catalog.caDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: longer than the pre-stop sleep plus the shutdown timeout. */}}
{{- define "flux-catalog.terminationGracePeriodSeconds" -}}
{{- add (int .Values.server.preStopSleepSeconds) (int .Values.server.shutdownTimeoutSeconds) (int .Values.server.terminationExtraSeconds) }}
{{- end }}
