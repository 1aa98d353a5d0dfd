{{/* Namespace of every namespaced object. */}}
{{- define "secureaudit.namespace" -}}
{{- default .Release.Namespace .Values.namespace.name -}}
{{- end -}}

{{/* The labels Helm adds to every object's metadata (not to selectors or pod templates). */}}
{{- define "secureaudit.chartLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "secureaudit.tag" . | quote }}
{{- end -}}

{{/* The images' tag: image.tag, else the chart's appVersion; never latest. */}}
{{- define "secureaudit.tag" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if or (eq $tag "latest") (eq $tag "") -}}
{{- fail "image.tag: give a version (the images' tag from make images), not latest" -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{/*
The five services: name, values key, API port (mTLS) and health port (plaintext gRPC health for
the kubelet's probes).
*/}}
{{- define "secureaudit.services" -}}
- {name: orchestrator, key: orchestrator, port: 8440, health: 9440}
- {name: rbac-agent, key: rbacAgent, port: 8441, health: 9441}
- {name: entra-agent, key: entraAgent, port: 8442, health: 9442}
- {name: risk-agent, key: riskAgent, port: 8443, health: 9443}
- {name: report-agent, key: reportAgent, port: 8444, health: 9444}
{{- end -}}

{{/* DNS egress, for every pod that dials. */}}
{{- define "secureaudit.dnsEgress" -}}
- to: [{namespaceSelector: {}, podSelector: {matchLabels: {k8s-app: kube-dns}}}]
  ports: [{port: 53, protocol: UDP}, {port: 53, protocol: TCP}]
{{- end -}}
