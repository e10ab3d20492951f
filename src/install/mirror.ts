// The mirror: one per node (DaemonSet on the host network, so containerd reaches it on
// 127.0.0.1) or a few per zone (Deployment spread over zones behind a Service that keeps traffic
// in its zone). Templates: deploy/helm/hoist/templates/mirror-*.yaml.
import { createHash } from 'node:crypto';
import { InstallError } from './errors.js';
import {
  componentName,
  containerSecurity,
  goPrettyJson,
  image,
  namespaced,
  podMetadata,
  podScheduling,
  selectorLabels,
  type InstallContext,
  type KubeObject,
} from './meta.js';
import {
  metricsSocketDir,
  metricsSocketInitContainers,
  metricsSocketPath,
  metricsSocketPodSecurity,
} from './metrics-socket.js';
import type { Values } from './values.js';

export const MIRROR_CONFIG_DIR = '/etc/hoist';
export const MIRROR_CONFIG_KEY = 'mirror.json';
export const MIRROR_STORAGE_DIR = '/var/lib/hoist/mirror';
export const MIRROR_CREDENTIALS_DIR = '/var/run/secrets/hoist';
export const PEERS_SUFFIX = 'peers';
/** Where the cluster token of peer sharing is mounted (one key, `token`). */
export const MIRROR_PEER_TOKEN_DIR = '/var/run/secrets/hoist-peers';
export const PEER_TOKEN_SUFFIX = 'peer-token';

/**
 * The mirror's configuration as rendered: mirror.config, plus `peers.fanout` from
 * mirror.peers.fanout when peer sharing is on (it wins over a fanout in mirror.config.peers).
 */
export function mirrorConfigFor(values: Values): Record<string, unknown> {
  const { config, peers } = values.mirror;
  if (!peers.enabled) return config;
  const prior = config.peers;
  const base = typeof prior === 'object' && prior !== null && !Array.isArray(prior) ? prior : {};
  return { ...config, peers: { ...base, fanout: peers.fanout } };
}

/** The mirror's config file: Go-style indented JSON (a YAML document too), identical to the chart's. */
export function mirrorConfigText(ctx: InstallContext): string {
  return goPrettyJson(mirrorConfigFor(ctx.values));
}

/**
 * Peer sharing's values, checked as the chart's templates check them (`fail`), with the same
 * messages. Only node mode: a zone mirror already serves every node of its zone, and peering the
 * replicas of all zones would send blobs across zones, the traffic zone mode exists to avoid.
 */
function checkPeers(values: Values): void {
  const { mirror } = values;
  if (!mirror.enabled || !mirror.peers.enabled) return;
  if (mirror.mode !== 'node') {
    throw new InstallError(
      'VALUES_INVALID',
      'mirror.peers.enabled: peer sharing needs mirror.mode node (zone mirrors already serve their whole zone; peering them would send blobs across zones)',
    );
  }
  if (mirror.peers.tokenSecret && mirror.peers.token) {
    throw new InstallError(
      'VALUES_INVALID',
      'mirror.peers: give tokenSecret (an existing Secret) or token, not both',
    );
  }
}

/** Peer sharing is on (node mode, checked by checkPeers). */
const peersOn = (ctx: InstallContext) => ctx.values.mirror.peers.enabled;

function peerTokenSecretName(ctx: InstallContext): string {
  return ctx.values.mirror.peers.tokenSecret || `${componentName(ctx, 'mirror')}-${PEER_TOKEN_SUFFIX}`;
}

/**
 * The Secret holding the cluster token, when the install makes it. Helm keeps an existing token
 * across upgrades (`lookup`) or generates one; this rendering cannot look anything up and must
 * render the same token every time, so it takes mirror.peers.token or refuses.
 */
function peerTokenSecret(ctx: InstallContext): KubeObject[] {
  const { peers } = ctx.values.mirror;
  if (!peersOn(ctx) || peers.tokenSecret) return [];
  if (!peers.token) {
    throw new InstallError(
      'VALUES_INVALID',
      'mirror.peers: hoist render install cannot generate a token that stays the same on every rendering: create a Secret with a key \'token\' (kubectl -n NS create secret generic hoist-peer-token --from-literal=token="$(openssl rand -hex 24)") and set mirror.peers.tokenSecret to its name, or set mirror.peers.token (16+ characters)',
    );
  }
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: namespaced(ctx, 'mirror', peerTokenSecretName(ctx)),
      type: 'Opaque',
      data: { token: Buffer.from(peers.token).toString('base64') },
    },
  ];
}

/**
 * The address the mirror listens on inside its pod (host network in node mode). Peers reach a
 * node mirror at its pod IP (the node's IP on the host network), so with peer sharing it listens
 * on every address: containerd still uses 127.0.0.1, and /v2/ becomes reachable from the pod
 * network too (README, "Peer sharing").
 */
function listenHost(ctx: InstallContext): string {
  const { mirror } = ctx.values;
  if (mirror.mode !== 'node' || peersOn(ctx)) return '0.0.0.0';
  return mirror.node.listenAddress;
}

/** The URL containerd on a node uses to reach the mirror, unless agent.mirrorUrl says otherwise. */
export function mirrorUrlForNodes(ctx: InstallContext): string {
  const { mirror } = ctx.values;
  if (mirror.mode === 'node') return `http://127.0.0.1:${mirror.port}`;
  // containerd resolves names with the host's DNS, not the cluster's: use the Service's
  // ClusterIP, which the kubelet puts in the agent's environment (service links) and expands.
  const env = componentName(ctx, 'mirror').toUpperCase().replace(/-/g, '_');
  return `http://$(${env}_SERVICE_HOST):$(${env}_SERVICE_PORT)`;
}

function services(ctx: InstallContext): KubeObject[] {
  const { mirror } = ctx.values;
  const ports = [{ name: 'http', port: mirror.port, targetPort: 'http', protocol: 'TCP' }];
  const out: KubeObject[] = [];
  if (mirror.mode === 'zone') {
    const z = mirror.zone;
    out.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        ...namespaced(ctx, 'mirror'),
        ...(z.topologyAwareRouting ? { annotations: { 'service.kubernetes.io/topology-mode': 'Auto' } } : {}),
      },
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels('mirror'),
        ports,
        ...(z.trafficDistribution ? { trafficDistribution: z.trafficDistribution } : {}),
      },
    });
  }
  // Every mirror pod by address, for peer discovery (src/peers): only ready pods are peers, so
  // not-ready addresses stay unpublished (the readiness probe is /readyz).
  out.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: namespaced(ctx, 'mirror', `${componentName(ctx, 'mirror')}-${PEERS_SUFFIX}`),
    spec: { clusterIP: 'None', selector: selectorLabels('mirror'), ports },
  });
  return out;
}

function podSpec(ctx: InstallContext): Record<string, unknown> {
  const { mirror } = ctx.values;
  const node = mirror.mode === 'node';
  const hostPath = node && mirror.node.storage.type === 'hostPath';
  const host = listenHost(ctx);
  // On the host network a loopback listener is reached by the kubelet on 127.0.0.1.
  const probeHost = node && host !== '0.0.0.0' ? { host } : {};
  const sizeLimit = node ? mirror.node.storage.sizeLimit : mirror.zone.storageSizeLimit;
  const storage = hostPath
    ? { name: 'storage', hostPath: { path: mirror.node.storage.hostPath, type: 'DirectoryOrCreate' } }
    : { name: 'storage', emptyDir: sizeLimit ? { sizeLimit } : {} };
  const volumes: unknown[] = [
    { name: 'config', configMap: { name: componentName(ctx, 'mirror') } },
    storage,
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: unknown[] = [
    { name: 'config', mountPath: MIRROR_CONFIG_DIR, readOnly: true },
    { name: 'storage', mountPath: MIRROR_STORAGE_DIR },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  if (mirror.credentialsSecret) {
    volumes.push({ name: 'credentials', secret: { secretName: mirror.credentialsSecret } });
    mounts.push({ name: 'credentials', mountPath: MIRROR_CREDENTIALS_DIR, readOnly: true });
  }
  const peers = peersOn(ctx);
  if (peers) {
    // Only the `token` key: a tokenSecret may hold other keys, and a missing one stops the pod
    // with an event naming it rather than a mirror that cannot read its token.
    volumes.push({
      name: 'peer-token',
      secret: { secretName: peerTokenSecretName(ctx), items: [{ key: 'token', path: 'token' }] },
    });
    mounts.push({ name: 'peer-token', mountPath: MIRROR_PEER_TOKEN_DIR, readOnly: true });
  }
  // The metrics socket's node directory, shared with the agent (metrics-socket.ts says how).
  const metricsDir = metricsSocketDir(ctx);
  const metricsSocket = metricsSocketPath(ctx);
  if (metricsDir) {
    volumes.push({ name: 'metrics-socket', hostPath: { path: metricsDir, type: 'DirectoryOrCreate' } });
    mounts.push({ name: 'metrics-socket', mountPath: metricsDir });
  }
  // Members are the ready endpoints of the headless -peers Service; this pod's own URL is
  // http://$POD_IP:<port> (hoist mirror's default for --peer-self).
  const peerArgs = peers
    ? [
        '--peer-service',
        `${ctx.namespace}/${componentName(ctx, 'mirror')}-${PEERS_SUFFIX}`,
        '--peer-token-file',
        `${MIRROR_PEER_TOKEN_DIR}/token`,
      ]
    : [];
  const container = {
    name: 'mirror',
    image: image(ctx.values),
    imagePullPolicy: ctx.values.image.pullPolicy,
    args: [
      'mirror',
      '--config',
      `${MIRROR_CONFIG_DIR}/${MIRROR_CONFIG_KEY}`,
      '--listen',
      `${host}:${mirror.port}`,
      '--storage',
      MIRROR_STORAGE_DIR,
      ...peerArgs,
      ...(metricsSocket ? ['--metrics-socket', metricsSocket] : []),
      ...mirror.extraArgs,
    ],
    ...(peers ? { env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] } : {}),
    ports: [{ name: 'http', containerPort: mirror.port, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/readyz', port: 'http', ...probeHost }, periodSeconds: 5 },
    livenessProbe: {
      httpGet: { path: '/healthz', port: 'http', ...probeHost },
      periodSeconds: 10,
      failureThreshold: 6,
    },
    resources: mirror.resources,
    // A hostPath store is a root-owned directory on the node; everything else runs as nonroot.
    securityContext: containerSecurity(hostPath ? 'root' : 'nonroot'),
    volumeMounts: mounts,
  };
  return {
    serviceAccountName: componentName(ctx, 'mirror'),
    // The API token only for peer discovery (EndpointSlices, rbac.ts's mirror Role).
    automountServiceAccountToken: peers,
    enableServiceLinks: false,
    ...(node ? { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' } : {}),
    ...metricsSocketPodSecurity(ctx),
    ...podScheduling({
      imagePullSecrets: ctx.values.imagePullSecrets,
      nodeSelector: mirror.nodeSelector,
      tolerations: node ? mirror.node.tolerations : mirror.zone.tolerations,
      priorityClassName: mirror.priorityClassName,
      ...(node ? {} : { affinity: mirror.zone.affinity }),
    }),
    ...(node
      ? {}
      : {
          topologySpreadConstraints: ['topology.kubernetes.io/zone', 'kubernetes.io/hostname'].map((key) => ({
            maxSkew: 1,
            topologyKey: key,
            // ScheduleAnyway: a cluster without zone labels still runs the mirror.
            whenUnsatisfiable: 'ScheduleAnyway',
            labelSelector: { matchLabels: selectorLabels('mirror') },
          })),
        }),
    ...metricsSocketInitContainers(ctx, 'metrics-socket'),
    containers: [container],
    volumes,
  };
}

function workload(ctx: InstallContext): KubeObject {
  const { mirror } = ctx.values;
  const template = {
    metadata: podMetadata('mirror', {
      ...mirror.podAnnotations,
      'hoist.dev/config-sha256': createHash('sha256').update(mirrorConfigText(ctx)).digest('hex'),
    }),
    spec: podSpec(ctx),
  };
  const selector = { matchLabels: selectorLabels('mirror') };
  if (mirror.mode === 'zone') {
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: namespaced(ctx, 'mirror'),
      spec: { replicas: mirror.zone.replicas, selector, template },
    };
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: namespaced(ctx, 'mirror'),
    spec: {
      selector,
      updateStrategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxUnavailable: mirror.node.maxUnavailable },
      },
      template,
    },
  };
}

export function mirrorObjects(ctx: InstallContext): KubeObject[] {
  if (!ctx.values.mirror.enabled) return [];
  checkPeers(ctx.values);
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: namespaced(ctx, 'mirror'),
      automountServiceAccountToken: peersOn(ctx),
    },
    ...peerTokenSecret(ctx),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: namespaced(ctx, 'mirror'),
      data: { [MIRROR_CONFIG_KEY]: mirrorConfigText(ctx) },
    },
    ...services(ctx),
    workload(ctx),
  ];
}
