import type { IngestStatus } from '../cri/index.js';
import type { StallWatch } from './pull-queue.js';
import { unrefTimers, type Timers } from './timers.js';

/**
 * Detects pulls that make no progress. CRI PullImage says nothing until it ends, but containerd
 * writes every blob it downloads through a content ingest whose offset grows as bytes arrive
 * (src/cri/pull-progress.ts); an ingest that appears or disappears (committed) is progress too.
 * The watchdog samples the ingests while at least one pull is watched, and gives up on a pull
 * when nothing moved for its timeout since it started or since the last movement.
 *
 * The ingests are the node's, not one pull's: while one pull downloads, another that is stuck is
 * not given up on until the first one stops moving. It errs towards letting a pull live; the
 * runtime's own image_pull_progress_timeout (containerd 1.7+) still applies per pull.
 * Unpacking after the last byte shows no ingest; a progress timeout shorter than the unpack of
 * the largest layer would cancel it.
 */

/** Pure: whether the ingests moved between two samples (an offset grew, one came or went). */
export function ingestsMoved(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): boolean {
  if (before.size !== after.size) return true;
  for (const [ref, offset] of after) {
    const prev = before.get(ref);
    if (prev === undefined || offset > prev) return true;
  }
  return false;
}

export interface ProgressWatchdogOptions {
  /** The runtime's content ingests in progress (CriClient.ingestStatuses). */
  sample: () => Promise<IngestStatus[]>;
  /** How often to sample while a pull is watched; default 1 s. */
  intervalMs?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
  timers?: Timers;
  /** Told once when sampling fails (e.g. a runtime without containerd's content service). */
  onSampleError?: (err: unknown) => void;
}

interface Watcher {
  timeoutMs: number;
  startedAt: number;
  onStall: () => void;
}

export class ProgressWatchdog implements StallWatch {
  private readonly watchers = new Set<Watcher>();
  private readonly opts: ProgressWatchdogOptions;
  private readonly now: () => number;
  private readonly timers: Timers;
  private last: Map<string, number> | undefined;
  private lastMovedAt = Number.NEGATIVE_INFINITY;
  private timer: unknown;
  private sampling = false;
  private sampleFailed = false;

  constructor(opts: ProgressWatchdogOptions) {
    this.opts = opts;
    this.now = opts.now ?? (() => performance.now());
    this.timers = opts.timers ?? unrefTimers;
  }

  watch(timeoutMs: number, onStall: () => void): () => void {
    const watcher: Watcher = { timeoutMs, startedAt: this.now(), onStall };
    this.watchers.add(watcher);
    this.schedule();
    return () => {
      this.watchers.delete(watcher);
      if (this.watchers.size === 0) this.stop();
    };
  }

  /** Takes one sample and gives up on the pulls that stalled (the timer calls it; tests too). */
  async tick(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      let statuses: IngestStatus[];
      try {
        statuses = await this.opts.sample();
      } catch (err) {
        // Without samples nothing can be judged: no pull is cancelled on a guess.
        if (!this.sampleFailed) this.opts.onSampleError?.(err);
        this.sampleFailed = true;
        this.last = undefined;
        this.lastMovedAt = this.now();
        return;
      }
      this.sampleFailed = false;
      const next = new Map(statuses.map((s) => [s.ref, s.offset]));
      const now = this.now();
      if (this.last === undefined || ingestsMoved(this.last, next)) this.lastMovedAt = now;
      this.last = next;
      for (const w of [...this.watchers]) {
        const since = Math.max(w.startedAt, this.lastMovedAt);
        if (now - since >= w.timeoutMs) {
          this.watchers.delete(w);
          w.onStall();
        }
      }
    } finally {
      this.sampling = false;
    }
  }

  private schedule(): void {
    if (this.timer !== undefined || this.watchers.size === 0) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => this.schedule());
    }, this.opts.intervalMs ?? 1000);
  }

  private stop(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.last = undefined;
  }
}
