// The PrePull controller: a Deployment whose replicas elect one leader through a Lease, a
// Service for its metrics and its dashboard (one port, 8080 by default: `kubectl port-forward`
// svc/<release>-controller 8080), and optionally a PodMonitor (Prometheus operator).
// Templates: deploy/helm/hoist/templates/controller-*.yaml, podmonitor.yaml.
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
import { PEERS_SUFFIX } from './mirror.js';
import { leaseName } from './rbac.js';

/**
 * The mirror's upstreams name the registry label of the pull-time histogram (others are "other"),
 * so the dashboard shows each registry Hoist serves.
 */
function telemetryRegistries(ctx: InstallContext): string[] {
  const names = Object.keys(ctx.values.mirror.config.upstreams ?? {}).sort();
  return names.length > 0 ? ['--telemetry-registries', names.join(',')] : [];
}

/**
 * The mirrors' Service for the dashboard's per-node cache figures, when the controller can reach
 * the mirrors: zone mirrors listen on the pod network; node mirrors only when their listen address
 * is not loopback or peer sharing is on (by default they listen on 127.0.0.1 on the host network,
 * out of reach).
 */
function mirrorServiceArgs(ctx: InstallContext): string[] {
  const { mirror } = ctx.values;
  if (!mirror.enabled) return [];
  const loopback = /^(127\.|localhost$|::1$|\[::1\]$)/.test(mirror.node.listenAddress);
  // With peer sharing, node mirrors listen on every address (src/install/mirror.ts listenHost).
  if (mirror.mode === 'node' && loopback && !mirror.peers.enabled) return [];
  return ['--mirror-service', `${componentName(ctx, 'mirror')}-${PEERS_SUFFIX}`];
}

function deployment(ctx: InstallContext): KubeObject {
  const { controller } = ctx.values;
  const container = {
    name: 'controller',
    image: image(ctx.values),
    imagePullPolicy: ctx.values.image.pullPolicy,
    args: [
      'controller',
      '--in-cluster',
      '--namespace',
      ctx.namespace,
      '--lease-name',
      leaseName(ctx),
      '--identity',
      '$(POD_NAME)',
      '--listen',
      `0.0.0.0:${controller.metricsPort}`,
      '--log-level',
      controller.logLevel,
      ...telemetryRegistries(ctx),
      ...mirrorServiceArgs(ctx),
      ...controller.extraArgs,
    ],
    env: [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
    ports: [{ name: 'metrics', containerPort: controller.metricsPort, protocol: 'TCP' }],
    readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 10 },
    livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 20, failureThreshold: 3 },
    resources: controller.resources,
    securityContext: containerSecurity('nonroot'),
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: namespaced(ctx, 'controller'),
    spec: {
      replicas: controller.replicas,
      selector: { matchLabels: selectorLabels('controller') },
      template: {
        metadata: podMetadata('controller', controller.podAnnotations),
        spec: {
          serviceAccountName: componentName(ctx, 'controller'),
          enableServiceLinks: false,
          ...podScheduling({
            imagePullSecrets: ctx.values.imagePullSecrets,
            nodeSelector: controller.nodeSelector,
            tolerations: controller.tolerations,
            priorityClassName: controller.priorityClassName,
            affinity: controller.affinity,
          }),
          // The standby replica takes over when the leader's node goes: keep them apart.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selectorLabels('controller') },
            },
          ],
          containers: [container],
          volumes: [{ name: 'tmp', emptyDir: {} }],
        },
      },
    },
  };
}

export function controllerObjects(ctx: InstallContext): KubeObject[] {
  const { controller, metrics } = ctx.values;
  if (!controller.enabled) return [];
  const out: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: namespaced(ctx, 'controller') },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: namespaced(ctx, 'controller'),
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels('controller'),
        ports: [{ name: 'metrics', port: controller.metricsPort, targetPort: 'metrics', protocol: 'TCP' }],
      },
    },
    deployment(ctx),
  ];
  if (metrics.podMonitor.enabled) {
    const meta = namespaced(ctx, 'controller');
    out.push({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PodMonitor',
      metadata: { ...meta, labels: { ...meta.labels, ...metrics.podMonitor.labels } },
      spec: {
        selector: { matchLabels: selectorLabels('controller') },
        podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: metrics.podMonitor.interval }],
      },
    });
  }
  return out;
}
