{{/* Names and labels shared by every object of the release. */}}
{{- define "tidegate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tidegate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "tidegate.labels" -}}
{{ include "tidegate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tidegate.controllerSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ingress-controller
{{- end -}}

{{- define "tidegate.controllerLabels" -}}
{{ include "tidegate.controllerSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The ConfigMap the gateways read: the controller's (routes from Ingresses) when it is
     on, else the chart's. */}}
{{- define "tidegate.configName" -}}
{{- if .Values.controller.enabled -}}
{{- include "tidegate.fullname" . }}-routes
{{- else -}}
{{- include "tidegate.fullname" . }}
{{- end -}}
{{- end -}}

{{- define "tidegate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tidegate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Kubernetes may kill the pod after this: preStop, the gateway's grace period and its
     shutdown timeout, and 5 s of margin. */}}
{{- define "tidegate.terminationGrace" -}}
{{- add .Values.drain.preStopSeconds .Values.drain.graceSeconds .Values.drain.shutdownSeconds 5 -}}
{{- end -}}

{{/* The whole config file of the gateways: [server] and [admin] from the values, the rest
     from the `config` value. */}}
{{- define "tidegate.configText" -}}
# Written by the Tidegate Helm chart: [server] and [admin] from its values, the rest from
# its `config` value.
[server]
listen = ["0.0.0.0:{{ .Values.ports.http }}"]
{{- if .Values.service.https }}
tls_listen = ["0.0.0.0:{{ .Values.ports.https }}"]
{{- end }}
threads = {{ .Values.threads }}
pid_file = "/run/tidegate/tidegate.pid"
upgrade_sock = "/run/tidegate/upgrade.sock"
grace_period_seconds = {{ .Values.drain.graceSeconds }}
graceful_shutdown_timeout_seconds = {{ .Values.drain.shutdownSeconds }}
{{- if .Values.proxyProtocol }}
proxy_protocol = ["0.0.0.0:{{ .Values.ports.http }}"]
{{- end }}
{{- with .Values.trustedProxies }}
trusted_proxies = [{{ range $i, $p := . }}{{ if $i }}, {{ end }}{{ $p | quote }}{{ end }}]
{{- end }}

[admin]
listen = "0.0.0.0:{{ .Values.ports.admin }}"
{{- if and (or .Values.discovery.namespaces .Values.controller.enabled) (not (regexMatch "(?m)^\\[kubernetes\\]" .Values.config)) }}

# The API server in the cluster (the pod's service account){{ with .Values.discovery.namespaces }}: pod discovery
# (Roles in {{ join ", " . }}){{ end }}{{ if .Values.controller.enabled }}; the controller's config
# Secret, followed through the API so a change does not wait for the kubelet's copy{{ end }}.
[kubernetes]
cache_dir = "/var/cache/tidegate/kubernetes"
{{- if .Values.controller.enabled }}
config_secret = "{{ .Release.Namespace }}/{{ include "tidegate.fullname" . }}-routes"
{{- end }}
{{- end }}

{{ .Values.config }}
{{- end -}}
