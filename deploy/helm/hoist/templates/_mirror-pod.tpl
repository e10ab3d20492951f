{{/*
The mirror's pod template, shared by the node DaemonSet and the zone Deployment
(src/install/mirror.ts builds the same).
*/}}
{{- define "hoist.mirror.podTemplate" -}}
{{- $m := .Values.mirror -}}
{{- $node := eq $m.mode "node" -}}
{{- $hostPath := and $node (eq $m.node.storage.type "hostPath") -}}
{{- $peers := $m.peers.enabled -}}
{{- /* Peers reach a node mirror at its node IP: with peers it listens on every address. */ -}}
{{- $host := ternary $m.node.listenAddress "0.0.0.0" (and $node (not $peers)) -}}
{{- $metricsDir := include "hoist.mirrorMetricsSocketDir" . -}}
{{- $metricsGroup := include "hoist.mirrorMetricsSocketGroup" . -}}
{{- $sizeLimit := ternary $m.node.storage.sizeLimit $m.zone.storageSizeLimit $node -}}
metadata:
  labels:
    {{- include "hoist.labels" (list . "mirror") | nindent 4 }}
  annotations:
    {{- with $m.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    hoist.dev/config-sha256: {{ include "hoist.mirrorConfig" . | sha256sum | quote }}
spec:
  serviceAccountName: {{ include "hoist.componentName" (list . "mirror") }}
  # The API token only for peer discovery (the mirror Role: EndpointSlices).
  automountServiceAccountToken: {{ $peers }}
  enableServiceLinks: false
  {{- if $node }}
  # containerd on the node reaches the mirror on the node's loopback.
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  {{- if $metricsGroup }}
  # The group shared with the agent for the metrics socket (the mirror is non-root here).
  securityContext:
    supplementalGroups: [{{ $metricsGroup }}]
  {{- end }}
  {{- include "hoist.podScheduling" (dict "root" . "component" $m "tolerations" (ternary $m.node.tolerations $m.zone.tolerations $node) "affinity" (ternary dict $m.zone.affinity $node)) | nindent 2 }}
  {{- if not $node }}
  topologySpreadConstraints:
    {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
    - maxSkew: 1
      topologyKey: {{ . }}
      # ScheduleAnyway: a cluster without zone labels still runs the mirror.
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "hoist.selectorLabels" (list $ "mirror") | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- if $metricsGroup }}
  initContainers:
    # Gives the socket's node directory (the kubelet makes it root:root 0755) to the shared group,
    # 2770 setgid; uid 0 owns it, so no capability is needed.
    - name: metrics-socket-dir
      image: {{ include "hoist.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - node
        - -e
        - {{ include "hoist.metricsSocketDirScript" . | quote }}
        - {{ $metricsDir }}
        - {{ $metricsGroup | quote }}
      resources:
        {{- toYaml $m.resources | nindent 8 }}
      securityContext:
        {{- include "hoist.securityContext" "root" | nindent 8 }}
      volumeMounts:
        - name: metrics-socket
          mountPath: {{ $metricsDir }}
  {{- end }}
  containers:
    - name: mirror
      image: {{ include "hoist.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - mirror
        - --config
        - /etc/hoist/mirror.json
        - --listen
        - {{ printf "%s:%d" $host ($m.port | int) | quote }}
        - --storage
        - /var/lib/hoist/mirror
        {{- if $peers }}
        - --peer-service
        - {{ printf "%s/%s-peers" .Release.Namespace (include "hoist.componentName" (list . "mirror")) }}
        - --peer-token-file
        - /var/run/secrets/hoist-peers/token
        {{- end }}
        {{- if $metricsDir }}
        - --metrics-socket
        - {{ printf "%s/metrics.sock" $metricsDir }}
        {{- end }}
        {{- range $m.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      {{- if $peers }}
      # This mirror's own peer URL is http://$POD_IP:<port> (--peer-self's default).
      env:
        - name: POD_IP
          valueFrom:
            fieldRef:
              fieldPath: status.podIP
      {{- end }}
      ports:
        - name: http
          containerPort: {{ $m.port | int }}
          protocol: TCP
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
          {{- if and $node (ne $host "0.0.0.0") }}
          host: {{ $host }}
          {{- end }}
        periodSeconds: 5
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
          {{- if and $node (ne $host "0.0.0.0") }}
          host: {{ $host }}
          {{- end }}
        periodSeconds: 10
        failureThreshold: 6
      resources:
        {{- toYaml $m.resources | nindent 8 }}
      securityContext:
        {{- include "hoist.securityContext" (ternary "root" "nonroot" $hostPath) | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /etc/hoist
          readOnly: true
        - name: storage
          mountPath: /var/lib/hoist/mirror
        - name: tmp
          mountPath: /tmp
        {{- if $m.credentialsSecret }}
        - name: credentials
          mountPath: /var/run/secrets/hoist
          readOnly: true
        {{- end }}
        {{- if $peers }}
        - name: peer-token
          mountPath: /var/run/secrets/hoist-peers
          readOnly: true
        {{- end }}
        {{- if $metricsDir }}
        - name: metrics-socket
          mountPath: {{ $metricsDir }}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "hoist.componentName" (list . "mirror") }}
    - name: storage
      {{- if $hostPath }}
      hostPath:
        path: {{ $m.node.storage.hostPath }}
        type: DirectoryOrCreate
      {{- else if $sizeLimit }}
      emptyDir:
        sizeLimit: {{ $sizeLimit }}
      {{- else }}
      emptyDir: {}
      {{- end }}
    - name: tmp
      emptyDir: {}
    {{- if $m.credentialsSecret }}
    - name: credentials
      secret:
        secretName: {{ $m.credentialsSecret }}
    {{- end }}
    {{- if $peers }}
    # Only the key `token`: a missing key stops the pod with an event that names it.
    - name: peer-token
      secret:
        secretName: {{ include "hoist.mirrorPeerTokenSecret" . }}
        items:
          - key: token
            path: token
    {{- end }}
    {{- if $metricsDir }}
    # Shared with the agent (read-only there): /metrics only, nothing else on that socket.
    - name: metrics-socket
      hostPath:
        path: {{ $metricsDir }}
        type: DirectoryOrCreate
    {{- end }}
{{- end -}}
