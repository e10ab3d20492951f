// The store's disk budget: least-recently-used blobs evicted down to the low mark, a blob being
// read never evicted; and a full disk (a small tmpfs) never crashes the mirror: clients are still
// streamed verified bytes, nothing is stored, and the metrics say so.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';
import { mountSmallTmpfs } from './helpers/tmpfs.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('disk budget', () => {
  it('evicts least-recently-used blobs down to the low mark, never one being read', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const blobs = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const data = randomBytes(MiB);
        return { data, digest: await pushBlob(registry, 'gc/blobs', data) };
      }),
    );
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { file: { gc: { maxBytes: 3.5 * MiB, lowBytes: 2.5 * MiB } } },
    );
    t.after(() => mirror.close());
    const url = (i: number) => `${mirror.url}/v2/gc/blobs/blobs/${blobs[i]?.digest}`;
    const stored = (i: number) =>
      existsSync(join(mirror.storage, 'blobs', 'sha256', blobs[i]?.digest.slice(7) ?? ''));
    const get = async (i: number) => {
      const body = Buffer.from(await (await fetch(url(i))).arrayBuffer());
      assert.equal(sha256(body), blobs[i]?.digest);
      await mirror.mirror.gc.run('test');
    };

    await get(0);
    await get(1);
    await get(2);
    assert.deepEqual([0, 1, 2].map(stored), [true, true, true], 'under the budget nothing is evicted');
    await get(0); // 0 is now the most recently used
    await get(3); // 4 MiB > 3.5 MiB: evict down to 2.5 MiB, oldest first: 1, then 2
    assert.deepEqual([0, 1, 2, 3].map(stored), [true, false, false, true]);
    assert.equal(await mirror.metric('hoist_mirror_gc_evictions_total'), 2);
    assert.ok((await mirror.metric('hoist_mirror_store_bytes')) <= 2.5 * MiB);

    // An evicted blob is simply fetched again.
    await get(1);
    assert.equal(stored(1), true);
  });

  it('never evicts a blob while a client is reading it', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    const registry = await startRegistry();
    t.after(() => registry.stop());
    // Large enough that the response cannot sit whole in loopback socket buffers.
    const big = randomBytes(48 * MiB);
    const bigDigest = await pushBlob(registry, 'gc/pin', big);
    const others = await Promise.all(
      [0, 1].map(async () => {
        const data = randomBytes(8 * MiB);
        return { data, digest: await pushBlob(registry, 'gc/pin', data) };
      }),
    );
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { file: { gc: { maxBytes: 56 * MiB } } },
    );
    t.after(() => mirror.close());
    const path = (d: string) => join(mirror.storage, 'blobs', 'sha256', d.slice(7));
    await (await fetch(`${mirror.url}/v2/gc/pin/blobs/${bigDigest}`)).arrayBuffer();
    // A client starts reading the big blob, then stops reading.
    const slow = await fetch(`${mirror.url}/v2/gc/pin/blobs/${bigDigest}`);
    const reader = slow.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done);
    // New blobs push the store over the budget: the big blob is the least recently used, but pinned.
    for (const o of others) {
      await (await fetch(`${mirror.url}/v2/gc/pin/blobs/${o.digest}`)).arrayBuffer();
      await mirror.mirror.gc.run('test');
    }
    assert.ok(existsSync(path(bigDigest)), 'the blob being read was not evicted');
    assert.ok(!existsSync(path(others[0]?.digest ?? '')), 'a blob not in use was evicted instead');
    const chunks = [Buffer.from(first.value)];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    assert.equal(sha256(Buffer.concat(chunks)), bigDigest);
    // Once nobody reads it, it is the first to go.
    for (const o of others) await (await fetch(`${mirror.url}/v2/gc/pin/blobs/${o.digest}`)).arrayBuffer();
    await mirror.mirror.gc.run('test');
    assert.ok(!existsSync(path(bigDigest)));
    for (const o of others) assert.ok(existsSync(path(o.digest)));
  });

  it('keeps serving when the disk is full, storing nothing', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    if (!requireRoot(t, 'mounts a small tmpfs')) return;
    const { storage, defer } = await mountSmallTmpfs(t, 'hoist-enospc-', '4m');
    const registry = await startRegistry();
    defer(() => registry.stop());
    const big = randomBytes(12 * MiB);
    const bigDigest = await pushBlob(registry, 'full/disk', big);
    const small = randomBytes(100_000);
    const smallDigest = await pushBlob(registry, 'full/disk', small);
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { storage, file: { gc: { memoryTailBytes: 4 * MiB } } },
    );
    t.after(() => mirror.close());

    const results = await Promise.all(
      [0, 1].map(async () =>
        Buffer.from(await (await fetch(`${mirror.url}/v2/full/disk/blobs/${bigDigest}`)).arrayBuffer()),
      ),
    );
    for (const body of results) assert.equal(sha256(body), bigDigest, 'clients get the whole verified blob');
    assert.ok((await mirror.metric('hoist_mirror_store_write_failures_total', { reason: 'ENOSPC' })) >= 1);
    assert.deepEqual(await readdir(join(storage, 'blobs', 'sha256')), []);
    assert.deepEqual(await readdir(join(storage, 'tmp')), []);
    assert.ok(mirror.logs().some((l) => l.msg === 'disk full: streaming to clients without storing'));
    assert.equal((await fetch(`${mirror.url}/healthz`)).status, 200);

    // Once the failed download's temp file is gone there is room again for what fits.
    const got = Buffer.from(
      await (await fetch(`${mirror.url}/v2/full/disk/blobs/${smallDigest}`)).arrayBuffer(),
    );
    assert.equal(sha256(got), smallDigest);
    assert.deepEqual(await readdir(join(storage, 'blobs', 'sha256')), [smallDigest.slice(7)]);
  });
});
