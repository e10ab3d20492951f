import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { SendBudget, SendLease } from './send-budget.js';

/**
 * Sends bytes `start..end` (inclusive) of a blob as a response body from buffers leased from the
 * mirror's send budget (send-budget.ts), instead of a read stream's fresh buffer per read.
 *
 * Cached blobs are the hot path: a node's pods pull the same layers at once, at GB/s on loopback,
 * and at that rate a buffer per read makes the garbage collector the limit. A response holds one
 * lease at a time, filled by a read and then written. It goes back when the
 * socket has accepted its bytes (the write callback: each chunk is above the socket's 16 KiB
 * highWaterMark, so `res.write` returns false every time and the callback, not 'drain', is what
 * says the kernel took the bytes), or when the connection closes (a destroyed socket may never
 * call the callback; the buffer is then dropped, not reused, since libuv may still hold it).
 *
 * A client that stops reading leaves its last write pending, and so holds one lease. It cannot
 * hold it for ever: when no write completes for `stallTimeoutMs`, the response is
 * destroyed (like nginx's send_timeout), which returns the lease to the budget.
 */
export class ResponseClosedError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ResponseClosedError';
  }
}

export class SendStalledError extends Error {
  readonly code = 'SEND_STALLED';
  constructor(ms: number) {
    super(`the client read nothing for ${ms} ms`);
    this.name = 'SendStalledError';
  }
}

/** Reads up to `max` bytes at `pos` into `buf`; resolves 0 at the end of the data. */
export type ReadAt = (buf: Buffer, pos: number, max: number) => Promise<number>;

export function fileReader(handle: FileHandle): ReadAt {
  return async (buf, pos, max) => (await handle.read(buf, 0, max, pos)).bytesRead;
}

export interface SendOptions {
  budget: SendBudget;
  /** A response none of whose pending writes completes for this long is destroyed. */
  stallTimeoutMs: number;
  onBytes: (n: number) => void;
  /** Called when a response is destroyed for stalling. */
  onStalled?: () => void;
  /**
   * Resolves once `read` at a position would not wait for data (a download in progress): a
   * response waiting on a slow upstream must not hold a buffer others could send from.
   */
  waitReadable?: (pos: number) => Promise<void>;
}

interface PendingWrite {
  lease: SendLease;
  done: Promise<void>;
  settle: (err?: Error) => void;
}

/**
 * Sends `start..end` (inclusive; undefined: until `read` says the data ended) and ends the
 * response. Resolves when everything has been handed to the socket; rejects (leaving the response
 * for the caller to destroy) on a read error, data that ends before `end`, a client that left, or
 * a client that stalled.
 */
export async function sendRange(
  read: ReadAt,
  res: ServerResponse,
  start: number,
  end: number | undefined,
  options: SendOptions,
): Promise<void> {
  const { budget, stallTimeoutMs } = options;
  const unregister = budget.register();
  const aborter = new AbortController();
  const pending: PendingWrite[] = [];
  let stallTimer: NodeJS.Timeout | undefined;
  let stalled = false;

  const armStallTimer = () => {
    clearTimeout(stallTimer);
    stallTimer = undefined;
    if (pending.length === 0) return;
    stallTimer = setTimeout(() => {
      stalled = true;
      options.onStalled?.();
      res.destroy(new SendStalledError(stallTimeoutMs));
    }, stallTimeoutMs);
    stallTimer.unref();
  };
  const onClose = () => {
    aborter.abort(new ResponseClosedError());
    // Writes still pending may never call back: give their leases back now, without reuse.
    for (const p of pending.splice(0)) {
      p.lease.release(false);
      p.settle(new ResponseClosedError());
    }
    armStallTimer();
  };
  res.once('close', onClose);
  const closed = () => aborter.signal.aborted || res.destroyed;
  const closedPromise = new Promise<never>((_, reject) =>
    aborter.signal.addEventListener('abort', () => reject(new ResponseClosedError()), { once: true }),
  );
  closedPromise.catch(() => {});

  const write = (lease: SendLease, n: number): void => {
    let settle: (err?: Error) => void = () => {};
    const done = new Promise<void>((resolve, reject) => {
      let settled = false;
      settle = (err) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
    });
    done.catch(() => {});
    const p: PendingWrite = { lease, done, settle };
    pending.push(p);
    if (pending.length === 1) armStallTimer();
    res.write(lease.buf.subarray(0, n), (err) => {
      const i = pending.indexOf(p);
      if (i < 0) return; // already released by close
      pending.splice(i, 1);
      lease.release(!err);
      armStallTimer();
      p.settle(err ?? undefined);
    });
  };

  try {
    let pos = start;
    const last = end ?? Infinity;
    while (pos <= last) {
      // One lease at a time: the next buffer is leased once the socket took the last one. A
      // backed-up or stalled socket then holds one buffer, not two; the disk read this gives up
      // overlapping with the write is a copy from the page cache, small beside the write.
      while (pending.length > 0) await (pending[0] as PendingWrite).done;
      if (options.waitReadable) await Promise.race([options.waitReadable(pos), closedPromise]);
      const lease = await budget.acquire(aborter.signal);
      let handed = false;
      try {
        if (closed()) throw new ResponseClosedError();
        const want = Math.min(lease.buf.byteLength, last - pos + 1);
        const bytesRead = await read(lease.buf, pos, want);
        if (closed()) throw new ResponseClosedError();
        if (bytesRead === 0) {
          if (end === undefined) break;
          throw new Error(`data ended at ${pos}, before ${end + 1}`);
        }
        pos += bytesRead;
        handed = true;
        write(lease, bytesRead);
        options.onBytes(bytesRead);
      } finally {
        if (!handed) lease.release(true);
      }
    }
    while (pending.length > 0) await (pending[0] as PendingWrite).done;
    if (closed()) throw new ResponseClosedError();
    await new Promise<void>((resolve) => res.end(resolve));
  } catch (err) {
    if (stalled) throw new SendStalledError(stallTimeoutMs);
    if (aborter.signal.aborted) throw new ResponseClosedError();
    throw err;
  } finally {
    res.off('close', onClose);
    clearTimeout(stallTimer);
    // On an error the caller destroys the response; until then a pending write holds its lease,
    // and 'close' is not listened to any more: give the leases back here, without reuse.
    for (const p of pending.splice(0)) p.lease.release(false);
    unregister();
  }
}
