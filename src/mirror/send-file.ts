import type { FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';

/**
 * Sends bytes `start..end` (inclusive) of a blob as a response body, reusing a small pool of
 * read buffers instead of allocating one per read.
 *
 * Cached blobs are the hot path: a node's pods pull the same layers at once, at GB/s on loopback.
 * A read stream allocates a fresh buffer per read, and at that rate the garbage collector, not
 * the disk or the socket, becomes the limit. Here each response alternates two buffers: one is
 * read into while the other is being written, and a buffer is reused only after the socket has
 * accepted its previous contents (the write callback).
 */
export const SEND_CHUNK_BYTES = 512 * 1024;
/** Buffers kept for reuse across responses (2 per concurrent response); beyond that they are freed. */
const POOL_MAX = 64;
const pool: Buffer[] = [];

function take(): Buffer {
  return pool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK_BYTES);
}

function give(buf: Buffer): void {
  if (pool.length < POOL_MAX) pool.push(buf);
}

export class ResponseClosedError extends Error {
  constructor() {
    super('client closed the connection');
    this.name = 'ResponseClosedError';
  }
}

/** Reads up to `max` bytes at `pos` into `buf`; resolves 0 at the end of the data. */
export type ReadAt = (buf: Buffer, pos: number, max: number) => Promise<number>;

export function fileReader(handle: FileHandle): ReadAt {
  return async (buf, pos, max) => (await handle.read(buf, 0, max, pos)).bytesRead;
}

/**
 * Sends `start..end` (inclusive; undefined: until `read` says the data ended) and ends the
 * response. Resolves when everything has been handed to the socket; rejects (leaving the response
 * for the caller to destroy) on a read error, data that ends before `end`, or a client that left.
 */
export async function sendRange(
  read: ReadAt,
  res: ServerResponse,
  start: number,
  end: number | undefined,
  onBytes: (n: number) => void,
): Promise<void> {
  const buffers = [take(), take()];
  const pending: Array<Promise<void> | undefined> = [undefined, undefined];
  let closed = false;
  let onClose: () => void = () => {};
  const closedPromise = new Promise<never>((_, reject) => {
    onClose = () => {
      closed = true;
      reject(new ResponseClosedError());
    };
    res.once('close', onClose);
  });
  closedPromise.catch(() => {});
  let reusable = true;
  try {
    let pos = start;
    let i = 0;
    const last = end ?? Infinity;
    while (pos <= last) {
      const buf = buffers[i] as Buffer;
      const previous = pending[i];
      if (previous) await Promise.race([previous, closedPromise]);
      if (closed || res.destroyed) throw new ResponseClosedError();
      const want = Math.min(buf.byteLength, last - pos + 1);
      const bytesRead = await read(buf, pos, want);
      if (closed || res.destroyed) throw new ResponseClosedError();
      if (bytesRead === 0) {
        if (end === undefined) break;
        throw new Error(`data ended at ${pos}, before ${end + 1}`);
      }
      pos += bytesRead;
      pending[i] = new Promise<void>((resolve, reject) => {
        res.write(buf.subarray(0, bytesRead), (err) => (err ? reject(err) : resolve()));
      });
      pending[i]?.catch(() => {});
      onBytes(bytesRead);
      i ^= 1;
    }
    for (const p of pending) if (p) await Promise.race([p, closedPromise]);
    await new Promise<void>((resolve) => res.end(resolve));
  } catch (err) {
    // A write may still hold a buffer; let those go to the garbage collector instead of the pool.
    reusable = false;
    throw err;
  } finally {
    res.off('close', onClose);
    if (reusable) for (const b of buffers) give(b);
  }
}
