// A blob served but not stored because the disk was full is not remembered as "in flight": the
// next request for it starts a new download (served from memory again while the disk stays full)
// and gets the same verified bytes, never an error for a blob the upstream has.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';
import { mountSmallTmpfs } from './helpers/tmpfs.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes `path` until the file system refuses (ENOSPC): the disk is then full. */
async function fillDisk(path: string): Promise<void> {
  const handle = await open(path, 'w');
  const chunk = Buffer.alloc(256 * 1024, 1);
  try {
    for (;;) await handle.write(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close();
  }
}

describe('disk full: a blob served but not stored', () => {
  it('is downloaded again for the next request, with the same bytes', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    if (!requireRoot(t, 'mounts a small tmpfs')) return;
    const { storage, defer } = await mountSmallTmpfs(t, 'hoist-unstored-', '4m');
    const registry = await startRegistry();
    defer(() => registry.stop());
    const data = randomBytes(3 * MiB);
    const digest = await pushBlob(registry, 'full/again', data);
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { storage, file: { gc: { memoryTailBytes: 4 * MiB } } },
    );
    defer(() => mirror.close());
    await fillDisk(join(storage, 'filler'));

    const path = `/v2/full/again/blobs/${digest}`;
    const pull = async () => {
      const res = await fetch(`${mirror.url}${path}`);
      assert.equal(res.status, 200, await res.clone().text());
      return Buffer.from(await res.arrayBuffer());
    };
    const first = await pull();
    assert.equal(sha256(first), digest, 'the first client gets the whole verified blob');
    assert.deepEqual(await readdir(join(storage, 'blobs', 'sha256')), [], 'nothing was stored');

    const second = await pull();
    assert.ok(second.equals(data), 'the second client gets the same bytes');
    assert.deepEqual(await readdir(join(storage, 'blobs', 'sha256')), [], 'still nothing stored');
    assert.ok((await mirror.metric('hoist_mirror_store_write_failures_total', { reason: 'ENOSPC' })) >= 2);

    // Each request after an unstored download is a download of its own from the upstream.
    const blobGet = (e: { method: string; path: string }) => e.method === 'GET' && e.path === path;
    await registry.waitForAccess((e) => blobGet(e) && registry.accessLog().filter(blobGet).length >= 2);
    assert.equal(registry.accessLog().filter(blobGet).length, 2);
  });

  it('is not joined while it runs: a new request downloads the blob on its own', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    if (!requireRoot(t, 'mounts a small tmpfs')) return;
    const { storage, defer } = await mountSmallTmpfs(t, 'hoist-unstored-run-', '4m');
    const registry = await startRegistry();
    defer(() => registry.stop());
    // Larger than loopback socket buffers can hold, with little memory: a client that stops
    // reading holds its download back, so it is still running when the second request comes.
    const data = randomBytes(32 * MiB);
    const digest = await pushBlob(registry, 'full/running', data);
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { storage, file: { gc: { memoryTailBytes: 1 * MiB } } },
    );
    defer(() => mirror.close());
    await fillDisk(join(storage, 'filler'));

    const path = `/v2/full/running/blobs/${digest}`;
    const slow = await fetch(`${mirror.url}${path}`);
    assert.equal(slow.status, 200);
    const reader = slow.body!.getReader();
    const chunks: Buffer[] = [];
    const first = await reader.read();
    assert.ok(!first.done);
    chunks.push(Buffer.from(first.value));
    assert.equal(await mirror.metric('hoist_mirror_inflight_fetches'), 1, 'the first download is running');

    const other = await fetch(`${mirror.url}${path}`);
    assert.equal(other.status, 200);
    assert.equal(
      await mirror.metric('hoist_mirror_inflight_fetches'),
      2,
      'a download of its own, not a join',
    );
    assert.ok(Buffer.from(await other.arrayBuffer()).equals(data), 'the second client gets every byte');
    assert.equal(await mirror.metric('hoist_mirror_inflight_fetches'), 1, 'the first one still runs');

    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    assert.ok(Buffer.concat(chunks).equals(data), 'the first client, paused meanwhile, gets every byte');
    const blobGet = (e: { method: string; path: string }) => e.method === 'GET' && e.path === path;
    await registry.waitForAccess((e) => blobGet(e) && registry.accessLog().filter(blobGet).length >= 2);
    assert.equal(registry.accessLog().filter(blobGet).length, 2);
  });
});
