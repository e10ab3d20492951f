// The install values: one zod schema (also exported as the chart's values.schema.json) and the
// defaults in one object (the chart's values.yaml holds the same, documented field by field; a
// test keeps them equal). Values merge over the defaults the way Helm merges `-f` files: maps
// merge key by key, lists and scalars replace, `null` removes a key.
import { z } from 'zod';
import { InstallError } from './errors.js';

// Kubernetes resource.Quantity (apimachinery/pkg/api/resource): 100m, 1.5Gi, 2e3, 64.
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$/;
const quantity = z.union([
  z.string().regex(QUANTITY, 'must be a Kubernetes quantity (100m, 1Gi)'),
  z.number(),
]);
const resources = z
  .object({
    requests: z.record(z.string(), quantity).optional(),
    limits: z.record(z.string(), quantity).optional(),
  })
  .strict()
  .describe('core/v1 ResourceRequirements');

export const tolerationSchema = z
  .object({
    key: z.string().optional(),
    operator: z.enum(['Exists', 'Equal']).optional(),
    value: z.string().optional(),
    effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .strict();
const tolerations = z.array(tolerationSchema).describe('core/v1 Tolerations');
const stringMap = z.record(z.string(), z.string());
const freeObject = z.record(z.string(), z.unknown());
const intOrPercent = z.union([
  z.number().int().min(0),
  z.string().regex(/^(100|[1-9]?\d)%$/, 'must be a whole number or a percentage such as 10%'),
]);
const port = z.number().int().min(1).max(65535);
const absolutePath = z.string().regex(/^\/\S*$/, 'must be an absolute path');
// DNS-1123 subdomain (object names) and label (ports, short names).
const dnsName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'must be a DNS-1123 name');
const optionalDnsName = z.union([z.literal(''), dnsName]);
// Prefixes Service names ("<prefix>-mirror-peers"): a DNS-1035 label with room for the suffix.
const namePrefix = z.union([
  z.literal(''),
  z.string().regex(/^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$/, 'must be a DNS-1035 label of at most 40 characters'),
]);

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const scheduling = {
  nodeSelector: stringMap,
  priorityClassName: z.string(),
  podAnnotations: stringMap,
  resources,
  extraArgs: z.array(z.string()),
};

export const valuesSchema = z
  .object({
    fullnameOverride: namePrefix,
    image: z
      .object({
        repository: z.string().min(1),
        tag: z.string(),
        digest: z.union([
          z.literal(''),
          z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>'),
        ]),
        pullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']),
      })
      .strict(),
    imagePullSecrets: z.array(z.object({ name: dnsName }).strict()),
    mirror: z
      .object({
        enabled: z.boolean(),
        mode: z.enum(['node', 'zone']),
        port,
        config: freeObject.describe("hoist mirror's YAML configuration (listen and storage are set for you)"),
        credentialsSecret: optionalDnsName,
        // Peer sharing between the node mirrors (docs/peers.md, README "Peer sharing").
        peers: z
          .object({
            enabled: z.boolean(),
            tokenSecret: optionalDnsName,
            token: z.union([z.literal(''), z.string().min(16, 'must be at least 16 characters')]),
            fanout: z.number().int().min(1).max(64),
          })
          .strict(),
        ...scheduling,
        node: z
          .object({
            listenAddress: z.string().min(1),
            storage: z
              .object({
                type: z.enum(['hostPath', 'emptyDir']),
                hostPath: absolutePath,
                sizeLimit: z.union([z.literal(''), z.string().regex(QUANTITY, 'must be a quantity')]),
              })
              .strict(),
            // The group the mirror (non-root with an emptyDir store) and the agent share for the
            // mirror's metrics socket (src/install/metrics-socket.ts). Not 0: that is root's.
            metricsSocketGroup: z.number().int().min(1).max(2147483647),
            maxUnavailable: intOrPercent,
            tolerations,
          })
          .strict(),
        zone: z
          .object({
            replicas: z.number().int().min(1),
            trafficDistribution: z.enum(['', 'PreferClose', 'PreferSameZone']),
            topologyAwareRouting: z.boolean(),
            storageSizeLimit: z.union([z.literal(''), z.string().regex(QUANTITY, 'must be a quantity')]),
            affinity: freeObject,
            tolerations,
          })
          .strict(),
      })
      .strict(),
    agent: z
      .object({
        enabled: z.boolean(),
        mirrorUrl: z.union([z.literal(''), z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' })]),
        containerd: z
          .object({ socket: absolutePath, configFile: absolutePath, certsDir: absolutePath })
          .strict(),
        concurrency: z.number().int().min(1).max(64),
        diskHighWater: z.string().min(1),
        pinBudgetBytes: z.number().int().min(0),
        listenPort: port,
        logLevel,
        maxUnavailable: intOrPercent,
        tolerations,
        ...scheduling,
      })
      .strict(),
    controller: z
      .object({
        enabled: z.boolean(),
        replicas: z.number().int().min(1),
        leaseName: optionalDnsName,
        metricsPort: port,
        logLevel,
        affinity: freeObject,
        tolerations,
        ...scheduling,
      })
      .strict(),
    metrics: z
      .object({
        podMonitor: z
          .object({
            enabled: z.boolean(),
            interval: z.string().regex(/^\d+(ms|s|m|h)$/, 'must be a duration such as 30s'),
            labels: stringMap,
          })
          .strict(),
      })
      .strict(),
    grafana: z
      .object({
        dashboard: z
          .object({
            enabled: z.boolean(),
            namespace: optionalDnsName,
            labels: stringMap,
            annotations: stringMap,
          })
          .strict(),
      })
      .strict(),
  })
  .strict();

export type Values = z.infer<typeof valuesSchema>;
export type Toleration = z.infer<typeof tolerationSchema>;

/** Hoist's version; the default image tag and the chart's appVersion. */
export const HOIST_VERSION = '0.1.0';

const PUBLIC_REGISTRIES: Record<string, string> = {
  'docker.io': 'https://registry-1.docker.io',
  'gcr.io': 'https://gcr.io',
  'ghcr.io': 'https://ghcr.io',
  'nvcr.io': 'https://nvcr.io',
  'public.ecr.aws': 'https://public.ecr.aws',
  'quay.io': 'https://quay.io',
  'registry.k8s.io': 'https://registry.k8s.io',
};

const TOLERATE_ALL: Toleration[] = [{ operator: 'Exists' }];

/** Every default in one place; deploy/helm/hoist/values.yaml documents the same, field by field. */
export const DEFAULT_VALUES: Values = {
  fullnameOverride: '',
  image: { repository: 'ghcr.io/hoist-dev/hoist', tag: '', digest: '', pullPolicy: 'IfNotPresent' },
  imagePullSecrets: [],
  mirror: {
    enabled: true,
    mode: 'node',
    port: 5000,
    config: {
      defaultUpstream: 'docker.io',
      upstreams: Object.fromEntries(Object.entries(PUBLIC_REGISTRIES).map(([k, url]) => [k, { url }])),
      // The node-local store shares the disk with containerd's images: evict before the
      // kubelet's image GC (85% by default) has to.
      gc: { highWatermarkPercent: 80, lowWatermarkPercent: 70 },
    },
    credentialsSecret: '',
    peers: { enabled: false, tokenSecret: '', token: '', fanout: 1 },
    nodeSelector: {},
    priorityClassName: '',
    podAnnotations: {},
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    extraArgs: [],
    node: {
      listenAddress: '127.0.0.1',
      storage: { type: 'hostPath', hostPath: '/var/lib/hoist/mirror', sizeLimit: '' },
      // Not a group of the image (root 0, nonroot 65532, nobody 65534).
      metricsSocketGroup: 65533,
      maxUnavailable: 1,
      tolerations: TOLERATE_ALL,
    },
    zone: {
      replicas: 3,
      trafficDistribution: 'PreferClose',
      topologyAwareRouting: false,
      storageSizeLimit: '100Gi',
      affinity: {},
      tolerations: [],
    },
  },
  agent: {
    enabled: true,
    mirrorUrl: '',
    containerd: {
      socket: '/run/containerd/containerd.sock',
      configFile: '/etc/containerd/config.toml',
      certsDir: '/etc/containerd/certs.d',
    },
    concurrency: 2,
    diskHighWater: '85%',
    pinBudgetBytes: 0,
    listenPort: 5010,
    logLevel: 'info',
    maxUnavailable: '10%',
    nodeSelector: {},
    tolerations: TOLERATE_ALL,
    priorityClassName: '',
    podAnnotations: {},
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    extraArgs: [],
  },
  controller: {
    enabled: true,
    replicas: 2,
    leaseName: '',
    metricsPort: 8080,
    logLevel: 'info',
    affinity: {},
    nodeSelector: {},
    tolerations: [],
    priorityClassName: '',
    podAnnotations: {},
    resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
    extraArgs: [],
  },
  metrics: { podMonitor: { enabled: false, interval: '30s', labels: {} } },
  grafana: { dashboard: { enabled: false, namespace: '', labels: {}, annotations: {} } },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge: maps key by key, everything else replaces; `null` deletes the key. */
export function mergeValues(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else out[key] = key in base ? mergeValues(base[key], value) : value;
  }
  return out;
}

/**
 * Values files (later ones win) merged over the defaults and validated. A bad value throws
 * InstallError naming its key path (`mirror.mode: Invalid option: ...`).
 */
export function resolveValues(...layers: unknown[]): Values {
  let merged: unknown = structuredClone(DEFAULT_VALUES);
  for (const layer of layers) {
    if (layer === undefined || layer === null) continue;
    if (!isPlainObject(layer)) throw new InstallError('VALUES_INVALID', 'values must be a YAML mapping');
    merged = mergeValues(merged, layer);
  }
  const parsed = valuesSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map(String).join('.') || '(top level)';
    throw new InstallError('VALUES_INVALID', `${path}: ${issue?.message ?? 'invalid value'}`);
  }
  return parsed.data;
}

/** The schema Helm checks values against (deploy/helm/hoist/values.schema.json). */
export function valuesJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(valuesSchema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
}
