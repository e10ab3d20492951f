{{/*
Shared names, labels, image and security contexts. src/install/meta.ts builds the same for
`hoist render install`; test/install.test.ts checks that both render the same objects.
*/}}

{{/* Prefix of every object name. */}}
{{- define "hoist.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride -}}
{{- else if contains "hoist" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-hoist" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (list $ "mirror") */}}
{{- define "hoist.componentName" -}}
{{- printf "%s-%s" (include "hoist.fullname" (index . 0)) (index . 1) -}}
{{- end -}}

{{/* Selector labels of a component: (list $ "mirror") */}}
{{- define "hoist.selectorLabels" -}}
app.kubernetes.io/name: hoist
app.kubernetes.io/instance: {{ (index . 0).Release.Name | quote }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* All labels of a component: (list $ "mirror") */}}
{{- define "hoist.labels" -}}
{{ include "hoist.selectorLabels" . }}
app.kubernetes.io/part-of: hoist
app.kubernetes.io/version: {{ (index . 0).Chart.AppVersion | quote }}
{{- end -}}

{{/* metadata of a namespaced object of a component: (list $ "mirror") */}}
{{- define "hoist.metadata" -}}
name: {{ include "hoist.componentName" . }}
namespace: {{ (index . 0).Release.Namespace }}
labels:
  {{- include "hoist.labels" . | nindent 2 }}
{{- end -}}

{{- define "hoist.image" -}}
{{- .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- with .Values.image.digest }}@{{ . }}{{ end -}}
{{- end -}}

{{/*
Container security: nothing but the process's own user. "root" is for the parts that write
root-owned host paths (hosts.toml, a hostPath store) or open containerd's root-only socket: uid 0
owns those files, so no capability is needed, and every one is dropped.
*/}}
{{- define "hoist.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- if eq . "root" }}
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
{{- else }}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
{{- end }}
{{- end -}}

{{/* Optional pod scheduling fields: (dict "root" $ "component" .Values.x "tolerations" [...] "affinity" {...}) */}}
{{- define "hoist.podScheduling" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end -}}

{{/*
The mirror's config file: indented JSON (a YAML document too), as toPrettyJson writes it. With
peer sharing, mirror.peers.fanout becomes peers.fanout (over any in mirror.config.peers).
*/}}
{{- define "hoist.mirrorConfig" -}}
{{- $cfg := .Values.mirror.config -}}
{{- if .Values.mirror.peers.enabled -}}
{{- $cfg = deepCopy $cfg -}}
{{- $prior := deepCopy ($cfg.peers | default dict) -}}
{{- $_ := set $cfg "peers" (mergeOverwrite $prior (dict "fanout" .Values.mirror.peers.fanout)) -}}
{{- end -}}
{{- $cfg | toPrettyJson -}}
{{- end -}}

{{/* The Secret holding peer sharing's cluster token: the user's, or the one the chart makes. */}}
{{- define "hoist.mirrorPeerTokenSecret" -}}
{{- .Values.mirror.peers.tokenSecret | default (printf "%s-peer-token" (include "hoist.componentName" (list . "mirror"))) -}}
{{- end -}}

{{/* Peer sharing's values, checked with the messages `hoist render install` gives. */}}
{{- define "hoist.checkPeers" -}}
{{- $m := .Values.mirror -}}
{{- if and $m.enabled $m.peers.enabled -}}
{{- if ne $m.mode "node" -}}
{{- fail "mirror.peers.enabled: peer sharing needs mirror.mode node (zone mirrors already serve their whole zone; peering them would send blobs across zones)" -}}
{{- end -}}
{{- if and $m.peers.tokenSecret $m.peers.token -}}
{{- fail "mirror.peers: give tokenSecret (an existing Secret) or token, not both" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The URL containerd uses to reach the mirror (agent --mirror). */}}
{{- define "hoist.agentMirrorUrl" -}}
{{- if .Values.agent.mirrorUrl -}}
{{- .Values.agent.mirrorUrl -}}
{{- else if and .Values.mirror.enabled (eq .Values.mirror.mode "node") -}}
http://127.0.0.1:{{ .Values.mirror.port | int }}
{{- else if .Values.mirror.enabled -}}
{{- /* containerd resolves with the host's DNS: the ClusterIP from the service environment. */ -}}
{{- $env := include "hoist.componentName" (list . "mirror") | upper | replace "-" "_" -}}
http://$({{ $env }}_SERVICE_HOST):$({{ $env }}_SERVICE_PORT)
{{- end -}}
{{- end -}}

{{/*
The node mirror's metrics socket (hoist mirror --metrics-socket), in a node directory the agent
mounts read-only: the agent (pod network) cannot reach the mirror on the node's 127.0.0.1, and
reads its /metrics there for the NodePull status. Empty without a node mirror.
src/install/metrics-socket.ts says the same, and why it is safe in both storage modes.
*/}}
{{- define "hoist.mirrorMetricsSocketDir" -}}
{{- $m := .Values.mirror -}}
{{- if and $m.enabled (eq $m.mode "node") -}}
/run/hoist/mirror
{{- end -}}
{{- end -}}

{{/*
The group the non-root mirror (emptyDir store) and the agent share for the socket: an init
container gives the directory to it (2770, setgid), the mirror makes the socket 0660. Empty with
a hostPath store (mirror and agent are both uid 0) or without a node mirror.
*/}}
{{- define "hoist.mirrorMetricsSocketGroup" -}}
{{- if and (include "hoist.mirrorMetricsSocketDir" .) (ne .Values.mirror.node.storage.type "hostPath") -}}
{{- .Values.mirror.node.metricsSocketGroup | int64 -}}
{{- end -}}
{{- end -}}

{{/*
The init container's program (node -e: the image has no shell); argv: the directory, the gid.
uid 0 without any capability: the directory's owner may give it a group it is in (the pod's
supplementalGroups) and set its mode. Same text as src/install/metrics-socket.ts.
*/}}
{{- define "hoist.metricsSocketDirScript" -}}
const fs = require('node:fs'); const [dir, gid] = process.argv.slice(1); try { fs.chownSync(dir, -1, Number(gid)); fs.chmodSync(dir, 0o2770); } catch (err) { console.error('cannot give ' + dir + ' to group ' + gid + ' for the mirror metrics socket: ' + err.code + '; it must be a directory owned by uid 0'); process.exit(1); }
{{- end -}}

{{/* agent --registries: every upstream of the mirror, NAME=URL, sorted by name. */}}
{{- define "hoist.agentRegistries" -}}
{{- $out := list -}}
{{- range $name, $u := (.Values.mirror.config.upstreams | default dict) -}}
{{- if and (kindIs "map" $u) (kindIs "string" $u.url) -}}
{{- $out = append $out (printf "%s=%s" $name $u.url) -}}
{{- else -}}
{{- $out = append $out $name -}}
{{- end -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* The controller's leader-election Lease. */}}
{{- define "hoist.leaseName" -}}
{{- .Values.controller.leaseName | default (include "hoist.componentName" (list . "controller")) -}}
{{- end -}}

{{/* An exec probe that GETs a loopback URL with node (the image has no shell): (list port path).
node:http, not fetch(): fetch refuses the WHATWG "bad ports" (6000, 10080, ...). Same as src/install/agent.ts. */}}
{{- define "hoist.loopbackProbe" -}}
exec:
  command:
    - node
    - -e
    - {{ printf "require('node:http').get('http://127.0.0.1:%d%s', (r) => process.exit(r.statusCode >= 200 && r.statusCode < 300 ? 0 : 1)).on('error', () => process.exit(1))" (index . 0 | int) (index . 1) | quote }}
timeoutSeconds: 5
{{- end -}}
