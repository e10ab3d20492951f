// The disk budget's own triggers, with no gc.run() called by hand to make eviction happen: the
// collection after each stored blob (`gc.maxBytes`), and the timed one (`gc.intervalSeconds`) that
// notices another writer filling the disk in `gc.highWatermarkPercent` mode (a small tmpfs).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers, requireRoot } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';
import { mountSmallTmpfs } from './helpers/tmpfs.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

type LogLine = Record<string, unknown>;

/** Resolves the first log line of the collector matching `match`, polling the in-memory log. */
async function gcLine(mirror: MirrorHandle, match: (l: LogLine) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = mirror.logs().find((l) => l.module === 'gc' && match(l));
    if (line) return line;
    if (Date.now() > deadline) {
      const seen = mirror.logs().filter((l) => l.module === 'gc');
      assert.fail(`no matching gc log line within ${timeoutMs} ms; gc lines: ${JSON.stringify(seen)}`);
    }
    await delay(20);
  }
}

async function pushBlobs(registry: { url: string }, repo: string, count: number, size: number) {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const data = randomBytes(size);
      return { data, digest: await pushBlob(registry, repo, data) };
    }),
  );
}

describe('disk budget triggers', () => {
  it('collects after each stored blob, without being asked', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const blobs = await pushBlobs(registry, 'gc/stored', 4, MiB);
    // The timed run is an hour away: only the run after a stored blob can evict here.
    const mirror = await startMirror(
      { [registry.host]: registry.url },
      { file: { gc: { maxBytes: 3.5 * MiB, lowBytes: 2.5 * MiB, intervalSeconds: 3600 } } },
    );
    t.after(() => mirror.close());
    const stored = (i: number) =>
      existsSync(join(mirror.storage, 'blobs', 'sha256', blobs[i]?.digest.slice(7) ?? ''));
    for (const [i, b] of blobs.entries()) {
      const body = Buffer.from(
        await (await fetch(`${mirror.url}/v2/gc/stored/blobs/${b.digest}`)).arrayBuffer(),
      );
      assert.equal(sha256(body), b.digest, `blob ${i}`);
    }
    // The fourth blob took the store to 4 MiB > 3.5 MiB: the two least recently used go.
    const line = await gcLine(mirror, (l) => l.msg === 'evicted least-recently-used blobs');
    assert.equal(line.reason, 'stored');
    assert.equal(line.evicted, 2);
    assert.deepEqual([0, 1, 2, 3].map(stored), [false, false, true, true]);
    assert.equal(await mirror.metric('hoist_mirror_gc_evictions_total'), 2);
    assert.equal(await mirror.metric('hoist_mirror_store_bytes'), 2 * MiB);
  });

  it(
    'evicts on the timer when another writer pushes the filesystem over its high watermark',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry')) return;
      if (!requireRoot(t, 'mounts a small tmpfs')) return;
      const { storage, defer } = await mountSmallTmpfs(t, 'hoist-watermark-', '16m');
      const registry = await startRegistry();
      defer(() => registry.stop());
      const blobs = await pushBlobs(registry, 'gc/watermark', 7, MiB);
      const mirror = await startMirror(
        { [registry.host]: registry.url },
        {
          storage,
          file: { gc: { highWatermarkPercent: 50, lowWatermarkPercent: 40, intervalSeconds: 0.2 } },
        },
      );
      defer(() => mirror.close());
      const all = blobs.map((_, i) => i);
      const stored = (i: number) =>
        existsSync(join(storage, 'blobs', 'sha256', blobs[i]?.digest.slice(7) ?? ''));

      // 7 MiB of 16 (44%): above the low watermark but not the high one, so nothing is evicted.
      for (const b of blobs) {
        await (await fetch(`${mirror.url}/v2/gc/watermark/blobs/${b.digest}`)).arrayBuffer();
      }
      // Wait for the run the last stored blob started (run() joins a running collection; this one
      // finds nothing to do unless the watermark comparison is wrong).
      await mirror.mirror.gc.run('test barrier');
      assert.deepEqual(
        all.map(stored),
        all.map(() => true),
        'between the watermarks nothing is evicted',
      );
      assert.equal(await mirror.metric('hoist_mirror_gc_evictions_total'), 0);

      // Another writer takes 2 MiB: 9 of 16 MiB used (56%) > 50%. No blob is stored, so only the
      // timer can notice; it frees down to 40% (6.4 MiB), least recently used first: three blobs.
      await writeFile(join(storage, 'other-writer.bin'), randomBytes(2 * MiB));
      const line = await gcLine(mirror, (l) => l.msg === 'evicted least-recently-used blobs');
      assert.equal(line.reason, 'interval');
      assert.equal(line.evicted, 3);
      assert.deepEqual(all.map(stored), [false, false, false, true, true, true, true]);
      assert.equal(await mirror.metric('hoist_mirror_gc_evictions_total'), 3);
    },
  );
});
