import { Writable } from 'node:stream';

/**
 * The sink a download's body is piped into: it gathers the body's chunks and hands them on in
 * batches of at least `batchBytes`, or after `delayMs` when fewer arrive, and at the body's end.
 *
 * Why: each batch costs the in-flight blob a file write, a hash update and a wake-up of every
 * reader, each of which then makes a read of the file and a socket write of its own. A shaped or
 * slow link delivers a body in many small reads, and Node's Writable only batches what piled up
 * while the last write ran, so these costs were paid per read: the mirrors' CPU grew with a
 * rollout's duration, not its bytes (issue 13: 31 CPU s at 200 Mbit/s, 79 at 50 Mbit/s, for the
 * same bytes; bench/inflight-cpu.ts measures it). The delay bounds how long a byte waits before
 * readers can have it.
 *
 * Memory: at most the batch being handed on, plus `batchBytes` gathered meanwhile and what the
 * Writable buffers (`highWaterMark`): a write that fills the batch is acknowledged only once that
 * batch is handed on, so the body is held back from there.
 */
export interface BatchSinkOptions {
  /** Gather at least this many bytes before handing them on (0: hand on every write at once). */
  batchBytes: number;
  /** Longest the first gathered byte waits for more. */
  delayMs: number;
  /** What the Writable buffers while a batch is being taken, before the body is held back. */
  highWaterMark: number;
  /** Takes one batch (the chunks as they came, in order); resolves when it may take more. */
  flush: (chunks: Buffer[], bytes: number) => Promise<void>;
  /** The sink waits on `flush` before it takes more (so a stall timer must not run). */
  onBusy?: () => void;
  /** The sink took a write and is ready for more (called once per write the body makes). */
  onReady?: () => void;
}

export class BatchSink extends Writable {
  private readonly options: BatchSinkOptions;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Batches are handed on one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(options: BatchSinkOptions) {
    super({ highWaterMark: options.highWaterMark });
    this.options = options;
  }

  override _writev(chunks: Array<{ chunk: unknown }>, callback: (err?: Error | null) => void): void {
    for (const c of chunks) {
      const b = c.chunk as Buffer;
      this.pending.push(b);
      this.pendingBytes += b.byteLength;
    }
    if (this.pendingBytes >= this.options.batchBytes) {
      this.options.onBusy?.();
      this.flushNow().then(() => {
        this.options.onReady?.();
        callback();
      }, callback);
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flushNow().catch((err: Error) => this.destroy(err));
    }, this.options.delayMs);
    this.options.onReady?.();
    callback();
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.flushNow().then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    callback(err);
  }

  /**
   * Hands on what was gathered and waits for every batch to be taken; rejects with what failed.
   * For after the body broke: a resume must start after every byte received. Works on a
   * destroyed sink too.
   */
  flushReceived(): Promise<void> {
    return this.flushNow();
  }

  /** Gathered bytes not yet handed on (for tests). */
  get gatheredBytes(): number {
    return this.pendingBytes;
  }

  private flushNow(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const run = this.chain.then(() => {
      if (this.failure) throw this.failure;
      if (this.pendingBytes === 0) return undefined;
      // What gathered while the previous batch was being taken goes too.
      const chunks = this.pending;
      const bytes = this.pendingBytes;
      this.pending = [];
      this.pendingBytes = 0;
      return this.options.flush(chunks, bytes);
    });
    this.chain = run.catch((err: unknown) => {
      this.failure ??= err instanceof Error ? err : new Error(String(err));
    });
    return run;
  }
}
