/**
 * Compresses a sequence of independent gzip members in order, several at a time. Each member is
 * one zlib call on libuv's thread pool, so while the main thread parses and hashes, the other
 * cores compress; output order, and so every offset in the TOC, stays the order of submission.
 * Memory is bounded: at most `concurrency` members (each at most a chunk plus headers) are held.
 */
import { promisify } from 'node:util';
import { gzip, type ZlibOptions } from 'node:zlib';

const gzipAsync = promisify(gzip) as (data: Buffer, options: ZlibOptions) => Promise<Buffer>;

export type Sink = (chunk: Buffer) => Promise<void>;

/** zlib's own default output chunk (zlib.constants.Z_DEFAULT_CHUNK). */
const MIN_CHUNK_BYTES = 16 * 1024;
const MAX_CHUNK_BYTES = 1024 * 1024;

interface InFlight {
  result: Promise<Buffer>;
  /** Called with the member's offset in the output just before it is written. */
  onStart: ((offset: number) => void) | undefined;
}

export class OrderedGzipWriter {
  /** Compressed bytes written to the sink so far. */
  position = 0;
  private readonly queue: InFlight[] = [];

  constructor(
    private readonly sink: Sink,
    private readonly level: number,
    private readonly concurrency: number,
  ) {}

  async submit(data: Buffer, onStart?: (offset: number) => void): Promise<void> {
    // Few zlib work items per member: with zlib's default 16 KiB output chunk the thread pool comes
    // back to the main thread after every 16 KiB and waits there while it hashes or parses, so
    // compression stalls. deflate's output never exceeds its input by more than 5 bytes per 16 KiB
    // stored block plus the gzip wrapper (zlib deflateBound), so a member up to 1 MiB is one work
    // item; larger ones take a few, which keeps each output buffer small.
    const chunkSize = Math.min(
      MAX_CHUNK_BYTES,
      Math.max(MIN_CHUNK_BYTES, data.length + (data.length >>> 10) + 1024),
    );
    const result = gzipAsync(data, { level: this.level, chunkSize });
    result.catch(() => undefined); // surfaced when awaited in order; avoids an unhandled rejection
    this.queue.push({ result, onStart });
    while (this.queue.length > this.concurrency) await this.writeOldest();
  }

  /** Writes raw bytes (the footer) after every pending member. */
  async writeRaw(data: Buffer): Promise<void> {
    await this.drain();
    await this.sink(data);
    this.position += data.length;
  }

  async drain(): Promise<void> {
    while (this.queue.length > 0) await this.writeOldest();
  }

  private async writeOldest(): Promise<void> {
    const next = this.queue.shift();
    if (!next) return;
    const compressed = await next.result;
    next.onStart?.(this.position);
    await this.sink(compressed);
    this.position += compressed.length;
  }
}
