// Blob files of random bytes, and their upload to the upstream registry through its push API.
import { createHash, randomFill } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { run } from '../test/helpers/process.js';

const randomFillAsync = promisify(randomFill);

/** Random bytes are generated and written in chunks of this size. */
const CHUNK_BYTES = 16 * 1024 * 1024;

export const MiB = 1024 * 1024;

export interface BlobInfo {
  /** sha256:<hex> */
  digest: string;
  /** The digest's hex part, as sha256sum prints it. */
  hex: string;
  sizeBytes: number;
}

/** Writes `sizeBytes` random bytes to `path` and returns their digest. */
export async function writeRandomBlob(path: string, sizeBytes: number): Promise<BlobInfo> {
  const hash = createHash('sha256');
  const file = await open(path, 'wx');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    for (let written = 0; written < sizeBytes;) {
      const part = chunk.subarray(0, Math.min(CHUNK_BYTES, sizeBytes - written));
      await randomFillAsync(part);
      hash.update(part);
      for (let off = 0; off < part.byteLength;) {
        const { bytesWritten } = await file.write(part, off, part.byteLength - off, written + off);
        off += bytesWritten;
      }
      written += part.byteLength;
    }
  } finally {
    await file.close();
  }
  const hex = hash.digest('hex');
  return { digest: `sha256:${hex}`, hex, sizeBytes };
}

/**
 * Monolithic upload (distribution-spec "Pushing a blob monolithically": POST then PUT ?digest=),
 * the body streamed from the file by curl.
 */
export async function pushBlobFile(
  registryUrl: string,
  repo: string,
  path: string,
  blob: BlobInfo,
): Promise<void> {
  const res = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    signal: AbortSignal.timeout(10_000),
  });
  await res.body?.cancel();
  const location = res.headers.get('location');
  if (res.status !== 202 || location === null) {
    throw new Error(`upload of ${blob.digest} to ${registryUrl}: POST answered ${res.status}, no Location`);
  }
  const url = new URL(location, registryUrl);
  url.searchParams.set('digest', blob.digest);
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '-T',
      path,
      '-H',
      'Content-Type: application/octet-stream',
      '-H',
      'Expect:',
      url.toString(),
    ],
    { timeoutMs: 600_000 },
  );
  if (stdout.trim() !== '201') {
    throw new Error(`upload of ${blob.digest} to ${registryUrl}: PUT answered ${stdout.trim()}`);
  }
}

/** A fresh random blob of `sizeBytes`, pushed to `registryUrl`; its file is removed once uploaded. */
export async function makeUpstreamBlob(
  dir: string,
  name: string,
  sizeBytes: number,
  registryUrl: string,
  repo: string,
): Promise<BlobInfo> {
  const path = join(dir, name);
  try {
    const blob = await writeRandomBlob(path, sizeBytes);
    await pushBlobFile(registryUrl, repo, path, blob);
    return blob;
  } finally {
    await rm(path, { force: true });
  }
}
