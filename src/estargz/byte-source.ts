/**
 * Pull-based reads over an async iterable of buffers: "give me exactly N bytes" or "give me up
 * to N bytes", which is what a tar parser needs. Holds at most one upstream chunk, so memory
 * stays bounded by the source's chunk size.
 */
export class ByteSource {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private pending: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes handed out so far (the position in the stream). */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes; an empty buffer only at the end of the stream. */
  async read(max: number): Promise<Buffer> {
    if (this.pending.length === 0 && !(await this.fill())) return Buffer.alloc(0);
    const n = Math.min(max, this.pending.length);
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    this.position += n;
    return out;
  }

  /** Exactly `n` bytes, or fewer only when the stream ends first. */
  async readExact(n: number): Promise<Buffer> {
    if (this.pending.length >= n) return this.read(n);
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const part = await this.read(n - got);
      if (part.length === 0) break;
      parts.push(part);
      got += part.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /** Skips `n` bytes; returns how many were skipped (fewer at the end of the stream). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const part = await this.read(left);
      if (part.length === 0) break;
      left -= part.length;
    }
    return n - left;
  }

  /** Reads to the end, discarding (the reference writer ignores what follows the tar's end). */
  async drain(): Promise<void> {
    while ((await this.read(1 << 20)).length > 0);
  }

  private async fill(): Promise<boolean> {
    while (!this.done) {
      const next = await this.iterator.next();
      if (next.done) {
        this.done = true;
        return false;
      }
      if (next.value.byteLength > 0) {
        this.pending = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
        return true;
      }
    }
    return false;
  }

  /** Stops the underlying iterator (e.g. after an error), releasing its resources. */
  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.iterator.return?.();
    }
  }
}
