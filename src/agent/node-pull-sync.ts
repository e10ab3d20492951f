import type { Logger } from 'pino';
import type { PinOutcome } from '../cri/index.js';
import type { KubeSecret } from './pull-secrets.js';
import { PinBudget } from './pin-budget.js';
import type { ImageStatus, PullQueue } from './pull-queue.js';
import { delay, realTimers, type Timers } from './timers.js';
import { StatusWriter } from './status-writer.js';
import {
  concurrencyOf,
  imageStatusOf,
  pullIdentity,
  pullSpecOf,
  summaryOf,
  wantedImages,
  type NodePull,
  type NodePullMirrorStatus,
  type NodePullStatus,
  type PinState,
  type WantedImage,
} from './node-pull.js';

/**
 * The agent's side of the NodePull contract (docs/prepull.md): the node's NodePull spec drives
 * the pull queue, and the queue's state becomes the NodePull status. Level-triggered: every
 * change of the object is applied whole (entries added, changed, removed; the concurrency), never
 * as a diff of the event. Pins are set and removed one at a time after an image is present.
 */

/** The Kubernetes side, as the agent needs it (src/kube behind it; a fake in unit tests). */
export interface NodePullApi {
  /**
   * Watches the node's NodePull: calls `onChange` with it (undefined while there is none) after
   * the first list and on every change, until `signal` aborts. Resolves once the first list is in.
   */
  watch(onChange: (nodePull: NodePull | undefined) => void, signal: AbortSignal): Promise<void>;
  /** Merge-patches the status subresource. */
  patchStatus(status: NodePullStatus): Promise<void>;
  /** A Secret of the agent's namespace, undefined when there is none. */
  readSecret(name: string): Promise<KubeSecret | undefined>;
}

/** Pinning, as src/cri ImagePins does it. */
export interface PinPort {
  pin(image: string): Promise<PinOutcome>;
  unpin(image: string): Promise<PinOutcome>;
  records(image: string): Promise<Array<{ target: { digest: string } }>>;
  unpinAllExcept(keep: ReadonlySet<string>): Promise<PinOutcome>;
}

export interface NodePullSyncOptions {
  nodeName: string;
  queue: PullQueue;
  writeStatus: (status: NodePullStatus) => Promise<void>;
  /** Concurrency while the spec sets none. */
  defaultConcurrency: number;
  pins?: PinPort;
  /** CRI ImageStatus.pinned of a present image. */
  criPinned?: (image: string) => Promise<boolean>;
  pinBudgetBytes?: number;
  /**
   * After setting or removing a pin, how often to ask CRI again until it agrees (containerd 2.x
   * updates its CRI image cache from an event, a moment after the label). Default 10 x 200 ms.
   */
  pinCheck?: { attempts: number; intervalMs: number };
  statusIntervalMs?: number;
  /**
   * While any image is pending or pulling, status.heartbeatTime is renewed this often (default
   * 60 s), so that the controller can tell a slow pull from a dead agent (docs/prepull.md).
   */
  heartbeatIntervalMs?: number;
  /** Wall clock, for heartbeatTime. */
  wallClock?: () => Date;
  logger?: Logger;
  timers?: Timers;
  /** Monotonic milliseconds, for the status writer. */
  now?: () => number;
}

/** How long close() waits for the last status write. */
const CLOSE_FLUSH_MS = 5000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 60_000;

interface Tracked {
  wanted: WantedImage;
  identity: string;
}

export class NodePullSync {
  readonly source: string;
  private readonly opts: NodePullSyncOptions;
  private readonly tracked = new Map<string, Tracked>();
  private readonly pinStates = new Map<string, PinState>();
  private readonly budget: PinBudget;
  private readonly writer: StatusWriter<NodePullStatus>;
  private readonly timers: Timers;
  private generation: number | undefined;
  /** status.heartbeatTime, and the generation it was last renewed for. */
  private heartbeat: { time: string; generation: number | undefined } | undefined;
  private heartbeatTimer: unknown;
  private present = false;
  private mirror: NodePullMirrorStatus | undefined;
  private swept = false;
  /** The last spec applied had no entries (and its sweep is queued). */
  private emptied = false;
  private pinChain: Promise<void> = Promise.resolve();
  private readonly onQueueChange = (s: ImageStatus) => this.queueChanged(s);

  constructor(opts: NodePullSyncOptions) {
    this.opts = opts;
    this.source = `nodepull/${opts.nodeName}`;
    this.budget = new PinBudget(opts.pinBudgetBytes);
    this.timers = opts.timers ?? realTimers;
    this.writer = new StatusWriter<NodePullStatus>({
      write: opts.writeStatus,
      minIntervalMs: opts.statusIntervalMs ?? 1000,
      timers: this.timers,
      ...(opts.now ? { now: opts.now } : {}),
      onError: (err, failures) =>
        opts.logger?.warn({ err: (err as Error).message, failures }, 'NodePull status not written'),
    });
    opts.queue.on('change', this.onQueueChange);
  }

  /** The pull secrets of the entry the queue knows as `key`, while the NodePull wants it. */
  pullSecretsFor(key: string): string[] | undefined {
    for (const t of this.tracked.values()) if (t.wanted.key === key) return t.wanted.pullSecrets;
    return undefined;
  }

  /** Applies the node's NodePull as it is now (undefined: there is none). */
  apply(nodePull: NodePull | undefined): void {
    const { queue, logger } = this.opts;
    if (!nodePull) {
      if (this.present) logger?.info({ node: this.opts.nodeName }, 'NodePull gone: withdrawing its images');
      for (const image of [...this.tracked.keys()]) this.remove(image);
      this.present = false;
      this.generation = undefined;
      this.writer.reset();
      this.emptied = false;
      this.sweepPins([], true);
      return;
    }
    this.present = true;
    this.generation = nodePull.metadata.generation;
    const wanted = wantedImages(nodePull);
    // An empty list is how the controller now says what deleting the NodePull used to say (it
    // keeps one per node for status.mirror, docs/prepull.md): withdraw every entry, sweep Hoist's
    // pins once, as a deletion did, and leave the queue's concurrency as it is, as a deletion did.
    const empty = wanted.length === 0;
    if (empty && this.tracked.size > 0)
      logger?.info({ node: this.opts.nodeName }, 'NodePull empty: withdrawing its images');
    if (!empty) queue.setConcurrency(concurrencyOf(nodePull, this.opts.defaultConcurrency));
    const names = new Set(wanted.map((w) => w.image));
    for (const image of [...this.tracked.keys()]) if (!names.has(image)) this.remove(image);
    for (const w of wanted) {
      const identity = pullIdentity(w);
      const prev = this.tracked.get(w.image);
      this.tracked.set(w.image, { wanted: w, identity });
      if (w.key === undefined) continue;
      const queued = queue.get(w.key);
      const fresh = !prev || prev.identity !== identity || !queued || queued.source !== this.source;
      if (fresh) {
        if (queued && (prev || queued.source !== this.source)) queue.drop(w.key);
        this.pinStates.delete(w.image);
        logger?.info({ image: w.image, digest: w.digest, pin: w.pin }, 'NodePull image assigned');
        queue.assign([w.key], this.source, pullSpecOf(w));
      } else if (prev.wanted.run !== w.run && queued.state === 'failed') {
        // A new PrePull run asks again for what failed (docs/prepull.md rule 2): fresh attempts.
        // A present image is left alone, and one still pending or pulling is already trying.
        logger?.info(
          { image: w.image, digest: w.digest, run: w.run },
          'NodePull image retried for a new run',
        );
        queue.assign([w.key], this.source, pullSpecOf(w));
      } else if (prev.wanted.pin !== w.pin && queued.state === 'present') {
        this.enqueuePin(w.image);
      }
    }
    this.sweepPins(wanted, empty && !this.emptied);
    this.emptied = empty;
    this.publish();
  }

  /**
   * The node mirror's figures for status.mirror (src/agent/mirror-report.ts hands on changed ones
   * only, at most once per its interval). Kept across NodePulls: a re-created NodePull gets them.
   */
  setMirror(mirror: NodePullMirrorStatus): void {
    this.mirror = mirror;
    this.publish();
  }

  /** Resolves once the pin steps queued so far are done (tests, shutdown). */
  pinsSettled(): Promise<void> {
    return this.pinChain;
  }

  /** Stops following the queue and writes the last status. */
  async close(): Promise<void> {
    this.opts.queue.off('change', this.onQueueChange);
    this.stopHeartbeat();
    await this.pinChain;
    if (this.present) this.publish();
    // The last status, but not at any price: an unreachable API server must not hold up the exit.
    let timer: unknown;
    const giveUp = new Promise<void>((r) => (timer = this.timers.setTimeout(r, CLOSE_FLUSH_MS)));
    await Promise.race([this.writer.flush().catch(() => undefined), giveUp]);
    this.timers.clearTimeout(timer);
    this.writer.close();
  }

  private remove(image: string): void {
    const t = this.tracked.get(image);
    this.tracked.delete(image);
    this.pinStates.delete(image);
    this.releaseBudget(image);
    const key = t?.wanted.key;
    if (!key) return;
    const stillWanted = [...this.tracked.values()].some((o) => o.wanted.key === key);
    if (stillWanted) return;
    const queued = this.opts.queue.get(key);
    if (queued?.source === this.source) this.opts.queue.drop(key);
    this.opts.logger?.info({ image }, 'NodePull image withdrawn');
    if (t.wanted.pin && this.opts.pins)
      this.enqueue(async () => {
        await this.unpinOurs(key, queued?.imageRef);
      });
  }

  private queueChanged(s: ImageStatus): void {
    if (s.source !== this.source) return;
    const images = [...this.tracked.values()]
      .filter((t) => t.wanted.key === s.image)
      .map((t) => t.wanted.image);
    if (images.length === 0) return;
    if (s.state === 'present') for (const image of images) this.enqueuePin(image);
    this.publish();
  }

  private publish(): void {
    if (!this.present) return;
    const { queue } = this.opts;
    const images = [...this.tracked.values()].map(({ wanted: w }) =>
      imageStatusOf(w, w.key !== undefined ? queue.get(w.key) : undefined, this.pinStates.get(w.image)),
    );
    const summary = summaryOf(images);
    const busy = summary.pending + summary.pulling > 0;
    // A new spec is a sign of life to report at once; then, while work is open, every interval.
    if (this.heartbeat === undefined || this.heartbeat.generation !== this.generation) this.renewHeartbeat();
    if (busy) this.startHeartbeat();
    else this.stopHeartbeat();
    this.writer.set({
      ...(this.generation !== undefined ? { observedGeneration: this.generation } : {}),
      heartbeatTime: this.heartbeat!.time,
      summary,
      images,
      ...(this.mirror ? { mirror: this.mirror } : {}),
    });
  }

  private renewHeartbeat(): void {
    const now = (this.opts.wallClock ?? (() => new Date()))();
    this.heartbeat = { time: now.toISOString().replace(/\.\d{3}Z$/, 'Z'), generation: this.generation };
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer !== undefined) return;
    this.heartbeatTimer = this.timers.setTimeout(() => {
      this.heartbeatTimer = undefined;
      this.renewHeartbeat();
      this.publish();
    }, this.opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer === undefined) return;
    this.timers.clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private enqueue(step: () => Promise<void>): void {
    this.pinChain = this.pinChain.then(step).catch((err: unknown) => {
      this.opts.logger?.warn({ err: (err as Error).message }, 'pin step failed');
    });
  }

  private enqueuePin(image: string): void {
    this.enqueue(() => this.pinStep(image));
  }

  /** Pins or unpins one present image as its entry and the budget say, then reads CRI's view. */
  private async pinStep(image: string): Promise<void> {
    const { pins, queue, criPinned, logger } = this.opts;
    const t = this.tracked.get(image);
    const key = t?.wanted.key;
    if (!t || !key) return;
    const queued = queue.get(key);
    if (queued?.state !== 'present' || queued.source !== this.source) return;
    let message: string | undefined;
    let expect: boolean | undefined;
    if (!pins) {
      if (t.wanted.pin)
        message = 'not pinned: pinning needs containerd (its image service was not reachable)';
    } else if (t.wanted.pin) {
      message = this.budget.grant(image, queued.sizeBytes ?? 0);
      if (message) {
        await this.unpinOurs(key, queued.imageRef);
      } else {
        try {
          const out = await pins.pin(key);
          if (out.changed.length > 0) logger?.info({ image, records: out.changed }, 'pinned');
          expect = true;
        } catch (err) {
          this.budget.release(image);
          message = `not pinned: ${(err as Error).message}`;
        }
      }
    } else {
      this.releaseBudget(image);
      if (await this.unpinOurs(key, queued.imageRef)) expect = false;
    }
    const pinned = criPinned ? await this.waitPinned(key, expect) : false;
    if (!this.tracked.has(image)) return;
    this.pinStates.set(image, { pinned, ...(message ? { message } : {}) });
    this.publish();
  }

  /** Frees an image's share of the pin budget and offers it to present images still waiting for one. */
  private releaseBudget(image: string): void {
    if (!this.budget.has(image)) return;
    this.budget.release(image);
    for (const t of this.tracked.values()) {
      const key = t.wanted.key;
      if (!t.wanted.pin || !key || t.wanted.image === image || this.budget.has(t.wanted.image)) continue;
      if (this.opts.queue.get(key)?.state === 'present') this.enqueuePin(t.wanted.image);
    }
  }

  /**
   * Removes Hoist's pins from the image's records, unless another wanted entry pins the same
   * image (same id). True when labels changed.
   */
  private async unpinOurs(key: string, imageId: string | undefined): Promise<boolean> {
    const { pins, queue, logger } = this.opts;
    if (!pins) return false;
    const shared = [...this.tracked.values()].some(
      (o) =>
        o.wanted.pin &&
        o.wanted.key !== undefined &&
        o.wanted.key !== key &&
        this.budget.has(o.wanted.image) &&
        imageId !== undefined &&
        queue.get(o.wanted.key)?.imageRef === imageId,
    );
    if (shared) return false;
    const out = await pins.unpin(key);
    if (out.changed.length > 0) logger?.info({ image: key, records: out.changed }, 'unpinned');
    return out.changed.length > 0;
  }

  private async waitPinned(key: string, expect: boolean | undefined): Promise<boolean> {
    const { criPinned } = this.opts;
    const { attempts, intervalMs } = this.opts.pinCheck ?? { attempts: 10, intervalMs: 200 };
    let pinned = false;
    for (let i = 0; i < Math.max(1, attempts); i++) {
      pinned = (await criPinned?.(key).catch(() => false)) ?? false;
      if (expect === undefined || pinned === expect) break;
      if (i + 1 < attempts) await delay(this.timers, intervalMs);
    }
    return pinned;
  }

  /**
   * Once at start, and (`force`) whenever the NodePull goes or its list becomes empty: removes
   * Hoist's pins from every image the spec does not pin (pins left by an earlier run whose
   * entries went while the agent was down, or whose unpin failed).
   */
  private sweepPins(wanted: WantedImage[], force: boolean): void {
    const { pins, logger } = this.opts;
    if (!pins || (this.swept && !force)) return;
    this.swept = true;
    const keys = wanted.filter((w) => w.pin && w.key !== undefined).map((w) => w.key!);
    this.enqueue(async () => {
      const keep = new Set<string>();
      for (const key of keys) for (const r of await pins.records(key)) keep.add(r.target.digest);
      const out = await pins.unpinAllExcept(keep);
      if (out.changed.length > 0) logger?.info({ records: out.changed }, 'removed pins no entry asks for');
    });
  }
}
