import { statfs } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { BlobStore } from './blob-store.js';
import type { MirrorMetrics } from './metrics.js';

/**
 * The store's disk budget. Either a size (`maxBytes`, collected down to `lowBytes`) or, like the
 * kubelet's image GC, watermarks on the filesystem's usage (collection starts above
 * `highWatermarkPercent` and frees down to `lowWatermarkPercent`). Least-recently-used blobs go
 * first; a blob being read or written is never evicted (BlobStore pins).
 */
export interface GcPolicy {
  maxBytes?: number | undefined;
  lowBytes?: number | undefined;
  highWatermarkPercent?: number | undefined;
  lowWatermarkPercent?: number | undefined;
  /** How often usage is checked even without new blobs (other writers fill the disk too). */
  intervalSeconds: number;
}

export interface DiskUsage {
  storeBytes: number;
  /** The filesystem's size and what is still available to us, in bytes. */
  capacityBytes: number;
  availableBytes: number;
}

/** How many bytes to free now (0: within budget). Pure. */
export function bytesToFree(usage: DiskUsage, policy: GcPolicy): number {
  let free = 0;
  if (policy.maxBytes !== undefined && usage.storeBytes > policy.maxBytes) {
    const low = policy.lowBytes ?? Math.floor(policy.maxBytes * 0.9);
    free = Math.max(free, usage.storeBytes - low);
  }
  if (policy.highWatermarkPercent !== undefined && usage.capacityBytes > 0) {
    const usedPercent = ((usage.capacityBytes - usage.availableBytes) / usage.capacityBytes) * 100;
    if (usedPercent > policy.highWatermarkPercent) {
      const low = policy.lowWatermarkPercent ?? Math.max(0, policy.highWatermarkPercent - 5);
      free = Math.max(free, Math.ceil(((usedPercent - low) / 100) * usage.capacityBytes));
    }
  }
  return free;
}

export class GarbageCollector {
  private running: Promise<number> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: BlobStore,
    private readonly policy: GcPolicy,
    private readonly metrics: MirrorMetrics,
    private readonly logger: Logger,
  ) {}

  get enabled(): boolean {
    return this.policy.maxBytes !== undefined || this.policy.highWatermarkPercent !== undefined;
  }

  start(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => void this.run('interval'), this.policy.intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs a collection (one at a time; a request during a run makes it run once more). Resolves bytes freed. */
  run(reason: string): Promise<number> {
    if (!this.enabled) return Promise.resolve(0);
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.collect(reason)
      .catch((err: unknown) => {
        this.logger.error({ err: String(err) }, 'garbage collection failed');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          void this.run('queued');
        }
      });
    return this.running;
  }

  private async usage(): Promise<DiskUsage> {
    let capacityBytes = 0;
    let availableBytes = 0;
    if (this.policy.highWatermarkPercent !== undefined) {
      const s = await statfs(this.store.root);
      capacityBytes = s.blocks * s.bsize;
      availableBytes = s.bavail * s.bsize;
    }
    return { storeBytes: this.store.totalBytes, capacityBytes, availableBytes };
  }

  private async collect(reason: string): Promise<number> {
    const target = bytesToFree(await this.usage(), this.policy);
    if (target <= 0) return 0;
    let freed = 0;
    let evicted = 0;
    for (const { digest } of this.store.lruOrder()) {
      if (freed >= target) break;
      const size = await this.store.evict(digest);
      if (size === undefined) continue; // pinned: being read or written
      freed += size;
      evicted += 1;
    }
    this.metrics.gcEvictions.inc(evicted);
    this.metrics.gcEvictedBytes.inc(freed);
    this.metrics.storeBytes.set(this.store.totalBytes);
    this.metrics.storeBlobs.set(this.store.blobCount);
    const log = freed >= target ? this.logger.info.bind(this.logger) : this.logger.warn.bind(this.logger);
    log(
      { reason, target, freed, evicted, storeBytes: this.store.totalBytes },
      freed >= target ? 'evicted least-recently-used blobs' : 'could not free enough: the rest is in use',
    );
    return freed;
  }
}
