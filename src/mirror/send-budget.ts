/**
 * One budget for the buffers every blob response sends from, shared by all responses of a mirror.
 *
 * Each response used to hold two 512 KiB buffers of its own, so memory grew with the number of
 * connections (about 1 MiB each: 1,000 connections took the mirror past 800 MiB) and nothing made
 * the responses take turns. Here a response leases a buffer for one read-and-write and gives it
 * back when the socket has taken the bytes (the write callback) or the connection closed:
 *
 * - Leased bytes never exceed `totalBytes`; buffers kept for reuse count against it too, so the
 *   memory behind all send buffers is bounded by the budget, whatever the number of connections.
 * - Waiting responses are served strictly first come, first served (a FIFO queue that nobody
 *   jumps, even when a smaller buffer would fit), so no connection starves while others go on.
 * - The size of a lease follows the number of responses sending: one alone gets `maxChunkBytes`
 *   (large writes keep a single client at GB/s on loopback), many get smaller ones, down to
 *   `minChunkBytes`: about half the budget's share per sender, so that a lease is usually free
 *   for whoever comes next.
 */
export interface SendBudgetOptions {
  totalBytes: number;
  /** Largest lease, for a response that sends alone. */
  maxChunkBytes?: number;
  /** Smallest lease: below this the syscall and promise overhead per chunk dominates. */
  minChunkBytes?: number;
}

export interface SendLease {
  readonly buf: Buffer;
  /**
   * Gives the buffer back (once; later calls do nothing). `reusable: false` when the socket may
   * still reference it (a connection closed with the write pending): it is dropped, not reused.
   */
  release(reusable: boolean): void;
}

export interface SendBudgetStats {
  totalBytes: number;
  leasedBytes: number;
  /** Highest leasedBytes so far. */
  peakLeasedBytes: number;
  /** Buffers kept for reuse (not leased), in bytes. leasedBytes + cachedBytes <= totalBytes. */
  cachedBytes: number;
  leases: number;
  waiting: number;
  senders: number;
}

export class SendBudgetClosedError extends Error {
  constructor(reason: unknown) {
    super('the response closed while waiting for a send buffer', { cause: reason });
    this.name = 'SendBudgetClosedError';
  }
}

export const DEFAULT_MAX_CHUNK_BYTES = 512 * 1024;
export const DEFAULT_MIN_CHUNK_BYTES = 32 * 1024;

interface Waiter {
  resolve: (lease: SendLease) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** The largest power of two <= n (n >= 1). */
function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

export class SendBudget {
  readonly totalBytes: number;
  readonly maxChunkBytes: number;
  readonly minChunkBytes: number;
  private leased = 0;
  private peak = 0;
  private leaseCount = 0;
  private cached = 0;
  private readonly free = new Map<number, Buffer[]>();
  private readonly queue: Waiter[] = [];
  private senders = 0;
  private holds = 0;

  constructor(options: SendBudgetOptions) {
    this.totalBytes = options.totalBytes;
    this.maxChunkBytes = floorPow2(options.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES);
    this.minChunkBytes = Math.min(
      floorPow2(options.minChunkBytes ?? DEFAULT_MIN_CHUNK_BYTES),
      this.maxChunkBytes,
    );
    if (!(this.totalBytes >= this.minChunkBytes)) {
      throw new Error(`a send budget of ${this.totalBytes} bytes is below one chunk (${this.minChunkBytes})`);
    }
  }

  /** Counts a response as sending (for lease sizes) until the returned function is called. */
  register(): () => void {
    this.senders += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.senders -= 1;
    };
  }

  /**
   * A buffer, now or once earlier waiters were served. Rejects with SendBudgetClosedError if
   * `signal` aborts first (the response closed), leaving the queue as if it never asked.
   */
  acquire(signal?: AbortSignal): Promise<SendLease> {
    if (signal?.aborted) return Promise.reject(new SendBudgetClosedError(signal.reason));
    if (this.queue.length === 0) {
      const lease = this.tryLease();
      if (lease) return Promise.resolve(lease);
    }
    return new Promise<SendLease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.queue.indexOf(waiter);
          if (i >= 0) this.queue.splice(i, 1);
          reject(new SendBudgetClosedError(signal?.reason));
          // The head may have changed: whoever is next could fit now.
          this.pump();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  /**
   * Grants no lease (new acquires wait in the queue, in order) until the returned function is
   * called; holds nest. Leases already out are unaffected. Used to keep event-loop turns short
   * while connections wait to be accepted (accept-gate.ts).
   */
  hold(): () => void {
    this.holds += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.holds -= 1;
      this.pump();
    };
  }

  stats(): SendBudgetStats {
    return {
      totalBytes: this.totalBytes,
      leasedBytes: this.leased,
      peakLeasedBytes: this.peak,
      cachedBytes: this.cached,
      leases: this.leaseCount,
      waiting: this.queue.length,
      senders: this.senders,
    };
  }

  /** The lease size for the current number of senders: about two leases each, within bounds. */
  private chunkBytes(): number {
    const share = this.totalBytes / (2 * Math.max(1, this.senders));
    return Math.min(this.maxChunkBytes, Math.max(this.minChunkBytes, floorPow2(Math.max(1, share))));
  }

  private tryLease(): SendLease | undefined {
    if (this.holds > 0) return undefined;
    const room = this.totalBytes - this.leased;
    if (room < this.minChunkBytes) return undefined;
    const size = Math.min(this.chunkBytes(), floorPow2(room));
    return this.lease(size);
  }

  private lease(size: number): SendLease {
    let buf = this.free.get(size)?.pop();
    if (buf) {
      this.cached -= size;
    } else {
      // Kept buffers of other sizes make room first: leased + cached never exceeds the budget.
      for (const [s, list] of this.free) {
        while (this.leased + this.cached + size > this.totalBytes && list.length > 0) {
          list.pop();
          this.cached -= s;
        }
      }
      buf = Buffer.allocUnsafeSlow(size);
    }
    this.leased += size;
    this.leaseCount += 1;
    this.peak = Math.max(this.peak, this.leased);
    let released = false;
    const owned = buf;
    return {
      buf: owned,
      release: (reusable: boolean) => {
        if (released) return;
        released = true;
        this.leased -= size;
        this.leaseCount -= 1;
        if (reusable && this.leased + this.cached + size <= this.totalBytes) {
          let list = this.free.get(size);
          if (!list) this.free.set(size, (list = []));
          list.push(owned);
          this.cached += size;
        }
        this.pump();
      },
    };
  }

  /** Serves waiters in arrival order while the head fits. */
  private pump(): void {
    while (this.queue.length > 0) {
      const lease = this.tryLease();
      if (!lease) return;
      const waiter = this.queue.shift() as Waiter;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.resolve(lease);
    }
  }
}
