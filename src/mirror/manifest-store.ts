import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../oci/index.js';
import { syncDir } from '../fs/index.js';

export interface StoredManifest {
  mediaType: string;
  body: Buffer;
}

/** What a tag pointed at upstream when last checked. */
export interface TagEntry {
  digest: string;
  mediaType: string;
  size: number;
  /** Epoch milliseconds of the last confirmation from upstream. */
  checkedAt: number;
}

/**
 * Manifests by digest (immutable, kept for good) and tag→digest mappings (re-checked after a
 * TTL), on disk so that a restarted mirror serves them while upstreams are unreachable:
 *
 *   manifests/<algorithm>/<hex>                 "<media type>\n<manifest bytes>"
 *   tags/<upstream>/<repository>/_tags/<tag>    JSON TagEntry
 *
 * Repository names and tags are validated by the spec's grammars before they get here, and the
 * upstream name is URI-encoded, so no path can leave the storage root.
 */
export class ManifestStore {
  private readonly manifestsDir: string;
  private readonly tagsDir: string;
  private readonly tmpDir: string;

  constructor(root: string) {
    this.manifestsDir = join(root, 'manifests');
    this.tagsDir = join(root, 'tags');
    this.tmpDir = join(root, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(join(this.manifestsDir, 'sha256'), { recursive: true });
    await mkdir(join(this.manifestsDir, 'sha512'), { recursive: true });
    await mkdir(this.tagsDir, { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  async get(digest: Digest): Promise<StoredManifest | undefined> {
    const raw = await readIfExists(join(this.manifestsDir, digest.algorithm, digest.hex));
    if (!raw) return undefined;
    const nl = raw.indexOf(0x0a);
    if (nl < 0) return undefined;
    return { mediaType: raw.subarray(0, nl).toString('utf8'), body: raw.subarray(nl + 1) };
  }

  /** Stores a manifest whose bytes the caller has verified against `digest`. */
  async put(digest: Digest, mediaType: string, body: Buffer): Promise<void> {
    const data = Buffer.concat([Buffer.from(`${mediaType}\n`, 'utf8'), body]);
    await this.writeAtomic(join(this.manifestsDir, digest.algorithm, digest.hex), data);
  }

  async getTag(upstream: string, repo: string, tag: string): Promise<TagEntry | undefined> {
    const raw = await readIfExists(this.tagPath(upstream, repo, tag));
    if (!raw) return undefined;
    try {
      const entry = JSON.parse(raw.toString('utf8')) as TagEntry;
      return typeof entry.digest === 'string' && typeof entry.checkedAt === 'number' ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  async putTag(upstream: string, repo: string, tag: string, entry: TagEntry): Promise<void> {
    await this.writeAtomic(this.tagPath(upstream, repo, tag), Buffer.from(JSON.stringify(entry)));
  }

  private tagPath(upstream: string, repo: string, tag: string): string {
    return join(this.tagsDir, encodeURIComponent(upstream), repo, '_tags', tag);
  }

  private async writeAtomic(path: string, data: Buffer): Promise<void> {
    const dir = dirname(path);
    await mkdir(dir, { recursive: true });
    const tmp = join(this.tmpDir, `m.${randomBytes(8).toString('hex')}`);
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    await rename(tmp, path);
    await syncDir(dir);
  }
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
