import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DiskCheck, GuardDecision } from './disk-guard.js';
import type { AgentMetrics } from './metrics.js';
import { imageSizeBucket } from './metrics.js';
import { heldDigest, holdsDigest } from './repo-digests.js';
import { retryDelayMs } from './retry-backoff.js';
import { realTimers, type Timers } from './timers.js';

export type { Timers } from './timers.js';

/**
 * The agent's pull queue: images assigned to this node, pulled a bounded number at a time, each
 * with a state a controller or dashboard can read. It knows nothing of where assignments come
 * from (the HTTP endpoint, a file, the node's NodePull) nor of CRI: the runtime is the
 * ImageRuntime interface. Per assignment it can expect a digest, retry with exponential backoff
 * and cancel a pull that makes no progress (through a StallWatch).
 */

export type ImageState = 'pending' | 'pulling' | 'present' | 'failed';

export interface ImageStatus {
  /** The image reference as assigned (normalised: registry/repository:tag[@digest]). */
  image: string;
  state: ImageState;
  /**
   * Stable code when failed (or pending a retry after a failure): PULL_FAILED, PULL_TIMEOUT
   * (no progress), DISK_HIGH_WATER, DISK_UNKNOWN.
   */
  code?: string;
  /** The runtime's error code (CRI gRPC status name: NOT_FOUND, UNKNOWN...), when it gave one. */
  runtimeCode?: string;
  /** Why it failed, one line. */
  reason?: string;
  /** The runtime's image ID once present. */
  imageRef?: string;
  sizeBytes?: number;
  /** The manifest digest the runtime holds for this repository (from ImageStatus repoDigests). */
  digest?: string;
  /** True when it was already on the node and no pull happened. */
  alreadyPresent?: boolean;
  /** Wall time of the pull, when one happened. */
  pullSeconds?: number;
  /** The disk check before the pull: usage, the size estimate (or why there is none), the mark. */
  disk?: DiskCheck;
  /** Attempts made for this assignment (a presence check counts as one). */
  attempts?: number;
  /** When the next attempt starts, while a failed attempt waits for its retry. */
  retryAt?: string;
  /** When the first attempt of this assignment started, and when the last one ended. */
  startedAt?: string;
  finishedAt?: string;
  /** Who asked for it (e.g. "http", "file:/etc/hoist/images", "nodepull/NODE"). */
  source: string;
  assignedAt: string;
  updatedAt: string;
}

/** What the queue needs from the container runtime. */
export interface ImageRuntime {
  /** The image's ID, size and repo digests when present, else undefined. */
  status(image: string): Promise<{ id: string; size: number; repoDigests?: string[] } | undefined>;
  /** Pulls; resolves with the image ID. */
  pull(image: string, signal: AbortSignal): Promise<string>;
}

/** Checked before each pull: refuse (with a code and reason) or go ahead, and what it saw. */
export type PullGuard = (image: string, signal: AbortSignal) => Promise<GuardDecision>;

/** Watches pulls for progress: calls `onStall` once a pull made none for `timeoutMs`. */
export interface StallWatch {
  /** Starts watching one pull; the returned function stops. */
  watch(timeoutMs: number, onStall: () => void): () => void;
}

/** Per assignment: what to expect and how hard to try. */
export interface PullSpec {
  /** The expected manifest digest: a present image at another digest is pulled again. */
  digest?: string;
  /** Retries after a failed attempt (attempts = 1 + retryLimit); default 0. */
  retryLimit?: number;
  /** Wait before the first retry; doubles each time, capped at 10 minutes. Default 10. */
  retryBackoffSeconds?: number;
  /** Cancel a pull with no download progress for this long (needs the queue's stallWatch). */
  progressTimeoutSeconds?: number;
}

export interface PullQueueOptions {
  runtime: ImageRuntime;
  /** Pulls at a time (kubelet: maxParallelImagePulls). */
  concurrency: number;
  guard?: PullGuard;
  stallWatch?: StallWatch;
  metrics?: AgentMetrics;
  logger?: Logger;
  now?: () => Date;
  /** Retry waits; default the global timers. */
  timers?: Timers;
}

/** A pull by tag that brought another manifest than the one expected. */
export class DigestMismatchError extends Error {
  constructor(image: string, got: string, expected: string) {
    super(
      `${image} resolved to ${got} where it was pulled from, not ${expected} (a mirror's tag cache may lag the registry; retrying)`,
    );
    this.name = 'DigestMismatchError';
  }
}

/** The reason a pull's own signal aborts with when the StallWatch gives up on it. */
export class PullStalledError extends Error {
  constructor(readonly timeoutSeconds: number) {
    super(`no download progress for ${timeoutSeconds} s: pull cancelled`);
    this.name = 'PullStalledError';
  }
}

/** The reason a pull's own signal aborts with when its assignment is withdrawn. */
class DroppedError extends Error {
  constructor() {
    super('the image is no longer assigned');
    this.name = 'DroppedError';
  }
}

interface Entry {
  status: ImageStatus;
  spec: PullSpec;
  /** Changes with every (re)assignment, so a withdrawn attempt cannot write into a new one. */
  epoch: number;
  controller?: AbortController;
  retryTimer?: unknown;
}

function validConcurrency(n: number): number {
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`pull concurrency must be a whole number >= 1, got ${n}`);
  }
  return n;
}

export class PullQueue extends EventEmitter<{ change: [ImageStatus] }> {
  private readonly entries = new Map<string, Entry>();
  private readonly waiting: string[] = [];
  private running = 0;
  private concurrency: number;
  private epochs = 0;
  private readonly abort = new AbortController();
  private readonly opts: PullQueueOptions;
  private readonly now: () => Date;
  private readonly timers: Timers;

  constructor(opts: PullQueueOptions) {
    super();
    this.concurrency = validConcurrency(opts.concurrency);
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
    this.timers = opts.timers ?? realTimers;
  }

  /**
   * Adds images to pull. An image already pending (or waiting for a retry) or pulling is left
   * alone; one present or failed is queued again (a present image is re-checked, since the
   * kubelet may have removed it), with `spec` and fresh attempts.
   */
  assign(images: readonly string[], source: string, spec: PullSpec = {}): ImageStatus[] {
    const out: ImageStatus[] = [];
    for (const image of images) {
      const existing = this.entries.get(image);
      if (existing && (existing.status.state === 'pending' || existing.status.state === 'pulling')) {
        out.push({ ...existing.status });
        continue;
      }
      const at = this.now().toISOString();
      const status: ImageStatus = { image, state: 'pending', source, assignedAt: at, updatedAt: at };
      this.entries.set(image, { status, spec: { ...spec }, epoch: ++this.epochs });
      this.publish(existing?.status, status);
      this.waiting.push(image);
      out.push({ ...status });
    }
    this.pump();
    return out;
  }

  /**
   * Withdraws an assignment: a pull in progress is cancelled, a retry wait ends, and the image
   * leaves the list. The image itself stays in the runtime. False when it was not assigned.
   */
  drop(image: string): boolean {
    const entry = this.entries.get(image);
    if (!entry) return false;
    this.entries.delete(image);
    const at = this.waiting.indexOf(image);
    if (at >= 0) this.waiting.splice(at, 1);
    if (entry.retryTimer !== undefined) this.timers.clearTimeout(entry.retryTimer);
    entry.controller?.abort(new DroppedError());
    this.opts.metrics?.images.dec({ state: entry.status.state });
    return true;
  }

  /** Changes how many pulls run at once; pulls already running beyond a lower limit finish. */
  setConcurrency(concurrency: number): void {
    this.concurrency = validConcurrency(concurrency);
    this.pump();
  }

  getConcurrency(): number {
    return this.concurrency;
  }

  list(): ImageStatus[] {
    return [...this.entries.values()].map((e) => ({ ...e.status }));
  }

  get(image: string): ImageStatus | undefined {
    const e = this.entries.get(image);
    return e ? { ...e.status } : undefined;
  }

  /** Resolves once nothing is pending (retry waits included) or pulling. */
  idle(): Promise<void> {
    if (this.busy() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.busy() === 0) {
          this.off('change', check);
          resolve();
        }
      };
      this.on('change', check);
    });
  }

  /** Cancels pulls in progress and retry waits; nothing new starts. */
  close(): void {
    this.abort.abort(new Error('the agent is shutting down'));
    this.waiting.length = 0;
    for (const entry of this.entries.values()) {
      if (entry.retryTimer !== undefined) this.timers.clearTimeout(entry.retryTimer);
      entry.retryTimer = undefined;
    }
  }

  private busy(): number {
    let n = 0;
    for (const { status: s } of this.entries.values())
      if (s.state === 'pending' || s.state === 'pulling') n++;
    return n;
  }

  private publish(prev: ImageStatus | undefined, status: ImageStatus): void {
    const gauge = this.opts.metrics?.images;
    if (gauge) {
      if (prev) gauge.dec({ state: prev.state });
      gauge.inc({ state: status.state });
    }
    this.emit('change', { ...status });
  }

  /** Applies `patch` to the entry of this epoch; a withdrawn or re-assigned entry is left alone. */
  private update(image: string, epoch: number, patch: Partial<ImageStatus>): boolean {
    const entry = this.entries.get(image);
    if (!entry || entry.epoch !== epoch) return false;
    const prev = entry.status;
    const next: ImageStatus = { ...prev, ...patch, updatedAt: this.now().toISOString() };
    for (const key of Object.keys(next) as Array<keyof ImageStatus>)
      if (next[key] === undefined) delete next[key];
    entry.status = next;
    this.publish(prev, next);
    return true;
  }

  private pump(): void {
    while (this.running < this.concurrency && this.waiting.length > 0 && !this.abort.signal.aborted) {
      const image = this.waiting.shift()!;
      const entry = this.entries.get(image);
      if (!entry) continue;
      this.running++;
      void this.work(image, entry).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  /** After a failed attempt: wait and retry while attempts remain, else fail for good. */
  private fail(
    image: string,
    entry: Entry,
    patch: Partial<ImageStatus>,
    outcome: 'failed' | 'refused',
  ): void {
    const { spec, epoch } = entry;
    const attempts = entry.status.attempts ?? 1;
    const retries = spec.retryLimit ?? 0;
    const at = this.now();
    if (attempts <= retries && !this.abort.signal.aborted) {
      const delay = retryDelayMs(spec.retryBackoffSeconds ?? 10, attempts);
      this.update(image, epoch, {
        ...patch,
        state: 'pending',
        retryAt: new Date(at.getTime() + delay).toISOString(),
      });
      entry.retryTimer = this.timers.setTimeout(() => {
        entry.retryTimer = undefined;
        if (this.entries.get(image)?.epoch !== epoch || this.abort.signal.aborted) return;
        this.waiting.push(image);
        this.pump();
      }, delay);
      return;
    }
    this.opts.metrics?.pulls.inc({ outcome });
    this.update(image, epoch, { ...patch, state: 'failed', finishedAt: at.toISOString() });
  }

  private async work(image: string, entry: Entry): Promise<void> {
    const { runtime, metrics, logger, stallWatch } = this.opts;
    const { spec, epoch } = entry;
    const clear = {
      code: undefined,
      runtimeCode: undefined,
      reason: undefined,
      alreadyPresent: undefined,
      pullSeconds: undefined,
      disk: undefined,
      retryAt: undefined,
      finishedAt: undefined,
    };
    const controller = new AbortController();
    entry.controller = controller;
    const signal = AbortSignal.any([this.abort.signal, controller.signal]);
    const attempts = (entry.status.attempts ?? 0) + 1;
    const startedAt = entry.status.startedAt ?? this.now().toISOString();
    this.update(image, epoch, { attempts, startedAt, retryAt: undefined });
    let release: ((ok: boolean) => void) | undefined;
    let stopWatch: (() => void) | undefined;
    let disk: DiskCheck | undefined;
    try {
      const present = await runtime.status(image);
      if (present && (spec.digest === undefined || holdsDigest(image, present.repoDigests, spec.digest))) {
        metrics?.pulls.inc({ outcome: 'already_present' });
        this.update(image, epoch, {
          ...clear,
          state: 'present',
          imageRef: present.id,
          sizeBytes: present.size,
          digest: spec.digest ?? heldDigest(image, present.repoDigests),
          alreadyPresent: true,
          finishedAt: this.now().toISOString(),
        });
        return;
      }
      if (present) logger?.info({ image, expected: spec.digest }, 'present at another digest: pulling again');
      const decision = (await this.opts.guard?.(image, signal)) ?? {};
      disk = decision.disk;
      const refusal = decision.refuse;
      if (refusal) {
        logger?.warn({ image, code: refusal.code, reason: refusal.reason }, 'pull refused');
        this.fail(image, entry, { ...clear, code: refusal.code, reason: refusal.reason, disk }, 'refused');
        return;
      }
      if (disk?.estimateError)
        logger?.warn({ image, reason: disk.estimateError }, 'image size not estimated');
      release = decision.release;
      if (!this.update(image, epoch, { ...clear, state: 'pulling', disk })) throw new DroppedError();
      const timeout = spec.progressTimeoutSeconds;
      if (stallWatch && timeout !== undefined && timeout > 0) {
        stopWatch = stallWatch.watch(timeout * 1000, () => controller.abort(new PullStalledError(timeout)));
      }
      const started = process.hrtime.bigint();
      const imageRef = await runtime.pull(image, signal);
      stopWatch?.();
      release?.(true);
      release = undefined;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const after = await runtime.status(image);
      const size = after?.size ?? 0;
      const digest = heldDigest(image, after?.repoDigests);
      if (spec.digest !== undefined && digest !== undefined && digest !== spec.digest) {
        // The tag still names the old manifest where the runtime pulled it: typically a mirror
        // whose tag cache (tagTtlSeconds) lags the registry the controller resolved against.
        // Not done: retried with backoff until the tag catches up, then a failure to report.
        throw new DigestMismatchError(image, digest, spec.digest);
      }
      metrics?.pulls.inc({ outcome: 'pulled' });
      metrics?.pullBytes.inc(size);
      metrics?.pullDuration.observe({ image_size_in_bytes: imageSizeBucket(size) }, seconds);
      logger?.info({ image, imageRef, digest, sizeBytes: size, seconds }, 'pulled');
      this.update(image, epoch, {
        ...clear,
        state: 'present',
        imageRef,
        sizeBytes: size,
        digest,
        pullSeconds: seconds,
        alreadyPresent: false,
        disk,
        finishedAt: this.now().toISOString(),
      });
    } catch (err) {
      stopWatch?.();
      release?.(false);
      const why = controller.signal.aborted ? (controller.signal.reason as unknown) : undefined;
      if (why instanceof DroppedError || this.entries.get(image)?.epoch !== epoch) return;
      if (this.abort.signal.aborted) {
        const reason = err instanceof Error ? err.message : String(err);
        this.update(image, epoch, { ...clear, state: 'failed', code: 'PULL_FAILED', reason });
        return;
      }
      const stalled = why instanceof PullStalledError;
      const reason = stalled ? why.message : err instanceof Error ? err.message : String(err);
      const runtimeCode = !stalled ? (err as { code?: unknown }).code : undefined;
      logger?.warn({ image, err: reason, attempt: attempts }, 'pull failed');
      this.fail(
        image,
        entry,
        {
          ...clear,
          code: stalled
            ? 'PULL_TIMEOUT'
            : err instanceof DigestMismatchError
              ? 'DIGEST_MISMATCH'
              : 'PULL_FAILED',
          ...(typeof runtimeCode === 'string' ? { runtimeCode } : {}),
          reason,
          disk,
        },
        'failed',
      );
    } finally {
      if (entry.controller === controller) entry.controller = undefined;
    }
  }
}
