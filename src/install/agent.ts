// The node agent: a DaemonSet that writes containerd's hosts.toml at start (as `hoist node
// configure` does) and pulls the images of its node's NodePull over CRI.
// Template: deploy/helm/hoist/templates/agent-daemonset.yaml.
//
// Why it needs what it mounts: containerd's socket, because pulling, pinning and listing images
// is CRI ImageService on that socket (whoever holds it controls the node's containers, so the
// agent runs nothing else and holds no other privilege); the registry config dir (certs.d),
// because that is where hosts.toml goes; containerd's config dir read-only, to check that
// config_path points at that dir. It runs as uid 0 because those are root-owned, with every
// capability dropped, no privilege escalation, no host network and a read-only root filesystem.
import { posix } from 'node:path';
import {
  componentName,
  containerSecurity,
  image,
  namespaced,
  podMetadata,
  podScheduling,
  selectorLabels,
  type InstallContext,
  type KubeObject,
} from './meta.js';
import { metricsSocketDir, metricsSocketPath, metricsSocketPodSecurity } from './metrics-socket.js';
import { mirrorUrlForNodes } from './mirror.js';

/** `--registries` for the agent: every upstream the mirror serves, NAME=URL, sorted. */
export function agentRegistries(ctx: InstallContext): string {
  const upstreams = (ctx.values.mirror.config.upstreams ?? {}) as Record<string, { url?: unknown }>;
  return Object.keys(upstreams)
    .sort()
    .map((name) => {
      const url = upstreams[name]?.url;
      return typeof url === 'string' ? `${name}=${url}` : name;
    })
    .join(',');
}

function agentMirrorUrl(ctx: InstallContext): string {
  if (ctx.values.agent.mirrorUrl) return ctx.values.agent.mirrorUrl;
  return ctx.values.mirror.enabled ? mirrorUrlForNodes(ctx) : '';
}

/**
 * The agent's API listens on loopback only (it takes assignments without authentication), out of
 * the kubelet's reach, so the probes run `node` in the container (the image has no shell). They
 * use node:http, not fetch(): fetch refuses the ports the WHATWG fetch standard blocks (§2.9 "bad
 * port": 6000, 10080, ...), and any port is a valid listenPort. Success is a 2xx, as before with
 * fetch's `ok`; the agent answers 200 or 503. The chart's `hoist.loopbackProbe` renders the same
 * script.
 */
function probe(path: string, port: number) {
  const script = `require('node:http').get('http://127.0.0.1:${port}${path}', (r) => process.exit(r.statusCode >= 200 && r.statusCode < 300 ? 0 : 1)).on('error', () => process.exit(1))`;
  return { exec: { command: ['node', '-e', script] }, timeoutSeconds: 5 };
}

export function agentObjects(ctx: InstallContext): KubeObject[] {
  const { agent } = ctx.values;
  if (!agent.enabled) return [];
  const { socket, configFile, certsDir } = agent.containerd;
  const mirrorUrl = agentMirrorUrl(ctx);
  // The node mirror's figures for the NodePull status (the dashboard's node caches), read from
  // its metrics socket; with a non-root mirror through a group both pods share (metrics-socket.ts).
  const metricsDir = metricsSocketDir(ctx);
  const metricsSocket = metricsSocketPath(ctx);
  const registries = agentRegistries(ctx);
  const serviceLinks = !agent.mirrorUrl && ctx.values.mirror.enabled && ctx.values.mirror.mode === 'zone';
  const args = [
    'agent',
    '--in-cluster',
    '--node-name',
    '$(NODE_NAME)',
    '--namespace',
    ctx.namespace,
    '--runtime-endpoint',
    `unix://${socket}`,
    '--listen',
    `127.0.0.1:${agent.listenPort}`,
    '--certs-dir',
    certsDir,
    '--containerd-config',
    configFile,
    '--concurrency',
    String(agent.concurrency),
    '--disk-high-water',
    agent.diskHighWater,
    '--log-level',
    agent.logLevel,
    ...(mirrorUrl && registries ? ['--mirror', mirrorUrl, '--registries', registries] : []),
    ...(agent.pinBudgetBytes > 0 ? ['--pin-budget-bytes', String(agent.pinBudgetBytes)] : []),
    ...(metricsSocket ? ['--mirror-metrics', `unix://${metricsSocket}`] : []),
    ...agent.extraArgs,
  ];
  const container = {
    name: 'agent',
    image: image(ctx.values),
    imagePullPolicy: ctx.values.image.pullPolicy,
    args,
    env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
    readinessProbe: { ...probe('/readyz', agent.listenPort), periodSeconds: 10 },
    livenessProbe: { ...probe('/healthz', agent.listenPort), periodSeconds: 30, failureThreshold: 4 },
    resources: agent.resources,
    securityContext: containerSecurity('root'),
    volumeMounts: [
      { name: 'containerd-socket', mountPath: socket },
      { name: 'containerd-config', mountPath: posix.dirname(configFile), readOnly: true },
      { name: 'certs-dir', mountPath: certsDir },
      { name: 'tmp', mountPath: '/tmp' },
      ...(metricsDir ? [{ name: 'mirror-metrics', mountPath: metricsDir, readOnly: true }] : []),
    ],
  };
  const spec = {
    serviceAccountName: componentName(ctx, 'agent'),
    enableServiceLinks: serviceLinks,
    ...metricsSocketPodSecurity(ctx),
    ...podScheduling({
      imagePullSecrets: ctx.values.imagePullSecrets,
      nodeSelector: agent.nodeSelector,
      tolerations: agent.tolerations,
      priorityClassName: agent.priorityClassName,
    }),
    containers: [container],
    volumes: [
      { name: 'containerd-socket', hostPath: { path: socket, type: 'Socket' } },
      { name: 'containerd-config', hostPath: { path: posix.dirname(configFile), type: 'DirectoryOrCreate' } },
      { name: 'certs-dir', hostPath: { path: certsDir, type: 'DirectoryOrCreate' } },
      { name: 'tmp', emptyDir: {} },
      ...(metricsDir
        ? [{ name: 'mirror-metrics', hostPath: { path: metricsDir, type: 'DirectoryOrCreate' } }]
        : []),
    ],
  };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: namespaced(ctx, 'agent') },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: namespaced(ctx, 'agent'),
      spec: {
        selector: { matchLabels: selectorLabels('agent') },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: agent.maxUnavailable } },
        template: { metadata: podMetadata('agent', agent.podAnnotations), spec },
      },
    },
  ];
}
