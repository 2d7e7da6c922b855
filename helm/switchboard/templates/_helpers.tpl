{{/*
Names and labels.
*/}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.fullname" -}}
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

{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the workload (Deployment, Service, HPA, PDB) running one target.
Monolithic mode: <fullname>; microservices mode: <fullname>-<target>.
Usage: include "switchboard.workloadName" (dict "root" $ "target" "tenancy")
*/}}
{{- define "switchboard.workloadName" -}}
{{- if eq .target "all" }}
{{- include "switchboard.fullname" .root }}
{{- else }}
{{- printf "%s-%s" (include "switchboard.fullname" .root) .target | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Labels of one workload's objects. Usage: as switchboard.workloadName. */}}
{{- define "switchboard.workloadLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{- define "switchboard.workloadSelectorLabels" -}}
{{ include "switchboard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .target }}
{{- end }}

{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "switchboard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "switchboard.configMapName" -}}
{{- printf "%s-config" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "switchboard.channelsConfigMapName" -}}
{{- printf "%s-channels" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* True (non-empty) when a channels file is configured. */}}
{{- define "switchboard.hasChannelsFile" -}}
{{- if or .Values.channelsFile.inline .Values.channelsFile.existingSecret }}true{{- end }}
{{- end }}

{{/*
Enabled components of microservices mode, each merged over componentDefaults, as YAML:
a map target → values. Usage: include "switchboard.enabledComponents" . | fromYaml
*/}}
{{- define "switchboard.enabledComponents" -}}
{{- $out := dict }}
{{- range $target, $c := .Values.components }}
{{- if $c.enabled }}
{{- $_ := set $out $target (mergeOverwrite (deepCopy $.Values.componentDefaults) (deepCopy $c)) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Workloads to render for the current mode, as YAML: target → values
(monolithic: {all: .Values.monolithic}).
*/}}
{{- define "switchboard.workloads" -}}
{{- if eq .Values.mode "monolithic" }}
{{- $m := deepCopy .Values.monolithic }}
{{- $_ := set $m "mountChannelsFile" true }}
{{- $_ := set $m "publicPaths" .Values.ingress.paths }}
{{- toYaml (dict "all" $m) }}
{{- else }}
{{- include "switchboard.enabledComponents" . }}
{{- end }}
{{- end }}

{{/* Endpoint for component-to-component gRPC calls. */}}
{{- define "switchboard.grpcClientEndpoint" -}}
{{- if .Values.grpcClient.endpoint }}
{{- .Values.grpcClient.endpoint }}
{{- else if eq .Values.mode "monolithic" }}
{{- printf "http://127.0.0.1:%v" .Values.ports.grpc }}
{{- else }}
{{- printf "http://%s:%v" (include "switchboard.workloadName" (dict "root" . "target" "tenancy")) .Values.ports.grpc }}
{{- end }}
{{- end }}

{{/* A secretKeyRef env entry as a dict. Usage: include … (dict "root" $ "name" "DATABASE_URL" "ref" .Values.secrets.databaseUrl) | fromYaml */}}
{{- define "switchboard.secretEnvEntry" -}}
{{- $ref := dict "name" (default .root.Values.secrets.name .ref.name) "key" .ref.key "optional" .ref.optional }}
{{- toYaml (dict "name" .name "valueFrom" (dict "secretKeyRef" $ref)) }}
{{- end }}

{{/*
The env list of a container, without duplicate names (Helm 4 applies server-side, which rejects
duplicates). Order: valueFrom entries (so that values can refer to them as $(NAME)), then plain
values sorted by name, then .Values.extraEnv. On a name clash the user wins: a workload's `env` over
the global `env` over the chart's plain values and valueFrom entries; `extraEnv` over everything.
Usage: include "switchboard.env" (dict "root" $ "plain" <name → value> "valueFrom" <list of entries> "env" <user map>)
*/}}
{{- define "switchboard.env" -}}
{{- $extraNames := dict }}
{{- range .root.Values.extraEnv }}
{{- $_ := set $extraNames .name true }}
{{- end }}
{{- $plain := merge (deepCopy (.env | default dict)) .plain }}
{{- $out := list }}
{{- range .valueFrom }}
{{- if not (or (hasKey $plain .name) (hasKey $extraNames .name)) }}
{{- $out = append $out . }}
{{- end }}
{{- end }}
{{- range $k := keys $plain | sortAlpha }}
{{- if not (hasKey $extraNames $k) }}
{{- $out = append $out (dict "name" $k "value" (index $plain $k | toString)) }}
{{- end }}
{{- end }}
{{- $out = concat $out .root.Values.extraEnv }}
{{- toYaml $out }}
{{- end }}

{{/* Plain env shared by the workloads and the migration job. */}}
{{- define "switchboard.commonPlainEnv" -}}
{{- $e := dict "SWITCHBOARD_LOG_FORMAT" .Values.logFormat "RUST_LOG" .Values.logLevel }}
{{- if .Values.otel.endpoint }}
{{- $_ := set $e "OTEL_EXPORTER_OTLP_ENDPOINT" .Values.otel.endpoint }}
{{- $_ := set $e "OTEL_SERVICE_NAME" .Values.otel.serviceName }}
{{- end }}
{{- toYaml $e }}
{{- end }}

{{/*
Pod template of one workload.
Usage: include "switchboard.podTemplate" (dict "root" $ "target" "all" "w" $values)
*/}}
{{/* "true" when the target runs e-mail ingress, which listens for SMTP too. */}}
{{- define "switchboard.servesSmtp" -}}
{{- if has .target (list "all" "ingress" "ingress-email") }}true{{ end }}
{{- end }}

{{- define "switchboard.podTemplate" -}}
{{- $root := .root }}
{{- $w := .w }}
{{- $V := $root.Values }}
{{- $mountChannels := and $w.mountChannelsFile (include "switchboard.hasChannelsFile" $root) }}
{{- $valueFrom := list
  (include "switchboard.secretEnvEntry" (dict "root" $root "name" "DATABASE_URL" "ref" $V.secrets.databaseUrl) | fromYaml)
  (include "switchboard.secretEnvEntry" (dict "root" $root "name" "AMQP_URL" "ref" $V.secrets.amqpUrl) | fromYaml)
  (include "switchboard.secretEnvEntry" (dict "root" $root "name" "SWITCHBOARD_BOOTSTRAP_TOKEN" "ref" $V.secrets.bootstrapToken) | fromYaml)
  (include "switchboard.secretEnvEntry" (dict "root" $root "name" "SWITCHBOARD_INTERNAL_TOKEN" "ref" $V.secrets.internalToken) | fromYaml)
  (dict "name" "POD_NAME" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.name")))
  (dict "name" "POD_NAMESPACE" "valueFrom" (dict "fieldRef" (dict "fieldPath" "metadata.namespace"))) }}
{{- $plain := include "switchboard.commonPlainEnv" $root | fromYaml }}
{{- $_ := set $plain "SWITCHBOARD_HTTP_ADDR" (printf "0.0.0.0:%v" $V.ports.http) }}
{{- $_ := set $plain "SWITCHBOARD_GRPC_ADDR" (printf "0.0.0.0:%v" $V.ports.grpc) }}
{{- $_ := set $plain "SWITCHBOARD_ADMIN_ADDR" (printf "0.0.0.0:%v" $V.ports.admin) }}
{{- $_ := set $plain "SWITCHBOARD_SMTP_ADDR" (printf "0.0.0.0:%v" $V.ports.smtp) }}
{{- $_ := set $plain "SWITCHBOARD__GRPC_CLIENT__ENDPOINT" (include "switchboard.grpcClientEndpoint" $root) }}
{{- if and (eq .target "delivery") (ne $V.mode "monolithic") }}
{{- /* Delivery reads contacts and routing; in microservices mode they answer in their own pods. */}}
{{- $_ := set $plain "SWITCHBOARD__DELIVERY__CONTACTS_ENDPOINT" (printf "http://%s:%v" (include "switchboard.workloadName" (dict "root" $root "target" "contacts")) $V.ports.grpc) }}
{{- $_ := set $plain "SWITCHBOARD__DELIVERY__ROUTING_ENDPOINT" (printf "http://%s:%v" (include "switchboard.workloadName" (dict "root" $root "target" "routing")) $V.ports.grpc) }}
{{- /* Web chat replies go to the pods serving web chat: ingress-webchat when enabled, else ingress. */}}
{{- $webchat := ternary "ingress-webchat" "ingress" (index $V.components "ingress-webchat").enabled }}
{{- $_ := set $plain "SWITCHBOARD__DELIVERY__WEBCHAT_ENDPOINT" (printf "http://%s:%v" (include "switchboard.workloadName" (dict "root" $root "target" $webchat)) $V.ports.http) }}
{{- end }}
{{- $_ := set $plain "SWITCHBOARD__SHUTDOWN__DRAIN_DELAY" $V.shutdown.drainDelay }}
{{- $_ := set $plain "SWITCHBOARD__SHUTDOWN__GRACE_PERIOD" $V.shutdown.gracePeriod }}
{{- if $V.migrations.enabled }}
{{- $_ := set $plain "SWITCHBOARD__DATABASE__MIGRATE_ON_START" "false" }}
{{- end }}
{{- if $mountChannels }}
{{- $_ := set $plain "SWITCHBOARD_CHANNELS_FILE" "/etc/switchboard/channels/channels.yaml" }}
{{- end }}
{{- $_ := set $plain "OTEL_RESOURCE_ATTRIBUTES" (printf "k8s.namespace.name=$(POD_NAMESPACE),k8s.pod.name=$(POD_NAME),switchboard.target=%s" .target) -}}
metadata:
  labels:
    {{- include "switchboard.workloadSelectorLabels" . | nindent 4 }}
    {{- with $V.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ $V.config | sha256sum }}
    {{- if and $mountChannels $V.channelsFile.inline }}
    checksum/channels: {{ $V.channelsFile.inline | sha256sum }}
    {{- end }}
    {{- with $V.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "switchboard.serviceAccountName" $root }}
  automountServiceAccountToken: false
  {{- with $V.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $V.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  terminationGracePeriodSeconds: {{ $V.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml $V.podSecurityContext | nindent 4 }}
  containers:
    - name: switchboard
      image: {{ include "switchboard.image" $root | quote }}
      imagePullPolicy: {{ $V.image.pullPolicy }}
      args:
        - --target={{ .target }}
        - --config=/etc/switchboard/config.toml
        {{- range $w.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ $V.ports.http }}
          protocol: TCP
        - name: grpc
          containerPort: {{ $V.ports.grpc }}
          protocol: TCP
        - name: admin
          containerPort: {{ $V.ports.admin }}
          protocol: TCP
        {{- if include "switchboard.servesSmtp" . }}
        - name: smtp
          containerPort: {{ $V.ports.smtp }}
          protocol: TCP
        {{- end }}
      env:
        {{- include "switchboard.env" (dict "root" $root "plain" $plain "valueFrom" $valueFrom "env" (merge (deepCopy ($w.env | default dict)) $V.env)) | nindent 8 }}
      {{- with $V.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /livez
          port: admin
        {{- toYaml $V.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /livez
          port: admin
        {{- toYaml $V.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: admin
        {{- toYaml $V.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml $w.resources | nindent 8 }}
      securityContext:
        {{- toYaml $V.securityContext | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/switchboard/config.toml
          subPath: config.toml
          readOnly: true
        {{- if $mountChannels }}
        - name: channels
          mountPath: /etc/switchboard/channels
          readOnly: true
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "switchboard.configMapName" $root }}
    {{- if $mountChannels }}
    - name: channels
      {{- if $V.channelsFile.existingSecret }}
      secret:
        secretName: {{ $V.channelsFile.existingSecret }}
        items:
          - key: {{ $V.channelsFile.key }}
            path: channels.yaml
      {{- else }}
      configMap:
        name: {{ include "switchboard.channelsConfigMapName" $root }}
      {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- with $V.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $V.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $V.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $V.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Checks values the schema cannot express. */}}
{{- define "switchboard.validate" -}}
{{- if and (eq .Values.mode "microservices") (not (include "switchboard.enabledComponents" . | fromYaml)) }}
{{- fail "mode=microservices needs at least one enabled entry in components:" }}
{{- end }}
{{- if and .Values.channelsFile.inline .Values.channelsFile.existingSecret }}
{{- fail "channelsFile: set either inline or existingSecret, not both" }}
{{- end }}
{{- end }}
