// The mirror: one per node (DaemonSet on the host network, so containerd reaches it on
// 127.0.0.1) or a few per zone (Deployment spread over zones behind a Service that keeps traffic
// in its zone). Templates: deploy/helm/hoist/templates/mirror-*.yaml.
import { createHash } from 'node:crypto';
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

export const MIRROR_CONFIG_DIR = '/etc/hoist';
export const MIRROR_CONFIG_KEY = 'mirror.json';
export const MIRROR_STORAGE_DIR = '/var/lib/hoist/mirror';
export const MIRROR_CREDENTIALS_DIR = '/var/run/secrets/hoist';
export const PEERS_SUFFIX = 'peers';

/** The mirror's config file: Go-style indented JSON (a YAML document too), identical to the chart's. */
export function mirrorConfigText(ctx: InstallContext): string {
  return goPrettyJson(ctx.values.mirror.config);
}

/** The address the mirror listens on inside its pod (host network in node mode). */
function listenHost(ctx: InstallContext): string {
  return ctx.values.mirror.mode === 'node' ? ctx.values.mirror.node.listenAddress : '0.0.0.0';
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
  // Every mirror pod by address, for peer discovery (src/peers) later.
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
      ...mirror.extraArgs,
    ],
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
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(node ? { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' } : {}),
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
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: namespaced(ctx, 'mirror'),
      automountServiceAccountToken: false,
    },
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
