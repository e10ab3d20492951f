// What the InflightBlob unit tests (src/mirror/inflight-blob*.test.ts) share: a BlobStore in a
// temp directory of its own for each describe block, and the small stream helpers they all use.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { after, before } from 'node:test';
import { BlobStore } from '../../src/mirror/blob-store.js';
import type { InflightBlob } from '../../src/mirror/inflight-blob.js';

export interface TempStore {
  /** The store's directory (valid from the describe block's `before` on). */
  readonly root: string;
  readonly store: BlobStore;
}

/**
 * Call inside a `describe`: a fresh, initialised BlobStore in a temp directory named after
 * `prefix`, made before the block's tests and removed after them.
 */
export function useTempStore(prefix: string): TempStore {
  let root: string | undefined;
  let store: BlobStore | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), prefix));
    store = new BlobStore(root);
    await store.init();
  });
  after(() => (root === undefined ? undefined : rm(root, { recursive: true, force: true })));
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('useTempStore: the store exists only once the tests run');
    return value;
  };
  return {
    get root() {
      return ready(root);
    },
    get store() {
      return ready(store);
    },
  };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Resolves once the blob has received at least `n` bytes. */
export async function until(blob: InflightBlob, n: number): Promise<void> {
  while (blob.bytesWritten < n) await tick();
}

/** A body that sends `data` and ends. */
export function bodyOf(data: Buffer): PassThrough {
  const b = new PassThrough();
  b.end(data);
  return b;
}
