/**
 * The PrePull and NodePull resources (docs/prepull.md), as the API server stores them, and the
 * few core/v1 Node fields the planner reads. Field names follow the Kubernetes API conventions.
 */

import type { ObjectMeta, OwnerReference } from '../kube/index.js';

export const GROUP = 'prepull.hoist.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const PREPULL_KIND = 'PrePull';
export const NODEPULL_KIND = 'NodePull';
export const PREPULL_PLURAL = 'prepulls';
export const NODEPULL_PLURAL = 'nodepulls';
/** On a NodePull: when the controller last changed its spec (RFC 3339), for agent liveness. */
export const SPEC_TIME_ANNOTATION = 'prepull.hoist.dev/spec-time';
/** The failure reason of images on a node whose agent stopped reporting. */
export const AGENT_UNAVAILABLE = 'AgentUnavailable';

/** Limits the CRD enforces, and the zod schema again (spec.ts). */
export const LIMITS = {
  maxImages: 256,
  maxImageLength: 512,
  maxPullSecrets: 16,
  maxSelectorPairs: 64,
  maxTolerations: 64,
  maxScheduleLength: 128,
  maxTimeZoneLength: 64,
  maxPullsPerNode: 16,
  maxRetryLimit: 100,
  /** Backoff doubles per attempt and is capped at 10 minutes (docs/prepull.md). */
  maxBackoffSeconds: 600,
  minProgressTimeoutSeconds: 10,
  maxProgressTimeoutSeconds: 86_400,
  /** Failures listed per image in PrePull status. */
  maxFailuresPerImage: 20,
  /** Entries in one NodePull (every PrePull's images on that node). */
  maxNodePullImages: 4096,
  maxMessageLength: 1024,
} as const;

export const DEFAULTS = {
  suspend: false,
  maxConcurrentNodes: 1,
  maxConcurrentPullsPerNode: 2,
  retryLimit: 5,
  retryBackoffSeconds: 10,
  progressTimeoutSeconds: 300,
  pin: false,
} as const;

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';

/** core/v1 Toleration. */
export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: TaintEffect | '';
  tolerationSeconds?: number;
}

/** core/v1 Taint. */
export interface Taint {
  key: string;
  value?: string;
  effect: TaintEffect | string;
}

export type { ObjectMeta, OwnerReference };

/** The spec as users write it (before defaults and normalisation). */
export interface PrePullSpecInput {
  images: string[];
  imagePullSecrets?: Array<{ name: string }>;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  schedule?: string;
  timeZone?: string;
  suspend?: boolean;
  maxConcurrentNodes?: number | string;
  maxConcurrentPullsPerNode?: number;
  retry?: { limit?: number; backoffSeconds?: number };
  progressTimeoutSeconds?: number;
  pin?: boolean;
}

/** standard metav1.Condition. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface ImageFailure {
  node: string;
  reason: string;
  message?: string;
}

export interface PrePullImageStatus {
  image: string;
  digest?: string;
  resolveError?: string;
  desired: number;
  pulling: number;
  succeeded: number;
  failed: number;
  failures?: ImageFailure[];
}

export interface NodeCounts {
  desired: number;
  pulling: number;
  succeeded: number;
  failed: number;
}

export interface PrePullStatus {
  observedGeneration?: number;
  /** Number of images in the spec, for the `Images` printer column. */
  imageCount?: number;
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  nodes?: NodeCounts;
  images?: PrePullImageStatus[];
  conditions?: Condition[];
}

export interface PrePull {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: PrePullSpecInput;
  status?: PrePullStatus;
}

export interface NodePullImage {
  image: string;
  digest?: string;
  /** Optional in the CRD (an entry written by hand or by an older controller): absent is false. */
  pin?: boolean;
  pullSecrets?: string[];
  retryLimit: number;
  retryBackoffSeconds: number;
  progressTimeoutSeconds: number;
  sources: string[];
  /**
   * The PrePull run that last asked for this entry (its status.lastScheduleTime, RFC 3339; the
   * newest among merged sources). When it moves, the agent gives a failed image fresh attempts.
   */
  run?: string;
}

export interface NodePullSpec {
  nodeName: string;
  maxConcurrentPulls: number;
  images: NodePullImage[];
}

export type PullPhase = 'Pending' | 'Pulling' | 'Succeeded' | 'Failed';

export interface NodePullImageStatus {
  image: string;
  digest?: string;
  phase: PullPhase;
  reason?: string;
  message?: string;
  attempts?: number;
  imageId?: string;
  sizeBytes?: number;
  pinned?: boolean;
  startedAt?: string;
  finishedAt?: string;
  /** The spec entry's `run` this state answers (the agent echoes it): a failure of an older run is retried. */
  run?: string;
}

/** Counts of `status.images` by phase, for `kubectl get nodepulls` (the agent writes them). */
export interface NodePullSummary {
  images: number;
  pending: number;
  pulling: number;
  succeeded: number;
  failed: number;
}

export interface NodePullStatus {
  observedGeneration?: number;
  /** The agent's last sign of life: renewed on each new spec and every minute while pulling. */
  heartbeatTime?: string;
  images?: NodePullImageStatus[];
  summary?: NodePullSummary;
  /** The node mirror's cache figures, as the agent last read them (docs/prepull.md). */
  mirror?: NodePullMirrorStatus;
}

/**
 * The node's mirror as its agent reads it from the mirror's /metrics (counters are totals since
 * the mirror started), so the controller's dashboard has per-node cache figures even where it
 * cannot reach the mirror (a node mirror on 127.0.0.1). Same names as the dashboard's.
 */
export interface NodePullMirrorStatus {
  /** hoist_mirror_store_bytes */
  storeBytes: number;
  /** hoist_mirror_cache_lookups_total{kind="blob"}: hits and all lookups. */
  blobHits: number;
  blobLookups: number;
  /** hoist_mirror_served_bytes_total, every source. */
  servedBytes: number;
  /** Fetched from upstream registries. */
  upstreamBytes: number;
  /** Fetched from peer mirrors; absent until peer sharing reports it. */
  peerBytes?: number;
  /** When the agent read these figures (RFC 3339); renewed only when they change. */
  observedAt: string;
}

export interface NodePull {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: NodePullSpec;
  status?: NodePullStatus;
}

/** The core/v1 Node fields the planner reads. */
export interface Node {
  metadata: ObjectMeta;
  spec?: { taints?: Taint[]; unschedulable?: boolean };
}

/** `namespace/name`, how NodePull `sources` and logs name a PrePull. */
export function prePullKey(meta: Pick<ObjectMeta, 'namespace' | 'name'>): string {
  return `${meta.namespace ?? ''}/${meta.name}`;
}
