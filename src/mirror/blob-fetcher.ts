import type { Logger } from 'pino';
import type { Digest } from '../oci/index.js';
import {
  backoffDelayMs,
  UpstreamError,
  type BlobResponse,
  type RequestOptions,
  type RetryPolicy,
} from '../registry-client/index.js';
import { sliceStream } from './http.js';
import type { BlobStore } from './blob-store.js';
import { MirrorError } from './errors.js';
import { BlobVerifyError, InflightBlob, type InflightReader } from './inflight-blob.js';
import type { MirrorMetrics } from './metrics.js';

/**
 * Where a blob comes from on a miss. Today an upstream registry (RegistryClient); the same
 * interface will front peer mirrors, so nothing here assumes a registry.
 */
export interface BlobSource {
  readonly name: string;
  getBlob(
    repo: string,
    digest: string,
    opts?: RequestOptions & { range?: { start: number; end?: number } },
  ): Promise<BlobResponse>;
  headBlob(repo: string, digest: string, opts?: RequestOptions): Promise<{ size: number | undefined }>;
  /** Told when a download from this source ended (with its error if it failed): peers use it. */
  settled?(digest: string, err?: Error): void;
}

export interface BlobFetcherOptions {
  store: BlobStore;
  metrics: MirrorMetrics;
  logger: Logger;
  /** Resumes of a broken or stalled download before it fails. */
  retries: number;
  stallTimeoutMs: number;
  retry: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
  /** Called when a blob was stored (the garbage collector checks the budget). */
  onStored?: () => void;
  /** Called when the disk refused a download (the garbage collector may free room). */
  onNoSpace?: () => void;
  /** Memory a download may hold for its clients once the disk is full. */
  memoryTailBytes?: number;
}

/**
 * A blob in the store, or a download in progress with a reader already registered on it: the
 * reader holds the download's file and memory tail for this request from the moment it is found,
 * so a download that ends before the caller reads (a disk-full one keeps nothing) loses no bytes.
 */
export type BlobLookup =
  { kind: 'stored'; size: number } | { kind: 'inflight'; blob: InflightBlob; reader: InflightReader };

/**
 * Times a lookup starts over when the download it found had already ended without storing the
 * blob (disk full) before a reader could join it. Each try is a new download, so more than one
 * means downloads end faster than a request can join them: answered with a retryable error.
 */
const LOOKUP_TRIES = 3;

/**
 * Single-flight blob downloads: the first miss for a digest starts one upstream GET; every other
 * request for that digest while it runs joins it (InflightBlob serves them from the bytes as they
 * arrive). Keyed by digest alone: content addressing makes the same layer from two repositories or
 * two registries one download and one stored copy.
 */
export class BlobFetcher {
  private readonly store: BlobStore;
  private readonly metrics: MirrorMetrics;
  private readonly logger: Logger;
  private readonly inflight = new Map<string, Promise<InflightBlob>>();
  /** Downloads whose body is streaming, by digest. */
  private readonly downloads = new Map<string, InflightBlob>();
  /** Every download still running, joinable or not (for shutdown). */
  private readonly running = new Set<InflightBlob>();
  private readonly settling = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private readonly options: BlobFetcherOptions;

  constructor(options: BlobFetcherOptions) {
    this.options = options;
    this.store = options.store;
    this.metrics = options.metrics;
    this.logger = options.logger;
  }

  /**
   * Finds a blob in the store or in flight, starting a download from `source` on a miss; an
   * in-flight answer comes with a reader registered at offset 0 (the caller releases it).
   */
  async lookup(source: BlobSource, repo: string, digest: Digest): Promise<BlobLookup> {
    for (let attempt = 1; ; attempt++) {
      const found = await this.find(source, repo, digest);
      if (found.kind === 'stored') return found;
      // Registered in the same turn the download was found, before it can end and let go.
      const reader = found.blob.acquire(0);
      if (reader) return { kind: 'inflight', blob: found.blob, reader };
      const blob = found.blob;
      if (blob.state === 'failed') {
        // It failed (a digest mismatch, a broken upstream) before this request joined: say so with
        // an error status rather than claim the blob does not exist.
        throw new MirrorError(
          'UNAVAILABLE',
          `the download of blob ${digest.value} failed: ${blob.error?.message ?? 'unknown error'}`,
          { cause: blob.error },
        );
      }
      // It ended before this request joined: stored (the next try reads the store), or verified
      // but not stored because the disk was full (it is forgotten, so the next try downloads anew).
      if (attempt >= LOOKUP_TRIES) {
        throw new MirrorError(
          'UNAVAILABLE',
          `blob ${digest.value}: downloads ended before this request could join them (disk full); retry`,
          { status: 503, retryAfterSeconds: 1 },
        );
      }
    }
  }

  private async find(
    source: BlobSource,
    repo: string,
    digest: Digest,
  ): Promise<{ kind: 'stored'; size: number } | { kind: 'inflight'; blob: InflightBlob }> {
    const pending = this.inflight.get(digest.value);
    if (pending) {
      this.metrics.cacheLookups.inc({ kind: 'blob', result: 'inflight' });
      return { kind: 'inflight', blob: await pending };
    }
    const size = await this.store.size(digest);
    if (size !== undefined) {
      this.metrics.cacheLookups.inc({ kind: 'blob', result: 'hit' });
      return { kind: 'stored', size };
    }
    // Another request may have started the download while we looked at the disk.
    const raced = this.inflight.get(digest.value);
    if (raced) {
      this.metrics.cacheLookups.inc({ kind: 'blob', result: 'inflight' });
      return { kind: 'inflight', blob: await raced };
    }
    this.metrics.cacheLookups.inc({ kind: 'blob', result: 'miss' });
    const started = this.start(source, repo, digest);
    this.inflight.set(digest.value, started);
    started.catch(() => {
      if (this.inflight.get(digest.value) === started) this.inflight.delete(digest.value);
    });
    return { kind: 'inflight', blob: await started };
  }

  /** Whether a download of this blob is starting or running. */
  isInflight(digest: Digest): boolean {
    return this.inflight.has(digest.value);
  }

  /** Size of a blob being downloaded, when the upstream said. */
  inflightSize(digest: Digest): number | undefined {
    return this.downloads.get(digest.value)?.size;
  }

  /** Resolves when every download has finished or failed (and cleaned up its temp file). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.settling]);
  }

  /** Downloads in progress (for status and tests). */
  get inflightCount(): number {
    return this.running.size;
  }

  /** Aborts every download (shutdown); their clients' connections are aborted. */
  abortAll(reason: Error): void {
    this.shutdown.abort(reason);
    for (const blob of this.running) blob.abort(reason);
  }

  /** Stops offering `blob` to new clients (only if it is still the one offered for its digest). */
  private forget(digest: Digest, blob: InflightBlob): void {
    if (this.downloads.get(digest.value) !== blob) return;
    this.downloads.delete(digest.value);
    this.inflight.delete(digest.value);
  }

  private async start(source: BlobSource, repo: string, digest: Digest): Promise<InflightBlob> {
    const log = this.logger.child({ upstream: source.name, repo, digest: digest.value });
    const endTimer = this.metrics.upstreamFetchDuration.startTimer({ upstream: source.name, kind: 'blob' });
    let res: BlobResponse;
    try {
      res = await source.getBlob(repo, digest.value, { signal: this.shutdown.signal });
    } catch (err) {
      source.settled?.(digest.value, err instanceof Error ? err : new Error(String(err)));
      endTimer({ outcome: 'error' });
      throw err;
    }
    let blob: InflightBlob;
    try {
      blob = await InflightBlob.create(this.store, digest, res.status === 200 ? res.totalSize : undefined);
    } catch (err) {
      res.body.destroy();
      source.settled?.(digest.value, err instanceof Error ? err : new Error(String(err)));
      endTimer({ outcome: 'error' });
      throw err;
    }
    if (this.options.memoryTailBytes !== undefined) blob.memoryLimitBytes = this.options.memoryTailBytes;
    blob.onUnstored = (err) => {
      // New clients must not join a download that keeps only its newest bytes: they start their own.
      this.forget(digest, blob);
      this.metrics.storeWriteFailures.inc({ reason: (err as NodeJS.ErrnoException).code ?? 'ERROR' });
      log.warn(
        { err: err.message, received: blob.bytesWritten },
        'disk full: streaming to clients without storing',
      );
      this.options.onNoSpace?.();
    };
    this.downloads.set(digest.value, blob);
    this.running.add(blob);
    this.metrics.inflightFetches.inc();
    log.debug({ size: blob.size }, 'blob download started');
    const upstreamBytes = this.metrics.upstreamBytes.labels({ upstream: source.name });
    const fetched = {
      upstream: this.metrics.fetchedBytes.labels({ source: 'upstream' }),
      peer: this.metrics.fetchedBytes.labels({ source: 'peer' }),
    };
    // Where the body now streaming comes from: a resume may switch between peers and the upstream.
    let fromPeer = res.peer !== undefined;
    const size = blob.size;
    const settle = blob
      .download(res.body, this.store, {
        signal: this.shutdown.signal,
        onBytes: (n) => {
          if (fromPeer) {
            fetched.peer.inc(n);
          } else {
            fetched.upstream.inc(n);
            upstreamBytes.inc(n);
          }
        },
        retries: this.options.retries,
        stallTimeoutMs: this.options.stallTimeoutMs,
        delayMs: (attempt, err) =>
          backoffDelayMs(
            attempt,
            this.options.retry,
            err instanceof UpstreamError ? err.retryAfterSeconds : undefined,
          ),
        onRetry: (attempt, err) => {
          this.metrics.upstreamResumes.inc({ upstream: source.name });
          log.warn({ attempt, offset: blob.bytesWritten, err: err.message }, 'blob download broke; resuming');
        },
        resume: async (offset) => {
          const more = await source.getBlob(repo, digest.value, {
            range: { start: offset },
            signal: this.shutdown.signal,
            background: true,
          });
          fromPeer = more.peer !== undefined;
          if (more.status === 206) {
            if (size !== undefined && more.totalSize !== undefined && more.totalSize !== size) {
              more.body.destroy();
              throw new UpstreamError(
                'UPSTREAM_BAD_RESPONSE',
                `upstream now says the blob has ${more.totalSize} bytes`,
              );
            }
            return more.body;
          }
          // The upstream ignored Range: skip what we already have.
          const rest = sliceStream(offset, undefined);
          more.body.pipe(rest);
          more.body.on('error', (e) => rest.destroy(e));
          return rest;
        },
      })
      .then(
        () => {
          source.settled?.(digest.value);
          endTimer({ outcome: 'ok' });
          this.metrics.storeBytes.set(this.store.totalBytes);
          this.metrics.storeBlobs.set(this.store.blobCount);
          if (blob.unstored) {
            log.info({ size: blob.bytesWritten }, 'blob verified and served, not stored (disk full)');
          } else {
            log.info({ size: blob.bytesWritten }, 'blob stored');
            this.options.onStored?.();
          }
        },
        (err: unknown) => {
          source.settled?.(digest.value, err instanceof Error ? err : new Error(String(err)));
          endTimer({ outcome: 'error' });
          if (err instanceof BlobVerifyError) this.metrics.verifyFailures.inc({ upstream: source.name });
          log.warn({ err: String(err), received: blob.bytesWritten }, 'blob download failed; nothing stored');
        },
      )
      .finally(() => {
        this.running.delete(blob);
        this.forget(digest, blob);
        this.metrics.inflightFetches.dec();
        this.settling.delete(settle);
      });
    this.settling.add(settle);
    return blob;
  }
}
