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
    const result = gzipAsync(data, { level: this.level });
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
