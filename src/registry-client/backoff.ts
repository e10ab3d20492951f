/**
 * Retry timing for upstream requests: exponential backoff with jitter, `Retry-After` honoured
 * (RFC 9110 §10.2.3), and a per-upstream breaker so that while an upstream is down or rate-limiting
 * us, clients get an answer at once instead of each waiting on it.
 */

export interface RetryPolicy {
  /** First delay; each further attempt doubles it. */
  baseDelayMs: number;
  /** No single delay is longer than this, whatever Retry-After says. */
  maxDelayMs: number;
  /**
   * Total time a request that a client is waiting on may spend in retries. containerd falls back
   * to its next host on any error, so failing fast beats retrying slowly.
   */
  clientBudgetMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  clientBudgetMs: 500,
};

/** Delay before attempt `attempt` (1-based) of a retry: full jitter over the exponential step. */
export function backoffDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  retryAfterSeconds?: number,
  random: () => number = Math.random,
): number {
  if (retryAfterSeconds !== undefined) return Math.min(policy.maxDelayMs, retryAfterSeconds * 1000);
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + (random() * step) / 2);
}

/**
 * Tracks an upstream's recent failures. After a failure the upstream is avoided until the
 * Retry-After it sent, or an exponential backoff, has passed; a success clears it.
 */
export class UpstreamHealth {
  private failures = 0;
  private until = 0;
  private lastError: { code: string; message: string } | undefined;

  constructor(
    private readonly policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
    private readonly now: () => number = Date.now,
  ) {}

  recordFailure(error: { code: string; message: string }, retryAfterSeconds?: number): void {
    this.failures += 1;
    this.lastError = error;
    const wait =
      retryAfterSeconds !== undefined
        ? retryAfterSeconds * 1000
        : Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** (this.failures - 1));
    this.until = Math.max(this.until, this.now() + wait);
  }

  recordSuccess(): void {
    this.failures = 0;
    this.until = 0;
    this.lastError = undefined;
  }

  /** Milliseconds until the upstream may be tried again (0: now). */
  remainingMs(): number {
    return Math.max(0, this.until - this.now());
  }

  get last(): { code: string; message: string } | undefined {
    return this.lastError;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
