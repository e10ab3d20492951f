import { setTimeout as delay } from 'node:timers/promises';

/** Delays in milliseconds between retries. */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** client-go's reflector backs off from 800 ms up to 30 s. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 800, maxMs: 30_000 };

/**
 * Exponential backoff with "equal jitter": the n-th delay is drawn from [base/2, base] where
 * base = min(maxMs, initialMs * 2^n). Jitter keeps replicas that failed together from retrying
 * together; the lower half-bound keeps the delay growing. `reset()` after a success.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {
    if (!(opts.initialMs > 0) || !(opts.maxMs >= opts.initialMs)) {
      throw new RangeError(`backoff needs 0 < initialMs <= maxMs (got ${opts.initialMs}, ${opts.maxMs})`);
    }
  }

  /** The delay before the next retry; each call doubles the base up to maxMs. */
  next(): number {
    // Cap the exponent so 2^n cannot overflow to Infinity after many failures.
    const base = Math.min(this.opts.maxMs, this.opts.initialMs * 2 ** Math.min(this.attempt, 52));
    this.attempt++;
    return Math.round(base / 2 + (base / 2) * this.random());
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  try {
    await delay(ms, undefined, { signal });
  } catch {
    // aborted: the caller checks signal.aborted
  }
}
