import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DiskCheck, GuardDecision } from './disk-guard.js';
import type { AgentMetrics } from './metrics.js';
import { imageSizeBucket } from './metrics.js';

/**
 * The agent's pull queue: images assigned to this node, pulled a bounded number at a time, each
 * with a state a controller or dashboard can read. It knows nothing of where assignments come
 * from (the HTTP endpoint, a file, later the PrePull controller) nor of CRI: the runtime is the
 * ImageRuntime interface.
 */

export type ImageState = 'pending' | 'pulling' | 'present' | 'failed';

export interface ImageStatus {
  /** The image reference as assigned (normalised: registry/repository:tag[@digest]). */
  image: string;
  state: ImageState;
  /** Stable code when failed: PULL_FAILED, DISK_HIGH_WATER, DISK_UNKNOWN. */
  code?: string;
  /** Why it failed, one line. */
  reason?: string;
  /** The runtime's image ID once present. */
  imageRef?: string;
  sizeBytes?: number;
  /** True when it was already on the node and no pull happened. */
  alreadyPresent?: boolean;
  /** Wall time of the pull, when one happened. */
  pullSeconds?: number;
  /** The disk check before the pull: usage, the size estimate (or why there is none), the mark. */
  disk?: DiskCheck;
  /** Who asked for it (e.g. "http", "file:/etc/hoist/images"). */
  source: string;
  assignedAt: string;
  updatedAt: string;
}

/** What the queue needs from the container runtime. */
export interface ImageRuntime {
  /** The image's ID and size when present, else undefined. */
  status(image: string): Promise<{ id: string; size: number } | undefined>;
  /** Pulls; resolves with the image ID. */
  pull(image: string, signal: AbortSignal): Promise<string>;
}

/** Checked before each pull: refuse (with a code and reason) or go ahead, and what it saw. */
export type PullGuard = (image: string, signal: AbortSignal) => Promise<GuardDecision>;

export interface PullQueueOptions {
  runtime: ImageRuntime;
  /** Pulls at a time (kubelet: maxParallelImagePulls). */
  concurrency: number;
  guard?: PullGuard;
  metrics?: AgentMetrics;
  logger?: Logger;
  now?: () => Date;
}

export class PullQueue extends EventEmitter<{ change: [ImageStatus] }> {
  private readonly images = new Map<string, ImageStatus>();
  private readonly waiting: string[] = [];
  private running = 0;
  private readonly abort = new AbortController();
  private readonly opts: PullQueueOptions;
  private readonly now: () => Date;

  constructor(opts: PullQueueOptions) {
    super();
    if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
      throw new Error(`pull concurrency must be a whole number >= 1, got ${opts.concurrency}`);
    }
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Adds images to pull. An image already pending or pulling is left alone; one present or failed
   * is queued again (a present image is re-checked, since the kubelet may have removed it).
   */
  assign(images: readonly string[], source: string): ImageStatus[] {
    const out: ImageStatus[] = [];
    for (const image of images) {
      const existing = this.images.get(image);
      if (existing && (existing.state === 'pending' || existing.state === 'pulling')) {
        out.push(existing);
        continue;
      }
      const at = this.now().toISOString();
      const status: ImageStatus = { image, state: 'pending', source, assignedAt: at, updatedAt: at };
      this.set(status);
      this.waiting.push(image);
      out.push(status);
    }
    this.pump();
    return out;
  }

  list(): ImageStatus[] {
    return [...this.images.values()].map((s) => ({ ...s }));
  }

  get(image: string): ImageStatus | undefined {
    const s = this.images.get(image);
    return s ? { ...s } : undefined;
  }

  /** Resolves once nothing is pending or pulling. */
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

  /** Cancels pulls in progress; nothing new starts. */
  close(): void {
    this.abort.abort(new Error('the agent is shutting down'));
    this.waiting.length = 0;
  }

  private busy(): number {
    let n = 0;
    for (const s of this.images.values()) if (s.state === 'pending' || s.state === 'pulling') n++;
    return n;
  }

  private set(status: ImageStatus): void {
    const prev = this.images.get(status.image);
    this.images.set(status.image, status);
    const gauge = this.opts.metrics?.images;
    if (gauge) {
      if (prev) gauge.dec({ state: prev.state });
      gauge.inc({ state: status.state });
    }
    this.emit('change', { ...status });
  }

  private update(image: string, patch: Partial<ImageStatus>): void {
    const prev = this.images.get(image);
    if (!prev) return;
    const next: ImageStatus = { ...prev, ...patch, updatedAt: this.now().toISOString() };
    for (const key of Object.keys(next) as Array<keyof ImageStatus>)
      if (next[key] === undefined) delete next[key];
    this.set(next);
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.waiting.length > 0 && !this.abort.signal.aborted) {
      const image = this.waiting.shift()!;
      this.running++;
      void this.work(image).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async work(image: string): Promise<void> {
    const { runtime, metrics, logger } = this.opts;
    const clear = {
      code: undefined,
      reason: undefined,
      alreadyPresent: undefined,
      pullSeconds: undefined,
      disk: undefined,
    };
    let release: ((ok: boolean) => void) | undefined;
    let disk: DiskCheck | undefined;
    try {
      const present = await runtime.status(image);
      if (present) {
        metrics?.pulls.inc({ outcome: 'already_present' });
        this.update(image, {
          ...clear,
          state: 'present',
          imageRef: present.id,
          sizeBytes: present.size,
          alreadyPresent: true,
        });
        return;
      }
      const decision = (await this.opts.guard?.(image, this.abort.signal)) ?? {};
      disk = decision.disk;
      const refusal = decision.refuse;
      if (refusal) {
        metrics?.pulls.inc({ outcome: 'refused' });
        logger?.warn({ image, code: refusal.code, reason: refusal.reason }, 'pull refused');
        this.update(image, { ...clear, state: 'failed', code: refusal.code, reason: refusal.reason, disk });
        return;
      }
      if (disk?.estimateError)
        logger?.warn({ image, reason: disk.estimateError }, 'image size not estimated');
      release = decision.release;
      this.update(image, { ...clear, state: 'pulling', disk });
      const started = process.hrtime.bigint();
      const imageRef = await runtime.pull(image, this.abort.signal);
      release?.(true);
      release = undefined;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const after = await runtime.status(image);
      const size = after?.size ?? 0;
      metrics?.pulls.inc({ outcome: 'pulled' });
      metrics?.pullBytes.inc(size);
      metrics?.pullDuration.observe({ image_size_in_bytes: imageSizeBucket(size) }, seconds);
      logger?.info({ image, imageRef, sizeBytes: size, seconds }, 'pulled');
      this.update(image, {
        ...clear,
        state: 'present',
        imageRef,
        sizeBytes: size,
        pullSeconds: seconds,
        alreadyPresent: false,
        disk,
      });
    } catch (err) {
      release?.(false);
      const reason = err instanceof Error ? err.message : String(err);
      metrics?.pulls.inc({ outcome: 'failed' });
      logger?.warn({ image, err: reason }, 'pull failed');
      this.update(image, { ...clear, state: 'failed', code: 'PULL_FAILED', reason, disk });
    }
  }
}
