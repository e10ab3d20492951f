// A small tmpfs for disk-full and watermark tests (root only), with last-in-first-out cleanup so
// that whatever uses the storage (a mirror, a registry) lets go of it before it is unmounted.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { removeTempDir, tempDir } from './peers.js';
import { run } from './process.js';

export interface SmallTmpfs {
  /** The mounted directory. */
  storage: string;
  /** Runs `cleanup` after the test, before the tmpfs is unmounted (last in, first out). */
  defer(cleanup: () => Promise<unknown>): void;
}

export async function mountSmallTmpfs(t: TestContext, prefix: string, size: string): Promise<SmallTmpfs> {
  const work = await tempDir(prefix);
  const storage = join(work, 'store');
  await mkdir(storage);
  await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', storage]);
  const cleanups: Array<() => Promise<unknown>> = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });
  cleanups.push(() => removeTempDir(work));
  cleanups.push(() => run('umount', [storage]));
  return { storage, defer: (cleanup) => cleanups.push(cleanup) };
}
