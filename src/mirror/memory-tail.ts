/**
 * The bytes of a download past the point where the disk refused them (ENOSPC), kept in memory
 * for the clients still reading it. The owner drops what every reader has passed and holds the
 * upstream back when the rest exceeds its budget, so memory stays bounded by the budget plus one
 * batch of chunks.
 */
export class MemoryTail {
  /** Blob offset of the first byte still held. */
  private startOffset: number;
  private readonly chunks: Buffer[] = [];
  private held = 0;

  constructor(from: number) {
    this.startOffset = from;
  }

  get start(): number {
    return this.startOffset;
  }

  get end(): number {
    return this.startOffset + this.held;
  }

  get heldBytes(): number {
    return this.held;
  }

  append(buf: Buffer): void {
    if (buf.byteLength === 0) return;
    this.chunks.push(buf);
    this.held += buf.byteLength;
  }

  /** Drops whole chunks that end at or before `pos` (no reader needs them any more). */
  dropBefore(pos: number): void {
    while (this.chunks.length > 0 && this.startOffset + (this.chunks[0]?.byteLength ?? 0) <= pos) {
      const dropped = this.chunks.shift() as Buffer;
      this.held -= dropped.byteLength;
      this.startOffset += dropped.byteLength;
    }
  }

  /** Copies up to `max` bytes at blob offset `pos` into `dst`; resolves how many. */
  read(pos: number, dst: Buffer, max: number): number {
    if (pos < this.startOffset) {
      throw new Error(`bytes at ${pos} are no longer held (the disk is full and this reader fell behind)`);
    }
    let skip = pos - this.startOffset;
    let copied = 0;
    for (const chunk of this.chunks) {
      if (copied >= max) break;
      if (skip >= chunk.byteLength) {
        skip -= chunk.byteLength;
        continue;
      }
      const n = chunk.copy(dst, copied, skip, Math.min(chunk.byteLength, skip + (max - copied)));
      copied += n;
      skip = 0;
    }
    return copied;
  }
}
