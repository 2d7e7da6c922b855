{{/*
The objects of one workload (one target): Deployment, Service, HPA, PDB.
Used once by monolithic/*.yaml (target "all") and ranged over by component/components.yaml.
Every helper takes (dict "root" $ "target" <name> "w" <workload values>).
*/}}

{{- define "switchboard.deployment" -}}
{{- $w := .w }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "switchboard.workloadName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.workloadLabels" . | nindent 4 }}
spec:
  {{- if not $w.hpa.enabled }}
  replicas: {{ $w.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  selector:
    matchLabels:
      {{- include "switchboard.workloadSelectorLabels" . | nindent 6 }}
  template:
    {{- include "switchboard.podTemplate" . | nindent 4 }}
{{- end }}

{{- define "switchboard.service" -}}
{{- $V := .root.Values }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "switchboard.workloadName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.workloadLabels" . | nindent 4 }}
  {{- with $V.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: ClusterIP
  selector:
    {{- include "switchboard.workloadSelectorLabels" . | nindent 4 }}
  ports:
    - name: http
      port: {{ $V.ports.http }}
      targetPort: http
      protocol: TCP
      appProtocol: http
    - name: grpc
      port: {{ $V.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: kubernetes.io/h2c
    - name: admin
      port: {{ $V.ports.admin }}
      targetPort: admin
      protocol: TCP
      appProtocol: http
    {{- if include "switchboard.servesSmtp" . }}
    - name: smtp
      port: {{ $V.ports.smtp }}
      targetPort: smtp
      protocol: TCP
    {{- end }}
{{- end }}

{{- define "switchboard.hpa" -}}
{{- $hpa := .w.hpa }}
{{- if $hpa.enabled }}
{{- if not (or $hpa.targetCPUUtilizationPercentage $hpa.targetMemoryUtilizationPercentage) }}
{{- fail (printf "%s: hpa.enabled needs targetCPUUtilizationPercentage or targetMemoryUtilizationPercentage" .target) }}
{{- end }}
{{- if gt (int $hpa.minReplicas) (int $hpa.maxReplicas) }}
{{- fail (printf "%s: hpa.minReplicas > hpa.maxReplicas" .target) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "switchboard.workloadName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.workloadLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "switchboard.workloadName" . }}
  minReplicas: {{ $hpa.minReplicas }}
  maxReplicas: {{ $hpa.maxReplicas }}
  metrics:
    {{- with $hpa.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $hpa.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "switchboard.pdb" -}}
{{- $pdb := .w.pdb }}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "switchboard.workloadName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "switchboard.workloadLabels" . | nindent 4 }}
spec:
  {{- if ne (toString $pdb.minAvailable) "" }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- end }}
  {{- if semverCompare ">=1.27-0" .root.Capabilities.KubeVersion.Version }}
  unhealthyPodEvictionPolicy: AlwaysAllow
  {{- end }}
  selector:
    matchLabels:
      {{- include "switchboard.workloadSelectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}
