{{/*
The two serving components. Each entry: the values key, the component label, the API_MODE.
*/}}
{{- define "flux-catalog.components" -}}
- key: readOnly
  component: read-only
  apiMode: read-only
  databaseRole: read
- key: crud
  component: crud
  apiMode: crud
  databaseRole: write
{{- end }}
