import { failureReason, statusMessage } from './failure-reason.js';
import { normaliseImage } from './assignments.js';
import type { ImageStatus, PullSpec } from './pull-queue.js';
import {
  summariseNodePullStatus,
  type NodePullImageStatus,
  type NodePullMirrorStatus,
  type NodePullStatus,
  type NodePullSummary,
  type PullPhase,
} from '../prepull/index.js';

export type { NodePullImageStatus, NodePullMirrorStatus, NodePullStatus, NodePullSummary };
export type NodePullPhase = PullPhase;

/**
 * The NodePull resource as the agent sees it (docs/prepull.md): the controller owns `spec`, the
 * agent on the node owns `status`. Pure: reading the spec with its defaults, and building the
 * status from the pull queue's state.
 */

export const NODEPULL_GROUP = 'prepull.hoist.dev';
export const NODEPULL_VERSION = 'v1alpha1';
export const NODEPULL_PLURAL = 'nodepulls';

/** The PrePull defaults (docs/prepull.md), for entries that leave them out. */
export const DEFAULT_RETRY_LIMIT = 5;
export const DEFAULT_RETRY_BACKOFF_SECONDS = 10;
export const DEFAULT_PROGRESS_TIMEOUT_SECONDS = 300;
/** The CRD's bounds for spec.maxConcurrentPulls. */
export const MAX_CONCURRENT_PULLS = 16;

export interface NodePullImageSpec {
  image: string;
  digest?: string;
  pin?: boolean;
  pullSecrets?: string[];
  retryLimit?: number;
  retryBackoffSeconds?: number;
  progressTimeoutSeconds?: number;
  sources?: string[];
  run?: string;
}

export interface NodePull {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; generation?: number; resourceVersion?: string; uid?: string };
  spec?: { nodeName?: string; maxConcurrentPulls?: number; images?: NodePullImageSpec[] };
  status?: NodePullStatus;
}

/** One spec entry, with defaults applied and its image normalised as the queue keys it. */
export interface WantedImage {
  /** As the spec names it; the status entry carries the same string. */
  image: string;
  /** The queue's key (containerd's normal form); undefined when the reference is invalid. */
  key?: string;
  /** Why the reference is unusable. */
  invalid?: string;
  digest?: string;
  pin: boolean;
  pullSecrets: string[];
  retryLimit: number;
  retryBackoffSeconds: number;
  progressTimeoutSeconds: number;
  /** The PrePull run that asks for it: when it moves, a failed image gets fresh attempts. */
  run?: string;
}

const wholeAtLeast = (value: unknown, min: number, fallback: number): number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min ? value : fallback;

/** Pure: the spec's entries with defaults; a repeated image keeps its first entry. */
export function wantedImages(nodePull: NodePull): WantedImage[] {
  const out = new Map<string, WantedImage>();
  for (const entry of nodePull.spec?.images ?? []) {
    if (typeof entry?.image !== 'string' || out.has(entry.image)) continue;
    const wanted: WantedImage = {
      image: entry.image,
      pin: entry.pin === true,
      pullSecrets: Array.isArray(entry.pullSecrets)
        ? entry.pullSecrets.filter((s): s is string => typeof s === 'string' && s !== '')
        : [],
      retryLimit: wholeAtLeast(entry.retryLimit, 0, DEFAULT_RETRY_LIMIT),
      retryBackoffSeconds: wholeAtLeast(entry.retryBackoffSeconds, 0, DEFAULT_RETRY_BACKOFF_SECONDS),
      progressTimeoutSeconds: wholeAtLeast(entry.progressTimeoutSeconds, 1, DEFAULT_PROGRESS_TIMEOUT_SECONDS),
    };
    if (typeof entry.digest === 'string' && entry.digest !== '') wanted.digest = entry.digest;
    if (typeof entry.run === 'string' && entry.run !== '') wanted.run = entry.run;
    try {
      wanted.key = normaliseImage(entry.image);
    } catch (err) {
      wanted.invalid = `invalid image reference: ${(err as Error).message}`;
    }
    out.set(entry.image, wanted);
  }
  return [...out.values()];
}

/** Pure: spec.maxConcurrentPulls within the CRD's bounds, else `fallback`. */
export function concurrencyOf(nodePull: NodePull, fallback: number): number {
  const n = nodePull.spec?.maxConcurrentPulls;
  return typeof n === 'number' && Number.isInteger(n) && n >= 1
    ? Math.min(n, MAX_CONCURRENT_PULLS)
    : fallback;
}

/** What a pull needs from an entry; when it changes, the image is pulled afresh. */
export function pullSpecOf(w: WantedImage): PullSpec {
  return {
    ...(w.digest !== undefined ? { digest: w.digest } : {}),
    retryLimit: w.retryLimit,
    retryBackoffSeconds: w.retryBackoffSeconds,
    progressTimeoutSeconds: w.progressTimeoutSeconds,
  };
}

/**
 * Pure: the fields whose change restarts an image's pull (everything but `pin`, `sources` and
 * `run`: a new run retries only a failed image, see NodePullSync.apply).
 */
export function pullIdentity(w: WantedImage): string {
  return JSON.stringify([w.key, w.invalid, pullSpecOf(w), w.pullSecrets]);
}

const PHASES: Record<ImageStatus['state'], NodePullPhase> = {
  pending: 'Pending',
  pulling: 'Pulling',
  present: 'Succeeded',
  failed: 'Failed',
};

/** What the pin step found for a present image. */
export interface PinState {
  /** As CRI ImageStatus reports it. */
  pinned: boolean;
  /** Why it is not pinned as asked (over the budget, a failed label update). */
  message?: string;
}

/** Pure: one image's status from its spec entry, the queue's state and the pin step. */
export function imageStatusOf(
  w: WantedImage,
  queued: ImageStatus | undefined,
  pin: PinState | undefined,
): NodePullImageStatus {
  // The run this state answers, so the controller can tell last night's failure from tonight's.
  const run = w.run === undefined ? {} : { run: w.run };
  if (w.invalid !== undefined) {
    return {
      image: w.image,
      phase: 'Failed',
      reason: 'PullError',
      message: statusMessage(w.invalid),
      attempts: 0,
      ...run,
    };
  }
  const out: NodePullImageStatus = {
    image: w.image,
    phase: queued ? PHASES[queued.state] : 'Pending',
    ...run,
  };
  const digest = queued?.state === 'present' ? (queued.digest ?? w.digest) : (w.digest ?? queued?.digest);
  if (digest !== undefined) out.digest = digest;
  if (!queued) return out;
  // A failure's reason stays while its retry waits (phase Pending).
  if (queued.code !== undefined && (queued.state === 'failed' || queued.state === 'pending')) {
    out.reason = failureReason({
      code: queued.code,
      runtimeCode: queued.runtimeCode,
      message: queued.reason,
    });
    out.message = statusMessage(queued.reason ?? '');
  }
  if (queued.attempts !== undefined) out.attempts = queued.attempts;
  if (queued.state === 'present') {
    if (queued.imageRef) out.imageId = queued.imageRef;
    if (queued.sizeBytes !== undefined) out.sizeBytes = queued.sizeBytes;
    out.pinned = pin?.pinned ?? false;
    const notes: string[] = [];
    if (w.digest !== undefined && queued.digest !== undefined && queued.digest !== w.digest)
      notes.push(`the tag now points at ${queued.digest}, not the expected ${w.digest}`);
    if (pin?.message) notes.push(pin.message);
    if (notes.length > 0) out.message = statusMessage(notes.join('; '));
  }
  if (queued.startedAt) out.startedAt = queued.startedAt;
  if (queued.finishedAt && (queued.state === 'present' || queued.state === 'failed'))
    out.finishedAt = queued.finishedAt;
  return out;
}

/** Pure: the counts by phase. */
export function summaryOf(images: readonly NodePullImageStatus[]): NodePullSummary {
  return summariseNodePullStatus(images);
}
