import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { InflightReader } from './inflight-blob.js';

/**
 * A range passed through from the upstream that reaches the blob's last byte must not end cleanly
 * before the whole blob is verified: a client that has every byte of a Content-Length body takes it
 * as complete, whatever happens to the connection later. The whole-blob path holds its last byte
 * until the digest checks out (InflightBlob.readAt); this is the same rule for a range fetched
 * upstream on its own. The bytes pass through at once except the final one; once the download has
 * verified the blob, the range is compared with the verified bytes and only then does the final
 * byte go out. A range ending before the last byte is not held: lazy-pulling clients check such
 * chunks against the layer's TOC (eStargz spec, "TOC, TOCEntry and Footer").
 */

/**
 * Passes a body through minus its final byte, hashing everything it saw (the held byte included).
 * `last` is the held byte once the body ended.
 */
export class TailHold extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private held: Buffer | undefined;
  private count = 0;

  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    if (chunk.byteLength === 0) return callback();
    this.hash.update(chunk);
    this.count += chunk.byteLength;
    const out = this.held ? Buffer.concat([this.held, chunk.subarray(0, -1)]) : chunk.subarray(0, -1);
    this.held = Buffer.from(chunk.subarray(-1));
    if (out.byteLength > 0) {
      this.onBytes(out.byteLength);
      this.push(out);
    }
    callback();
  }

  /** The held final byte (undefined: the body was empty). */
  get last(): Buffer | undefined {
    return this.held;
  }

  /** Bytes seen, the held one included. */
  get bytes(): number {
    return this.count;
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }
}

const CHUNK_BYTES = 512 * 1024;

/**
 * Whether the bytes a TailHold saw, starting at `start`, are exactly the blob from `start` to its
 * end as verified by the download `reader` reads. Resolves only once the download verified the
 * blob (the reader's final read waits for that); rejects if the download failed.
 */
export async function matchesVerifiedTail(
  reader: InflightReader,
  start: number,
  seen: TailHold,
): Promise<boolean> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK_BYTES);
  let pos = start;
  for (;;) {
    const n = await reader.read(buf, pos, buf.byteLength, undefined);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    pos += n;
    // More verified bytes than the range had: it did not reach the end, so it is not the blob's tail.
    if (pos - start > seen.bytes) return false;
  }
  return pos - start === seen.bytes && hash.digest('hex') === seen.digest();
}
