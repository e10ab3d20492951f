// Blob fetching end to end against Debian's docker-registry, with a small misbehaving front
// (test/helpers/fault-proxy.ts) to hold or corrupt the upstream body: one upstream GET however
// many clients ask, stream-through, ranges answered before the download ends, and corrupt
// bytes never stored nor ended cleanly.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy, type FaultProxyOptions } from './helpers/fault-proxy.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;

interface Setup {
  registry: RegistryPeer;
  mirror: MirrorHandle;
  proxy: Awaited<ReturnType<typeof startFaultProxy>>;
  data: Buffer;
  digest: string;
  blobUrl: string;
}

/** A registry holding one random blob, a fault proxy in front of it, and a mirror in front of that. */
async function setup(
  t: TestContext,
  size: number,
  faults: FaultProxyOptions = {},
): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const data = randomBytes(size);
  const digest = await pushBlob(registry, 'big/blob', data);
  const proxy = await startFaultProxy(registry.url, faults);
  t.after(() => proxy.close());
  const mirror = await startMirror({ 'upstream.test': proxy.url }, { file: { rangeAheadBytes: 4 * MiB } });
  t.after(() => mirror.close());
  return {
    registry,
    mirror,
    proxy,
    data,
    digest,
    blobUrl: `${mirror.url}/v2/big/blob/blobs/${digest}?ns=upstream.test`,
  };
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>, first: Uint8Array): Promise<Buffer> {
  const chunks = [Buffer.from(first)];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks);
    chunks.push(Buffer.from(value));
  }
}

describe('one upstream fetch per blob', () => {
  it('serves 16 concurrent clients of a cold blob from one upstream GET, streaming', TIMEOUT, async (t) => {
    const s = await setup(t, 24 * MiB, { holdBlobAfterBytes: 2 * MiB });
    if (!s) return;
    const clients = await Promise.all(
      Array.from({ length: 16 }, async () => {
        const res = await fetch(s.blobUrl);
        assert.equal(res.status, 200);
        assert.equal(Number(res.headers.get('content-length')), s.data.byteLength);
        const reader = res.body!.getReader();
        const first = await reader.read();
        assert.ok(!first.done && first.value.byteLength > 0);
        return { reader, first: first.value };
      }),
    );
    // Every client has its first bytes while the upstream body is still held at 2 MiB.
    await s.proxy.held();
    assert.equal(await s.mirror.metric('hoist_mirror_inflight_fetches'), 1);
    assert.equal(await s.mirror.metric('hoist_mirror_inflight_clients'), 16);
    s.proxy.release();
    const bodies = await Promise.all(clients.map((c) => readRest(c.reader, c.first)));
    for (const body of bodies) assert.equal(sha256(body), s.digest);
    await s.registry.waitForAccess((e) => e.path.endsWith(s.digest));
    const gets = s.registry
      .accessLog()
      .filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${s.digest}`));
    assert.equal(gets.length, 1, 'the upstream served the blob once');
    assert.equal(s.proxy.blobGets.length, 1);
    assert.equal(await s.mirror.metric('hoist_mirror_upstream_bytes_total'), s.data.byteLength);
  });

  it('keeps downloading for the others when a client leaves', TIMEOUT, async (t) => {
    const s = await setup(t, 8 * MiB, { holdBlobAfterBytes: 1 * MiB });
    if (!s) return;
    const leaver = new AbortController();
    const gone = await fetch(s.blobUrl, { signal: leaver.signal });
    await gone.body!.getReader().read();
    const stayer = fetch(s.blobUrl).then(async (r) => Buffer.from(await r.arrayBuffer()));
    await s.proxy.held();
    leaver.abort();
    s.proxy.release();
    assert.equal(sha256(await stayer), s.digest);
    const stored = await readdir(join(s.mirror.storage, 'blobs', 'sha256'));
    assert.deepEqual(stored, [s.digest.slice(7)]);
  });
});

describe('ranges on cold blobs', () => {
  it('answers a range near the start from the download, before the blob has arrived', TIMEOUT, async (t) => {
    const s = await setup(t, 16 * MiB, { holdBlobAfterBytes: 1 * MiB });
    if (!s) return;
    const res = await fetch(s.blobUrl, { headers: { range: 'bytes=1000-1999' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes 1000-1999/${s.data.byteLength}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), s.data.subarray(1000, 2000));
    // The whole-blob download is still held at 1 MiB: the range did not wait for it.
    await s.proxy.held();
    assert.equal(await s.mirror.metric('hoist_mirror_inflight_fetches'), 1);
    assert.ok((await s.mirror.metric('hoist_mirror_upstream_bytes_total')) < s.data.byteLength);
    s.proxy.release();
  });

  it('answers a range far ahead of the download with a ranged upstream read', TIMEOUT, async (t) => {
    const s = await setup(t, 16 * MiB, { holdBlobAfterBytes: 1 * MiB });
    if (!s) return;
    // Ends before the blob's last byte, so it is answered unverified and at once; a range that
    // reaches the last byte waits for verification (test/mirror-range-verify.test.ts).
    const start = 12 * MiB + 7;
    const end = 13 * MiB;
    const res = await fetch(s.blobUrl, { headers: { range: `bytes=${start}-${end}` } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${s.data.byteLength}`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), s.data.subarray(start, end + 1));
    await s.proxy.held();
    assert.equal(
      await s.mirror.metric('hoist_mirror_inflight_fetches'),
      1,
      'the full download is still running',
    );
    assert.ok(s.proxy.blobGets.some((g) => g.range === `bytes=${start}-${end}`));
    s.proxy.release();
    // Once complete, the blob is stored and later ranges come from the cache.
    const whole = Buffer.from(await (await fetch(s.blobUrl)).arrayBuffer());
    assert.equal(sha256(whole), s.digest);
  });
});

describe('verification', () => {
  it(
    'aborts clients and stores nothing when the upstream bytes do not match the digest',
    TIMEOUT,
    async (t) => {
      const s = await setup(t, 4 * MiB, { corruptBlobByteAt: 3 * MiB });
      if (!s) return;
      const attempts = await Promise.allSettled(
        Array.from({ length: 3 }, async () => {
          const res = await fetch(s.blobUrl);
          assert.equal(res.status, 200);
          return Buffer.from(await res.arrayBuffer());
        }),
      );
      for (const a of attempts)
        assert.equal(a.status, 'rejected', 'no client sees a clean end of corrupt bytes');
      assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), []);
      assert.deepEqual(await readdir(join(s.mirror.storage, 'tmp')), []);
      assert.equal(await s.mirror.metric('hoist_mirror_verify_failures_total'), 1);
      // The mirror keeps serving: the next request tries upstream again (and fails again, cleanly).
      const again = await fetch(s.blobUrl)
        .then((r) => r.arrayBuffer())
        .then(
          () => 'ended',
          () => 'aborted',
        );
      assert.equal(again, 'aborted');
      assert.equal((await fetch(`${s.mirror.url}/healthz`)).status, 200);
    },
  );
});
