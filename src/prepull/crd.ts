import { stringify } from 'yaml';
import {
  CRON_PATTERN,
  DNS_SUBDOMAIN_PATTERN,
  IMAGE_REFERENCE_PATTERN,
  PERCENT_PATTERN,
  TIME_ZONE_PATTERN,
} from './patterns.js';
import {
  DEFAULTS,
  GROUP,
  LIMITS,
  NODEPULL_KIND,
  NODEPULL_PLURAL,
  PREPULL_KIND,
  PREPULL_PLURAL,
  VERSION,
} from './types.js';

/**
 * The PrePull and NodePull CustomResourceDefinitions (apiextensions.k8s.io/v1), built here and
 * written to deploy/crds/ (crd.test.ts fails when the files are stale; HOIST_WRITE_CRDS=1 rewrites
 * them). Structural schemas with the rules of docs/prepull.md, so the API server refuses a bad
 * object before the controller ever sees it; CEL (`x-kubernetes-validations`) where a rule is
 * more than one keyword, every list and string bounded so the rules stay within the CEL cost
 * budget.
 */

type Schema = Record<string, unknown>;

const str = (maxLength: number, extra: Schema = {}): Schema => ({ type: 'string', maxLength, ...extra });
const int = (minimum: number, maximum: number, extra: Schema = {}): Schema => ({
  type: 'integer',
  format: 'int32',
  minimum,
  maximum,
  ...extra,
});
const count = (description: string): Schema => ({
  type: 'integer',
  format: 'int32',
  minimum: 0,
  description,
});
const timestamp = (description: string): Schema => ({ type: 'string', format: 'date-time', description });

const tolerationSchema: Schema = {
  type: 'object',
  description: 'A core/v1 Toleration, with the same semantics as on a Pod.',
  properties: {
    key: str(317, { description: 'Taint key; empty with operator Exists tolerates every taint.' }),
    operator: { type: 'string', enum: ['Exists', 'Equal'], description: 'Equal (default) or Exists.' },
    value: str(63, { description: 'Taint value for Equal; empty for Exists.' }),
    effect: {
      type: 'string',
      enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute', ''],
      description: 'Effect to match; empty matches every effect.',
    },
    tolerationSeconds: {
      type: 'integer',
      format: 'int64',
      description: 'As on a Pod; not used for targeting.',
    },
  },
  'x-kubernetes-validations': [
    {
      rule: "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
      message: 'value must be empty when operator is Exists',
      fieldPath: '.value',
    },
    {
      rule: "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
      message: 'operator must be Exists when key is empty',
      fieldPath: '.operator',
    },
  ],
};

const conditionSchema: Schema = {
  type: 'object',
  description: 'A standard metav1.Condition.',
  required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
  properties: {
    type: str(316),
    status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
    reason: str(1024),
    message: str(32768),
    lastTransitionTime: { type: 'string', format: 'date-time' },
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
  },
};

const prePullSpec: Schema = {
  type: 'object',
  required: ['images'],
  properties: {
    images: {
      type: 'array',
      description:
        'Images to pre-pull: references with a tag or a digest, normalised as containerd names them (nginx means docker.io/library/nginx:latest).',
      minItems: 1,
      maxItems: LIMITS.maxImages,
      'x-kubernetes-list-type': 'set',
      items: str(LIMITS.maxImageLength, { pattern: IMAGE_REFERENCE_PATTERN }),
    },
    imagePullSecrets: {
      type: 'array',
      description: 'Secrets of type kubernetes.io/dockerconfigjson in this namespace, as a Pod names them.',
      maxItems: LIMITS.maxPullSecrets,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['name'],
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: str(253, { pattern: DNS_SUBDOMAIN_PATTERN }) },
      },
    },
    nodeSelector: {
      type: 'object',
      description: 'Labels a node must all have (Pod nodeSelector semantics).',
      maxProperties: LIMITS.maxSelectorPairs,
      additionalProperties: str(63),
    },
    tolerations: {
      type: 'array',
      description:
        'Taints to tolerate (Pod semantics): a node with an untolerated NoSchedule or NoExecute taint is not a target.',
      maxItems: LIMITS.maxTolerations,
      'x-kubernetes-list-type': 'atomic',
      items: tolerationSchema,
    },
    schedule: str(LIMITS.maxScheduleLength, {
      description:
        'Standard five-field cron: re-resolve tags and refresh the nodes at these times. Without it: pull now and keep the images.',
      'x-kubernetes-validations': [
        {
          rule: `self.matches('${CRON_PATTERN}')`,
          message: 'must be five cron fields: minute hour day-of-month month day-of-week (e.g. "0 3 * * *")',
        },
      ],
    }),
    timeZone: str(LIMITS.maxTimeZoneLength, {
      description: 'IANA time zone of the schedule (default UTC).',
      pattern: TIME_ZONE_PATTERN,
    }),
    suspend: {
      type: 'boolean',
      default: DEFAULTS.suspend,
      description: 'No new runs and no new node starts while true.',
    },
    maxConcurrentNodes: {
      'x-kubernetes-int-or-string': true,
      default: DEFAULTS.maxConcurrentNodes,
      description:
        'Nodes pulling at once: an integer >= 1 or a percentage of the targets ("10%", rounded up, at least 1).',
      'x-kubernetes-validations': [
        {
          rule: `type(self) == int ? self >= 1 : self.matches('${PERCENT_PATTERN}')`,
          message: 'must be an integer >= 1 or a percentage from "1%" to "100%"',
        },
      ],
    },
    maxConcurrentPullsPerNode: int(1, LIMITS.maxPullsPerNode, {
      default: DEFAULTS.maxConcurrentPullsPerNode,
      description: 'Images pulled at once on one node.',
    }),
    retry: {
      type: 'object',
      description:
        'Per pull: attempts after the first, and the first backoff (doubling, capped at 10 minutes).',
      default: { limit: DEFAULTS.retryLimit, backoffSeconds: DEFAULTS.retryBackoffSeconds },
      properties: {
        limit: int(0, LIMITS.maxRetryLimit, { default: DEFAULTS.retryLimit }),
        backoffSeconds: int(1, LIMITS.maxBackoffSeconds, { default: DEFAULTS.retryBackoffSeconds }),
      },
    },
    progressTimeoutSeconds: int(LIMITS.minProgressTimeoutSeconds, LIMITS.maxProgressTimeoutSeconds, {
      default: DEFAULTS.progressTimeoutSeconds,
      description: 'A pull that makes no byte of progress for this long fails (reason Timeout).',
    }),
    pin: {
      type: 'boolean',
      default: DEFAULTS.pin,
      description: 'Label pulled images io.cri-containerd.pinned=pinned, so kubelet image GC keeps them.',
    },
  },
  'x-kubernetes-validations': [
    {
      rule: '!has(self.timeZone) || has(self.schedule)',
      message: 'timeZone is set only with schedule',
      fieldPath: '.timeZone',
      reason: 'FieldValueForbidden',
    },
  ],
};

const prePullStatus: Schema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
    imageCount: count('Images in the spec.'),
    lastScheduleTime: timestamp('When the last run resolved the tags.'),
    nextScheduleTime: timestamp('The next scheduled run.'),
    nodes: {
      type: 'object',
      description: 'Target nodes; a node counts once: failed if any image failed.',
      properties: {
        desired: count('Target nodes.'),
        pulling: count('Nodes started and not done.'),
        succeeded: count('Nodes holding every image.'),
        failed: count('Nodes where some image failed.'),
      },
    },
    images: {
      type: 'array',
      maxItems: LIMITS.maxImages,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['image'],
      items: {
        type: 'object',
        required: ['image'],
        properties: {
          image: str(LIMITS.maxImageLength),
          digest: str(256, { description: 'Resolved at the last run.' }),
          resolveError: str(LIMITS.maxMessageLength, { description: 'Why the last resolution failed.' }),
          desired: count('Target nodes.'),
          pulling: count('Nodes pulling it.'),
          succeeded: count('Nodes holding it at the digest.'),
          failed: count('Nodes where it failed.'),
          failures: {
            type: 'array',
            maxItems: LIMITS.maxFailuresPerImage,
            description: `At most ${LIMITS.maxFailuresPerImage}, by node name.`,
            items: {
              type: 'object',
              required: ['node', 'reason'],
              properties: {
                node: str(253),
                reason: str(64),
                message: str(LIMITS.maxMessageLength),
              },
            },
          },
        },
      },
    },
    conditions: {
      type: 'array',
      maxItems: 8,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
      items: conditionSchema,
    },
  },
};

const nodePullSpec: Schema = {
  type: 'object',
  required: ['nodeName', 'images'],
  properties: {
    nodeName: str(253),
    maxConcurrentPulls: int(1, LIMITS.maxPullsPerNode, { default: DEFAULTS.maxConcurrentPullsPerNode }),
    images: {
      type: 'array',
      maxItems: LIMITS.maxNodePullImages,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['image'],
      items: {
        type: 'object',
        required: ['image'],
        properties: {
          image: str(LIMITS.maxImageLength, {
            description: 'Pulled by this name, so the kubelet finds the tag.',
          }),
          digest: str(256, {
            description: 'Expected manifest digest; a node holding another digest re-pulls.',
          }),
          pin: { type: 'boolean' },
          pullSecrets: { type: 'array', maxItems: 64, items: str(253) },
          retryLimit: int(0, LIMITS.maxRetryLimit),
          retryBackoffSeconds: int(1, LIMITS.maxBackoffSeconds),
          progressTimeoutSeconds: int(LIMITS.minProgressTimeoutSeconds, LIMITS.maxProgressTimeoutSeconds),
          sources: {
            type: 'array',
            maxItems: 1024,
            items: str(317),
            description: 'PrePulls (namespace/name) that want it.',
          },
          run: {
            type: 'string',
            format: 'date-time',
            description:
              'The PrePull run that last asked for it (newest among sources); when it moves, a failed image is tried again.',
          },
        },
      },
    },
  },
};

/** A byte or request counter as the mirror exports it: a whole number, never negative. */
const counter = (description: string): Schema => ({
  type: 'integer',
  format: 'int64',
  minimum: 0,
  description,
});

const nodePullMirrorStatus: Schema = {
  type: 'object',
  description:
    "The node mirror's cache figures as the agent last read them from its /metrics (totals since the mirror started); absent while the agent cannot read them.",
  required: ['storeBytes', 'blobHits', 'blobLookups', 'servedBytes', 'upstreamBytes', 'observedAt'],
  properties: {
    storeBytes: counter('Bytes in the store.'),
    blobHits: counter('Blob lookups answered from the store.'),
    blobLookups: counter('Blob lookups.'),
    servedBytes: counter('Blob bytes sent to clients.'),
    upstreamBytes: counter('Blob bytes fetched from upstream registries.'),
    peerBytes: counter('Blob bytes fetched from peer mirrors.'),
    observedAt: {
      type: 'string',
      format: 'date-time',
      description: 'When the agent read these figures; renewed only when they change.',
    },
  },
  // Hits are a subset of lookups (both from one /metrics page): anything else is a bad writer.
  'x-kubernetes-validations': [
    { rule: 'self.blobHits <= self.blobLookups', message: 'blobHits cannot exceed blobLookups' },
  ],
};

const nodePullStatus: Schema = {
  type: 'object',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
    heartbeatTime: {
      type: 'string',
      format: 'date-time',
      description:
        "The agent's last sign of life: renewed when it sees a new spec and every minute while images are pending or pulling.",
    },
    summary: {
      type: 'object',
      description: 'Counts of status.images by phase, for kubectl get.',
      properties: {
        images: count('Images in status.'),
        pending: count('Pending.'),
        pulling: count('Pulling.'),
        succeeded: count('Succeeded.'),
        failed: count('Failed.'),
      },
    },
    images: {
      type: 'array',
      maxItems: LIMITS.maxNodePullImages,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['image'],
      items: {
        type: 'object',
        required: ['image', 'phase'],
        properties: {
          image: str(LIMITS.maxImageLength),
          digest: str(256),
          phase: { type: 'string', enum: ['Pending', 'Pulling', 'Succeeded', 'Failed'] },
          reason: str(64),
          message: str(LIMITS.maxMessageLength),
          attempts: { type: 'integer', format: 'int32', minimum: 0 },
          imageId: str(256),
          sizeBytes: { type: 'integer', format: 'int64', minimum: 0 },
          pinned: { type: 'boolean' },
          startedAt: { type: 'string', format: 'date-time' },
          finishedAt: { type: 'string', format: 'date-time' },
          run: {
            type: 'string',
            format: 'date-time',
            description: "The spec entry's run this state answers.",
          },
        },
      },
    },
    mirror: nodePullMirrorStatus,
  },
};

function crd(opts: {
  kind: string;
  plural: string;
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: Schema;
  status: Schema;
  columns: Schema[];
}): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${opts.plural}.${GROUP}`,
      labels: { 'app.kubernetes.io/name': 'hoist', 'app.kubernetes.io/component': 'prepull' },
    },
    spec: {
      group: GROUP,
      names: {
        kind: opts.kind,
        listKind: `${opts.kind}List`,
        plural: opts.plural,
        singular: opts.kind.toLowerCase(),
        categories: ['hoist'],
      },
      scope: opts.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: opts.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: opts.description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: opts.spec,
                status: opts.status,
              },
            },
          },
        },
      ],
    },
  };
}

const age = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

export function prePullCrd(): Record<string, unknown> {
  return crd({
    kind: PREPULL_KIND,
    plural: PREPULL_PLURAL,
    scope: 'Namespaced',
    description:
      'Images to pull onto chosen nodes before pods need them, kept there and refreshed on a schedule (docs/prepull.md).',
    spec: prePullSpec,
    status: prePullStatus,
    columns: [
      { name: 'Images', type: 'integer', jsonPath: '.status.imageCount' },
      { name: 'Desired', type: 'integer', jsonPath: '.status.nodes.desired' },
      { name: 'Succeeded', type: 'integer', jsonPath: '.status.nodes.succeeded' },
      { name: 'Failed', type: 'integer', jsonPath: '.status.nodes.failed' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
      { name: 'Last Run', type: 'date', jsonPath: '.status.lastScheduleTime' },
      age,
    ],
  });
}

export function nodePullCrd(): Record<string, unknown> {
  return crd({
    kind: NODEPULL_KIND,
    plural: NODEPULL_PLURAL,
    scope: 'Cluster',
    description:
      "One node's pre-pull work: the controller owns spec, the node's agent owns status (docs/prepull.md).",
    spec: nodePullSpec,
    status: nodePullStatus,
    columns: [
      { name: 'Images', type: 'integer', jsonPath: '.status.summary.images' },
      { name: 'Pulling', type: 'integer', jsonPath: '.status.summary.pulling' },
      { name: 'Succeeded', type: 'integer', jsonPath: '.status.summary.succeeded' },
      { name: 'Failed', type: 'integer', jsonPath: '.status.summary.failed' },
      age,
    ],
  });
}

const HEADER =
  '# Generated from src/prepull/crd.ts; do not edit (HOIST_WRITE_CRDS=1 node --import tsx --test src/prepull/crd.test.ts).\n';

/** The YAML of deploy/crds/<file>, by file name. */
export function crdFiles(): Record<string, string> {
  return {
    [`${GROUP}_${PREPULL_PLURAL}.yaml`]:
      HEADER + stringify(prePullCrd(), { lineWidth: 0, singleQuote: true }),
    [`${GROUP}_${NODEPULL_PLURAL}.yaml`]:
      HEADER + stringify(nodePullCrd(), { lineWidth: 0, singleQuote: true }),
  };
}
