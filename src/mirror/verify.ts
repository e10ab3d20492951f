import { createReadStream } from 'node:fs';
import { lstat, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Digester, isDigest, type Digest } from '../oci/index.js';
import { syncDir } from '../fs/index.js';
import { storageHolder } from './storage-lock.js';

/**
 * `hoist mirror verify`: re-hashes everything the store holds under a digest and removes what does
 * not match, so that a disk fault (or a hand edit) can never be served. The layout is the one that
 * BlobStore and ManifestStore write:
 *
 *   blobs/<algorithm>/<hex>        the blob's bytes
 *   manifests/<algorithm>/<hex>    "<media type>\n<manifest bytes>", digest over the manifest bytes
 *   tmp/*                          downloads in progress; left only by a crash
 *
 * Run it while the mirror is stopped: a running mirror's temp files are live downloads.
 */

export type VerifyErrorCode = 'STORAGE_NOT_FOUND' | 'STORAGE_INVALID' | 'STORAGE_IN_USE';

/** The storage root is missing or is not a mirror's storage (bad input: exit 2). */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VerifyError';
    this.code = code;
  }
}

export interface BadEntry {
  kind: 'blob' | 'manifest';
  /** Absolute path of the file. */
  path: string;
  /** The digest its path names (`sha256:<name>`; the bare name when that is no digest). */
  expected: string;
  /** The digest of its content, when it could be read. */
  actual?: string;
  /** Why it is bad when it is not a plain mismatch (unreadable, not a file, not a digest...). */
  error?: string;
  removed: boolean;
}

export interface TempFile {
  path: string;
  bytes: number;
  removed: boolean;
}

export interface VerifyReport {
  storage: string;
  dryRun: boolean;
  blobs: { checked: number; bad: number; bytes: number };
  manifests: { checked: number; bad: number };
  bad: BadEntry[];
  tempFiles: TempFile[];
  /** True when no bad entry was found (temp files are expected after a crash and do not count). */
  ok: boolean;
}

export interface VerifyOptions {
  /** Report only; remove nothing. */
  dryRun?: boolean;
  /** Files hashed at a time. Hashing is CPU-bound: about one per core. */
  concurrency?: number;
  signal?: AbortSignal;
}

const ALGORITHMS = ['sha256', 'sha512'] as const;
/** Read size per file; memory use is about concurrency × this, whatever the blob sizes. */
const READ_CHUNK_BYTES = 1024 * 1024;
/** A media type line longer than this means the file is not a stored manifest. */
const MAX_MEDIA_TYPE_BYTES = 1024;

interface Candidate {
  kind: BadEntry['kind'];
  path: string;
  algorithm: Digest['algorithm'];
  name: string;
}

interface Outcome {
  bytes: number;
  actual?: string;
  error?: string;
}

export async function verifyStorage(root: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const storage = resolve(root);
  const dryRun = options.dryRun === true;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  await checkStorageRoot(storage);

  const candidates: Candidate[] = [];
  for (const [kind, dir] of [
    ['blob', 'blobs'],
    ['manifest', 'manifests'],
  ] as const) {
    for (const algorithm of ALGORITHMS) {
      const algDir = join(storage, dir, algorithm);
      for (const name of await listIfExists(algDir)) {
        candidates.push({ kind, path: join(algDir, name), algorithm, name });
      }
    }
  }

  const report: VerifyReport = {
    storage,
    dryRun,
    blobs: { checked: 0, bad: 0, bytes: 0 },
    manifests: { checked: 0, bad: 0 },
    bad: [],
    tempFiles: [],
    ok: true,
  };
  const touchedDirs = new Set<string>();

  await forEachLimited(candidates, concurrency, async (c) => {
    const outcome = await checkEntry(c, options.signal);
    const counts = c.kind === 'blob' ? report.blobs : report.manifests;
    counts.checked += 1;
    if (c.kind === 'blob') report.blobs.bytes += outcome.bytes;
    const expected = `${c.algorithm}:${c.name}`;
    if (outcome.error === undefined && outcome.actual === expected) return;
    counts.bad += 1;
    if (!dryRun) {
      await rm(c.path, { recursive: true, force: true });
      touchedDirs.add(join(c.path, '..'));
    }
    report.bad.push({
      kind: c.kind,
      path: c.path,
      expected: isDigest(expected) ? expected : c.name,
      ...(outcome.actual !== undefined ? { actual: outcome.actual } : {}),
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
      removed: !dryRun,
    });
  });

  const tmpDir = join(storage, 'tmp');
  for (const name of await listIfExists(tmpDir)) {
    const path = join(tmpDir, name);
    const s = await lstat(path).catch(() => undefined);
    if (!s) continue;
    if (!dryRun) await rm(path, { recursive: true, force: true });
    report.tempFiles.push({ path, bytes: s.isFile() ? s.size : 0, removed: !dryRun });
  }
  if (!dryRun && report.tempFiles.length > 0) touchedDirs.add(tmpDir);

  // Removals are durable before the report says so (a later crash must not resurrect a bad file).
  for (const dir of touchedDirs) await syncDir(dir);

  const byPath = (a: { path: string }, b: { path: string }) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
  report.bad.sort(byPath);
  report.tempFiles.sort(byPath);
  report.ok = report.bad.length === 0;
  return report;
}

async function checkStorageRoot(storage: string): Promise<void> {
  let s;
  try {
    s = await stat(storage);
  } catch (cause) {
    throw new VerifyError(
      'STORAGE_NOT_FOUND',
      `storage directory ${storage} does not exist; pass --storage`,
      {
        cause,
      },
    );
  }
  if (!s.isDirectory()) {
    throw new VerifyError('STORAGE_INVALID', `storage ${storage} is not a directory; pass --storage`);
  }
  const holder = await storageHolder(storage);
  if (holder !== undefined) {
    throw new VerifyError(
      'STORAGE_IN_USE',
      `storage ${storage} is in use by a running mirror (pid ${holder}): its temp files are live downloads; stop the mirror first`,
    );
  }
  // Verify removes files; refuse a directory the mirror never initialised (a mistyped path).
  const blobs = await stat(join(storage, 'blobs')).catch(() => undefined);
  if (!blobs?.isDirectory()) {
    throw new VerifyError(
      'STORAGE_INVALID',
      `${storage} is not a hoist mirror storage (no blobs/ directory); pass the mirror's --storage`,
    );
  }
}

async function listIfExists(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function checkEntry(c: Candidate, signal: AbortSignal | undefined): Promise<Outcome> {
  if (!isDigest(`${c.algorithm}:${c.name}`))
    return { bytes: 0, error: `name is not a ${c.algorithm} digest` };
  const s = await lstat(c.path).catch((err: Error) => err);
  if (s instanceof Error) return { bytes: 0, error: s.message };
  if (!s.isFile()) return { bytes: 0, error: 'not a regular file' };
  try {
    return c.kind === 'blob' ? await hashBlob(c, signal) : await hashManifest(c, signal);
  } catch (err) {
    if (signal?.aborted) throw err;
    return { bytes: 0, error: (err as Error).message };
  }
}

async function hashBlob(c: Candidate, signal: AbortSignal | undefined): Promise<Outcome> {
  const digester = new Digester(c.algorithm);
  await pipeline(
    createReadStream(c.path, { highWaterMark: READ_CHUNK_BYTES }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) digester.update(chunk);
    },
    { signal },
  );
  return { bytes: digester.size, actual: digester.digest().value };
}

/** The digest covers the manifest bytes only, after the media type line (ManifestStore.put). */
async function hashManifest(c: Candidate, signal: AbortSignal | undefined): Promise<Outcome> {
  const digester = new Digester(c.algorithm);
  let headerBytes = 0;
  let inBody = false;
  let total = 0;
  await pipeline(
    createReadStream(c.path, { highWaterMark: READ_CHUNK_BYTES }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) {
        total += chunk.byteLength;
        if (inBody) {
          digester.update(chunk);
          continue;
        }
        const nl = chunk.indexOf(0x0a);
        if (nl < 0) {
          headerBytes += chunk.byteLength;
        } else {
          headerBytes += nl;
          inBody = true;
          digester.update(chunk.subarray(nl + 1));
        }
      }
    },
    { signal },
  );
  if (!inBody || headerBytes === 0 || headerBytes > MAX_MEDIA_TYPE_BYTES) {
    return { bytes: total, error: 'no media type line' };
  }
  return { bytes: total, actual: digester.digest().value };
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure rejects. */
async function forEachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
