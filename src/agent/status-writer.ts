import { realTimers, type Timers } from './timers.js';

/**
 * Coalesces status writes: the latest value is written when it differs from the last one written,
 * at most once per `minIntervalMs` (the first at once), one write at a time. A failed write is
 * retried with a doubling wait (capped at 30 s) until a newer value or success. So a NodePull's
 * status follows phase changes within about a second without one API write per event.
 */

export interface StatusWriterOptions<T> {
  write: (value: T) => Promise<void>;
  /** Default 1000. */
  minIntervalMs?: number;
  /** Monotonic milliseconds. */
  now?: () => number;
  timers?: Timers;
  onError?: (err: unknown, failures: number) => void;
}

const MAX_RETRY_MS = 30_000;

export class StatusWriter<T> {
  private readonly opts: StatusWriterOptions<T>;
  private readonly now: () => number;
  private readonly timers: Timers;
  private readonly minIntervalMs: number;
  private desired: { value: T; json: string } | undefined;
  private writtenJson: string | undefined;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private timer: unknown;
  private inFlight: Promise<void> | undefined;
  private failures = 0;
  private closed = false;

  constructor(opts: StatusWriterOptions<T>) {
    this.opts = opts;
    this.now = opts.now ?? (() => performance.now());
    this.minIntervalMs = opts.minIntervalMs ?? 1000;
    this.timers = opts.timers ?? realTimers;
  }

  /** The value to converge on. */
  set(value: T): void {
    if (this.closed) return;
    const json = JSON.stringify(value);
    if (json === this.desired?.json) return;
    this.desired = { value, json };
    this.schedule();
  }

  /** Forgets what was written (the object was re-created): the next set() writes. */
  reset(): void {
    this.writtenJson = undefined;
    this.failures = 0;
    this.desired = undefined;
  }

  /** Writes what is pending now, ignoring the interval (at shutdown). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      this.timers.clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.inFlight) await this.inFlight;
    if (this.desired && this.desired.json !== this.writtenJson) await this.writeNow();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined || this.inFlight) return;
    if (!this.desired || this.desired.json === this.writtenJson) return;
    const retryWait = this.failures > 0 ? Math.min(MAX_RETRY_MS, this.minIntervalMs * 2 ** this.failures) : 0;
    const wait = Math.max(0, this.lastWriteAt + Math.max(this.minIntervalMs, retryWait) - this.now());
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.writeNow();
    }, wait);
  }

  private writeNow(): Promise<void> {
    const target = this.desired;
    if (!target) return Promise.resolve();
    this.lastWriteAt = this.now();
    this.inFlight = this.opts.write(target.value).then(
      () => {
        this.writtenJson = target.json;
        this.failures = 0;
      },
      (err: unknown) => {
        this.failures++;
        this.opts.onError?.(err, this.failures);
      },
    );
    return this.inFlight.finally(() => {
      this.inFlight = undefined;
      this.schedule();
    });
  }
}
