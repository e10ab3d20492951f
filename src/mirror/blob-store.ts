import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
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
 */
export class BlobStore {
  readonly root: string;
  private readonly blobsDir: string;
  readonly tmpDir: string;
  private bytes = 0;
  private count = 0;

  constructor(root: string) {
    this.root = root;
    this.blobsDir = join(root, 'blobs');
    this.tmpDir = join(root, 'tmp');
  }

  /** Creates the layout, removes temp files a crash left behind and totals what is stored. */
  async init(): Promise<void> {
    await mkdir(join(this.blobsDir, 'sha256'), { recursive: true });
    await mkdir(join(this.blobsDir, 'sha512'), { recursive: true });
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    this.bytes = 0;
    this.count = 0;
    for (const algorithm of ['sha256', 'sha512']) {
      for (const name of await readdir(join(this.blobsDir, algorithm))) {
        const s = await stat(join(this.blobsDir, algorithm, name)).catch(() => undefined);
        if (s?.isFile()) {
          this.bytes += s.size;
          this.count += 1;
        }
      }
    }
  }

  get totalBytes(): number {
    return this.bytes;
  }

  get blobCount(): number {
    return this.count;
  }

  pathOf(digest: Digest): string {
    return join(this.blobsDir, digest.algorithm, digest.hex);
  }

  /** Size of a stored blob, or undefined when it is not stored. */
  async size(digest: Digest): Promise<number | undefined> {
    try {
      const s = await stat(this.pathOf(digest));
      return s.isFile() ? s.size : undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Opens a stored blob, or resolves undefined when it is not stored. */
  async openHandle(digest: Digest): Promise<FileHandle | undefined> {
    try {
      return await open(this.pathOf(digest), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
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
    const target = this.pathOf(digest);
    const existed = (await this.size(digest)) !== undefined;
    await rename(tempPath, target);
    await syncDir(join(this.blobsDir, digest.algorithm));
    if (!existed) {
      this.bytes += size;
      this.count += 1;
    }
  }
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
