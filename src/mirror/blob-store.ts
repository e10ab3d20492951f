import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir } from '../fs/index.js';
import type { Digest } from '../oci/index.js';

/**
 * The content-addressed store on disk, shared by every upstream: a layer pulled from two
 * registries is stored once. Layout under the storage root:
 *
 *   blobs/<algorithm>/<hex>       verified blob bytes, immutable
 *   tmp/<hex>.<random>            downloads in progress; never served by path, wiped at start
 *
 * Nothing is visible under its digest until it has been written whole, checked against that
 * digest, fsynced and renamed into place (see InflightBlob). A crash leaves only temp files.
 *
 * The store also keeps the blobs in least-recently-used order (persisted as file mtimes, so that
 * a restart keeps it) and which blobs are being read, for the garbage collector (gc.ts): a pinned
 * blob is never evicted.
 */
export class BlobStore {
  readonly root: string;
  private readonly blobsDir: string;
  readonly tmpDir: string;
  private bytes = 0;
  /** Stored blobs, least recently used first (a Map keeps insertion order; a touch re-inserts). */
  private readonly entries = new Map<string, { digest: Digest; size: number; touchedAt: number }>();
  private readonly pins = new Map<string, number>();

  /**
   * `onRemoved` runs after a blob has left the store (eviction), before `evict` resolves: the
   * access records of its digest go with it (access.ts).
   */
  constructor(
    root: string,
    private readonly options: { onRemoved?: (digest: Digest) => Promise<void> } = {},
  ) {
    this.root = root;
    this.blobsDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
  }

  /** Creates the layout, removes temp files a crash left behind and indexes what is stored. */
  async init(): Promise<void> {
    await mkdir(join(this.blobsDir, 'sha256'), { recursive: true });
    await mkdir(join(this.blobsDir, 'sha512'), { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    this.bytes = 0;
    this.entries.clear();
    const found: Array<{ digest: Digest; size: number; touchedAt: number }> = [];
    for (const algorithm of ['sha256', 'sha512'] as const) {
      for (const hex of await readdir(join(this.blobsDir, algorithm))) {
        const s = await stat(join(this.blobsDir, algorithm, hex)).catch(() => undefined);
        if (s?.isFile())
          found.push({
            digest: { algorithm, hex, value: `${algorithm}:${hex}` },
            size: s.size,
            touchedAt: s.mtimeMs,
          });
      }
    }
    found.sort((a, b) => a.touchedAt - b.touchedAt);
    for (const e of found) {
      this.entries.set(e.digest.value, e);
      this.bytes += e.size;
    }
  }

  get totalBytes(): number {
    return this.bytes;
  }

  get blobCount(): number {
    return this.entries.size;
  }

  pathOf(digest: Digest): string {
    return join(this.blobsDir, digest.algorithm, digest.hex);
  }

  /** Size of a stored blob, or undefined when it is not stored. */
  async size(digest: Digest): Promise<number | undefined> {
    const entry = this.entries.get(digest.value);
    if (entry) return entry.size;
    // Not indexed (another process, or a race with eviction): ask the disk.
    try {
      const s = await stat(this.pathOf(digest));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Opens a stored blob, or resolves undefined when it is not stored. Counts as a use. */
  async openHandle(digest: Digest): Promise<FileHandle | undefined> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    this.touch(digest);
    return handle;
  }

  /** Marks a blob as in use: it is not evicted until the returned function is called. */
  pin(digest: Digest): () => void {
    this.pins.set(digest.value, (this.pins.get(digest.value) ?? 0) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = (this.pins.get(digest.value) ?? 1) - 1;
      if (n <= 0) this.pins.delete(digest.value);
      else this.pins.set(digest.value, n);
    };
  }

  isPinned(digest: Digest): boolean {
    return this.pins.has(digest.value);
  }

  /** Stored blobs from least to most recently used (a snapshot). */
  lruOrder(): Array<{ digest: Digest; size: number }> {
    return [...this.entries.values()].map(({ digest, size }) => ({ digest, size }));
  }

  /** Removes a stored blob. Resolves its size, or undefined when it was not stored or is pinned. */
  async evict(digest: Digest): Promise<number | undefined> {
    const entry = this.entries.get(digest.value);
    if (!entry || this.isPinned(digest)) return undefined;
    this.entries.delete(digest.value);
    this.bytes -= entry.size;
    await unlink(this.pathOf(digest)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await this.options.onRemoved?.(digest);
    return entry.size;
  }

  /** A fresh temp path for a download of `digest`. */
  tempPath(digest: Digest): string {
    return join(this.tmpDir, `${digest.hex.slice(0, 16)}.${randomBytes(6).toString('hex')}`);
  }

  /**
   * Moves a verified, fsynced temp file into place under its digest and syncs the directory so
   * that the rename survives a crash.
   */
  async commit(tempPath: string, digest: Digest, size: number): Promise<void> {
    await rename(tempPath, this.pathOf(digest));
    await syncDir(join(this.blobsDir, digest.algorithm));
    if (!this.entries.has(digest.value)) this.bytes += size;
    this.entries.delete(digest.value);
    this.entries.set(digest.value, { digest, size, touchedAt: Date.now() });
  }

  /**
   * Moves a blob to the most-recently-used end. The file's mtime records it for the next start,
   * written at most once a minute per blob (a touch per request would be a write per request).
   */
  private touch(digest: Digest): void {
    const entry = this.entries.get(digest.value);
    if (!entry) return;
    this.entries.delete(digest.value);
    this.entries.set(digest.value, entry);
    const now = Date.now();
    if (now - entry.touchedAt < MTIME_PERSIST_INTERVAL_MS) return;
    entry.touchedAt = now;
    const t = new Date(now);
    utimes(this.pathOf(digest), t, t).catch(() => {});
  }
}

const MTIME_PERSIST_INTERVAL_MS = 60_000;
