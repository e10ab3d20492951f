import { createReadStream } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, type Digest } from '../oci/index.js';
import { BatchSink } from './batch-sink.js';
import { MemoryTail } from './memory-tail.js';
import { sleep } from '../registry-client/index.js';
import {
  BlobVerifyError,
  isResumable,
  NoSpaceError,
  PrematureEndError,
  StallError,
} from './download-faults.js';
export { BlobVerifyError } from './download-faults.js';
import type { BlobStore } from './blob-store.js';

export type InflightState = 'downloading' | 'complete' | 'failed';

/** Largest single read a client stream makes from the partial file. */
const READ_CHUNK_BYTES = 1024 * 1024;

/**
 * One blob being downloaded from upstream into a temp file, readable by any number of clients
 * while it arrives. Each reader reads the temp file by offset at its own pace (the page cache,
 * not our heap, holds what it has not read yet), so a slow client neither slows the download nor
 * the other clients, and memory stays bounded whatever the blob's size.
 *
 * The file is written with positional writes and the digest is computed as it goes; when the
 * body ends the digest and size are checked, the file fsynced and renamed into the store. A
 * reader whose range reaches the end of the blob ends only after that check passed; if it fails,
 * every unfinished reader is destroyed (so the client's connection is aborted, never ended
 * cleanly) and nothing is stored.
 */
export class InflightBlob {
  readonly digest: Digest;
  /** Total size from the upstream's Content-Length, when it sent one. */
  readonly size: number | undefined;
  readonly tempPath: string;
  private handle: FileHandle;
  private written = 0;
  private stateValue: InflightState = 'downloading';
  private errorValue: Error | undefined;
  /** Active readers and the next offset each will read. */
  private readonly positions = new Map<number, number>();
  private nextReaderId = 0;
  private waiters = new Set<() => void>();
  private closed = false;
  /** Set once the disk refused a write: the rest of the blob is streamed from memory. */
  private tail: MemoryTail | undefined;
  private fileBytes: number | undefined;
  private everRead = false;
  /** Bytes of the download kept in memory when the disk is full. */
  memoryLimitBytes = DEFAULT_MEMORY_TAIL_BYTES;
  /** Bytes gathered from the body before they are written and readers woken (0: every read). */
  batchBytes = DEFAULT_BATCH_BYTES;
  /** Longest a received byte waits for more before it is written and readers can have it. */
  batchDelayMs = DEFAULT_BATCH_DELAY_MS;
  /** Told when the disk refused a write (the download goes on without storing). */
  onUnstored: ((err: Error) => void) | undefined;
  private storedPath: string | undefined;

  private constructor(digest: Digest, size: number | undefined, tempPath: string, handle: FileHandle) {
    this.digest = digest;
    this.size = size;
    this.tempPath = tempPath;
    this.handle = handle;
  }

  static async create(store: BlobStore, digest: Digest, size: number | undefined): Promise<InflightBlob> {
    const tempPath = store.tempPath(digest);
    const handle = await open(tempPath, 'wx+');
    return new InflightBlob(digest, size, tempPath, handle);
  }

  get bytesWritten(): number {
    return this.written;
  }

  get state(): InflightState {
    return this.stateValue;
  }

  get error(): Error | undefined {
    return this.errorValue;
  }

  /** Whether the disk refused this download: it is streamed to its clients but not stored. */
  get unstored(): boolean {
    return this.tail !== undefined;
  }

  get readerCount(): number {
    return this.positions.size;
  }

  /**
   * Streams `body` into the temp file, then verifies and commits it to `store`. Resolves when
   * the blob is stored; rejects (after failing every reader) when anything went wrong.
   *
   * When the body breaks or stalls and `resume` is given, the download continues from the last
   * byte received (`resume(offset)` opens a ranged body), up to `retries` times with `delayMs`
   * between attempts: readers see only a pause. The digest runs on across attempts, since the
   * bytes arrive in order.
   */
  async download(body: Readable, store: BlobStore, options: DownloadOptions = {}): Promise<void> {
    const digester = new Digester(this.digest.algorithm);
    try {
      let current = body;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.receive(current, digester, options);
          if (this.size === undefined || this.written === this.size) break;
          throw new PrematureEndError(this.written, this.size);
        } catch (err) {
          if (
            !isResumable(err) ||
            !options.resume ||
            attempt > (options.retries ?? 0) ||
            options.signal?.aborted
          ) {
            throw err;
          }
          options.onRetry?.(attempt, err as Error);
          current = await this.reopen(options, attempt, err);
        }
      }
      const got = digester.digest();
      if (this.size !== undefined && this.written !== this.size) {
        throw new BlobVerifyError(
          'SIZE_MISMATCH',
          `blob ${this.digest.value}: got ${this.written} bytes, expected ${this.size}`,
        );
      }
      if (got.value !== this.digest.value) {
        throw new BlobVerifyError(
          'DIGEST_MISMATCH',
          `blob ${this.digest.value}: content digest is ${got.value}`,
        );
      }
      if (this.tail) {
        // Verified, but not stored (the disk was full): the clients got good bytes.
        unlink(this.tempPath).catch(() => {});
      } else {
        await this.handle.sync();
        await store.commit(this.tempPath, this.digest, this.written);
        this.storedPath = store.pathOf(this.digest);
      }
      this.stateValue = 'complete';
      this.notify();
      this.maybeClose();
    } catch (err) {
      // The temp file goes first, so that a settled download has left nothing behind.
      await unlink(this.tempPath).catch(() => {});
      this.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  /** Opens the rest of the blob after a failed attempt, retrying the open itself as attempts allow. */
  private async reopen(options: DownloadOptions, attempt: number, cause: unknown): Promise<Readable> {
    let last = cause;
    for (let a = attempt; a <= (options.retries ?? 0); a++) {
      await sleep(options.delayMs?.(a, last) ?? 0, options.signal);
      try {
        return await (options.resume as NonNullable<DownloadOptions['resume']>)(this.written);
      } catch (err) {
        if (!isResumable(err)) throw err;
        last = err;
      }
    }
    throw last;
  }

  /**
   * Pipes one body into the file, in batches (batch-sink.ts): a body that arrives in small reads
   * costs a write, a hash update and a wake-up of the readers per batch, not per read. The stall
   * timer runs only while the sink is ready for more and nothing comes: time the sink spends
   * waiting on slow clients (disk full, below) is not a stall. When the body breaks, what it
   * delivered is written before the resume, which starts after it.
   */
  private async receive(body: Readable, digester: Digester, options: DownloadOptions): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // Re-armed on every read the body makes (thousands a second on a slow link): refresh() moves
    // the one timer instead of making a new one each time.
    const arm = () => {
      if (!options.stallTimeoutMs) return;
      if (timer) timer.refresh();
      else
        timer = setTimeout(
          () => body.destroy(new StallError(options.stallTimeoutMs ?? 0)),
          options.stallTimeoutMs,
        );
    };
    const disarm = () => {
      clearTimeout(timer);
      timer = undefined;
    };
    const sink = new BatchSink({
      batchBytes: this.batchBytes,
      delayMs: this.batchDelayMs,
      highWaterMark: READ_CHUNK_BYTES,
      flush: async (buffers) => {
        const n = await this.append(buffers, digester);
        options.onBytes?.(n);
      },
      onBusy: disarm,
      onReady: arm,
    });
    arm();
    try {
      await pipeline(body, sink, options.signal ? { signal: options.signal } : {});
    } catch (err) {
      // Only a resume needs the bytes received so far; anything else fails the download, and
      // must not wait for a flush that holds the upstream back for slow readers (disk full).
      if (isResumable(err) && !options.signal?.aborted) await sink.flushReceived();
      throw err;
    } finally {
      disarm();
    }
  }

  private async append(buffers: Buffer[], digester: Digester): Promise<number> {
    let length = 0;
    for (const b of buffers) length += b.byteLength;
    if (this.size !== undefined && this.written + length > this.size) {
      throw new BlobVerifyError(
        'SIZE_MISMATCH',
        `blob ${this.digest.value}: upstream sent more than ${this.size} bytes`,
      );
    }
    let offset = 0;
    if (!this.tail) {
      try {
        while (offset < length) {
          const { bytesWritten } = await this.handle.writev(
            sliceBuffers(buffers, offset),
            this.written + offset,
          );
          offset += bytesWritten;
        }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
        // The disk is full: keep streaming to the clients from memory, store nothing.
        this.fileBytes = this.written + offset;
        this.tail = new MemoryTail(this.fileBytes);
        this.onUnstored?.(err as Error);
      }
    }
    if (this.tail) {
      for (const b of sliceBuffers(buffers, offset)) this.tail.append(Buffer.from(b));
    }
    for (const b of buffers) digester.update(b);
    this.written += length;
    this.notify();
    if (this.tail) {
      // Hold the upstream back while the slowest client still needs what memory holds. The new
      // bytes are readable meanwhile: a batch larger than the limit would otherwise wait for
      // readers that wait for it.
      for (;;) {
        if (this.positions.size === 0 && this.everRead) throw new NoSpaceError(this.digest.value);
        const slowest = Math.min(...this.positions.values());
        this.tail.dropBefore(slowest);
        // Memory is dropped by whole chunks: once every reader has all it may read before the
        // download ends (the last byte waits for verification), holding back only deadlocks.
        if (
          this.tail.heldBytes <= this.memoryLimitBytes ||
          this.positions.size === 0 ||
          slowest >= this.written - 1
        )
          break;
        await this.waitForChange();
      }
    }
    return length;
  }

  private fail(err: Error): void {
    if (this.stateValue !== 'downloading') return;
    this.stateValue = 'failed';
    this.errorValue = err;
    this.notify();
    this.maybeClose();
  }

  /** Fails the download from outside (shutdown). */
  abort(reason: Error): void {
    this.fail(reason);
  }

  /**
   * Registers a reader, or resolves undefined when the download has finished and let go of its
   * file (the caller then reads the stored blob instead). Reads go through the reader, which
   * tracks its position: once the disk is full, memory keeps what the slowest reader still needs.
   * `from` is where the reader will start, so that a reader of a late range holds nothing before it.
   */
  acquire(from = 0): InflightReader | undefined {
    if (this.closed) return undefined;
    const id = this.nextReaderId++;
    this.positions.set(id, from);
    this.everRead = true;
    let released = false;
    return {
      read: async (buf, pos, max, end) => {
        this.positions.set(id, pos);
        const n = await this.readAt(buf, pos, max, end);
        if (!released) this.positions.set(id, pos + n);
        if (this.tail) this.notify(); // a writer may be waiting for this reader to move on
        return n;
      },
      waitReadable: (pos, end) => this.waitReadable(pos, end),
      release: () => {
        if (released) return;
        released = true;
        this.positions.delete(id);
        this.notify();
        this.maybeClose();
      },
    };
  }

  /**
   * Reads up to `max` bytes at `pos` into `buf` for a reader of the range ending at `end`
   * (inclusive; undefined: the end of the blob), waiting for bytes that have not arrived yet.
   * Resolves 0 at the end of the range. A read that reaches the blob's last byte resolves only
   * once the digest checked out, and rejects if it did not.
   */
  private async readAt(buf: Buffer, pos: number, max: number, end: number | undefined): Promise<number> {
    for (;;) {
      const lastByte =
        this.size !== undefined
          ? this.size - 1
          : this.stateValue === 'complete'
            ? this.written - 1
            : Infinity;
      const stop = Math.min(end ?? Infinity, lastByte);
      if (pos > stop) {
        const toEnd = end === undefined || end >= lastByte;
        if (toEnd && this.stateValue === 'downloading') {
          await this.waitForChange();
          continue;
        }
        if (toEnd && this.stateValue === 'failed') throw this.errorValue;
        return 0;
      }
      // The blob's last byte goes out only after verification: a client that has every byte
      // of a Content-Length body considers it complete, whatever happens to the connection.
      const verifiedOnly =
        this.stateValue === 'complete' || this.size === undefined ? Infinity : this.size - 1;
      const available = Math.min(stop + 1, this.written, verifiedOnly) - pos;
      if (available > 0) {
        const want = Math.min(available, max, buf.byteLength);
        if (this.fileBytes !== undefined) {
          // The disk filled up: the file holds [0, fileBytes), memory the newest bytes after that.
          if (pos >= this.fileBytes) return (this.tail as MemoryTail).read(pos, buf, want);
          const { bytesRead } = await this.handle.read(buf, 0, Math.min(want, this.fileBytes - pos), pos);
          return bytesRead;
        }
        const { bytesRead } = await this.handle.read(buf, 0, want, pos);
        return bytesRead;
      }
      if (this.stateValue === 'failed') throw this.errorValue;
      if (this.stateValue === 'complete') return 0;
      await this.waitForChange();
    }
  }

  /**
   * Resolves once a read at `pos` (see readAt) would not wait for the download: bytes are there,
   * the range ended, or the download is over. The server waits here before it takes a send
   * buffer, so that clients waiting on a slow upstream hold none (send-budget.ts). Only a hint:
   * readAt still waits on its own if needed.
   */
  private async waitReadable(pos: number, end: number | undefined): Promise<void> {
    while (this.stateValue === 'downloading') {
      const lastByte = this.size !== undefined ? this.size - 1 : Infinity;
      const stop = Math.min(end ?? Infinity, lastByte);
      if (pos > stop) {
        // Past the range: readAt answers at once, unless this reader wants the verified end.
        if (end !== undefined && end < lastByte) return;
      } else {
        const verifiedOnly = this.size === undefined ? Infinity : this.size - 1;
        if (Math.min(stop + 1, this.written, verifiedOnly) - pos > 0) return;
      }
      await this.waitForChange();
    }
  }

  /**
   * A stream of bytes `start..end` (inclusive; `end` defaults to the last byte) served from the
   * partial file as they arrive (see readAt). The server uses readAt with pooled buffers; this
   * stream form serves other consumers.
   */
  createReader(start: number, end?: number): Readable {
    const reader = this.acquire();
    if (!reader) {
      if (this.stateValue === 'complete' && this.storedPath) {
        // Finished and its descriptor closed: read the stored file (it holds the same bytes).
        return createReadStream(this.storedPath, { start, ...(end !== undefined ? { end } : {}) });
      }
      // Verified but not stored (disk full): nothing is left to read; the caller looks it up again.
      const gone = this.errorValue ?? (this.tail ? new UnstoredBlobError(this.digest.value) : undefined);
      return new Readable({ read() {} }).destroy(gone ?? new Error('download failed'));
    }
    let pos = start;
    return new Readable({
      highWaterMark: READ_CHUNK_BYTES,
      read: function (this: Readable) {
        const buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
        reader.read(buf, pos, buf.byteLength, end).then(
          (n) => {
            if (n === 0) {
              this.push(null);
              return;
            }
            pos += n;
            this.push(buf.subarray(0, n));
          },
          (err: Error) => this.destroy(err),
        );
      },
      destroy: (err, callback) => {
        reader.release();
        callback(err);
      },
    });
  }

  private waitForChange(): Promise<void> {
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const w of waiters) w();
  }

  private maybeClose(): void {
    if (this.closed || this.stateValue === 'downloading' || this.positions.size > 0) return;
    this.closed = true;
    this.handle.close().catch(() => {});
  }
}

/**
 * A download that ended verified but unstored (the disk was full) was asked for a new reader: its
 * bytes went only to the readers it had. Retryable: a new lookup downloads the blob again.
 */
export class UnstoredBlobError extends Error {
  readonly code = 'BLOB_NOT_STORED';
  constructor(digest: string) {
    super(`blob ${digest} was served without being stored (disk full); look it up again to download it anew`);
    this.name = 'UnstoredBlobError';
  }
}

/** A registered reader of an in-flight blob (see InflightBlob.acquire). */
export interface InflightReader {
  /**
   * Reads up to `max` bytes at `pos` into `buf` for a range ending at `end` (inclusive;
   * undefined: the blob's end), waiting for bytes that have not arrived; resolves 0 at the end.
   */
  read(buf: Buffer, pos: number, max: number, end: number | undefined): Promise<number>;
  /** Resolves once `read` at `pos` would not wait for the download (a hint; see InflightBlob). */
  waitReadable?(pos: number, end: number | undefined): Promise<void>;
  release(): void;
}

/** Memory a download may hold for its clients once the disk is full. */
export const DEFAULT_MEMORY_TAIL_BYTES = 32 * 1024 * 1024;

/**
 * Batches of a download's body (batch-sink.ts). 256 KiB is 10 ms of a 200 Mbit/s link; a slower
 * link is flushed by the delay instead, about 100 times a second, each reader then reading and
 * sending one batch at once. 10 ms is far below what a client or a peer's rate window notices,
 * even summed over a relay chain of several nodes.
 */
export const DEFAULT_BATCH_BYTES = 256 * 1024;
export const DEFAULT_BATCH_DELAY_MS = 10;

export interface DownloadOptions {
  signal?: AbortSignal;
  onBytes?: (n: number) => void;
  /** Opens the blob from `offset` on (a ranged GET) after the body broke or stalled. */
  resume?: (offset: number) => Promise<Readable>;
  /** How many times to resume (0: never). */
  retries?: number;
  /** Delay before resume attempt `attempt` (1-based), given what failed. */
  delayMs?: (attempt: number, error: unknown) => number;
  /** A body that sends nothing for this long is treated as broken. */
  stallTimeoutMs?: number;
  onRetry?: (attempt: number, error: Error) => void;
}

function sliceBuffers(buffers: Buffer[], offset: number): Buffer[] {
  if (offset === 0) return buffers;
  const out: Buffer[] = [];
  let skip = offset;
  for (const b of buffers) {
    if (skip >= b.byteLength) {
      skip -= b.byteLength;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
