// Upstream faults, with a misbehaving front (test/helpers/fault-proxy.ts) before Debian's
// docker-registry: bodies cut or stalled mid-blob are resumed with a Range request and clients see
// no error; when resumes run out every client is aborted and nothing is stored; 429/503 are
// retried within a short budget, then answered fast; cached tags keep being served while the
// upstream is down.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { MEDIA_TYPES, buildImage, pushImage } from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const FAST = {
  retryBaseDelayMs: 20,
  retryMaxDelayMs: 200,
  clientRetryBudgetMs: 100,
  // Short, so stall tests are quick; not so short that a busy machine (a parallel suite) stalls spuriously.
  upstreamStallTimeoutSeconds: 1,
  upstreamRetries: 3,
};

interface Setup {
  registry: RegistryPeer;
  proxy: FaultProxy;
  mirror: MirrorHandle;
  data: Buffer;
  digest: string;
  blobUrl: string;
}

async function setup(
  t: TestContext,
  size = 6 * MiB,
  file: Record<string, unknown> = {},
): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const data = randomBytes(size);
  const digest = await pushBlob(registry, 'f/blob', data);
  const proxy = await startFaultProxy(registry.url);
  t.after(() => proxy.close());
  const mirror = await startMirror({ 'up.test': proxy.url }, { file: { ...FAST, ...file } });
  t.after(() => mirror.close());
  return {
    registry,
    proxy,
    mirror,
    data,
    digest,
    blobUrl: `${mirror.url}/v2/f/blob/blobs/${digest}?ns=up.test`,
  };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function getAll(url: string, n: number): Promise<Array<PromiseSettledResult<Buffer>>> {
  return Promise.allSettled(
    Array.from({ length: n }, async () => Buffer.from(await (await fetch(url)).arrayBuffer())),
  );
}

describe('resuming broken downloads', () => {
  it('resumes a cut connection from the last byte; clients see no error', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    s.proxy.inject('blob', { kind: 'cut', afterBytes: 2 * MiB + 5 });
    const results = await getAll(s.blobUrl, 3);
    for (const r of results) {
      assert.equal(r.status, 'fulfilled');
      if (r.status === 'fulfilled') assert.equal(sha256(r.value), s.digest);
    }
    const ranged = s.proxy.blobGets.filter((g) => g.range !== '');
    assert.equal(ranged.length, 1);
    assert.match(ranged[0]?.range ?? '', /^bytes=\d+-$/);
    const from = Number(/bytes=(\d+)-/.exec(ranged[0]?.range ?? '')?.[1]);
    assert.ok(from > 0 && from <= 2 * MiB + 5, `resumed from ${from}`);
    assert.equal(await s.mirror.metric('hoist_mirror_upstream_resumes_total'), 1);
    assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), [s.digest.slice(7)]);
  });

  it('resumes a stalled body after the stall timeout', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    s.proxy.inject('blob', { kind: 'stall', afterBytes: 1 * MiB });
    const [r] = await getAll(s.blobUrl, 1);
    assert.equal(r?.status, 'fulfilled');
    if (r?.status === 'fulfilled') assert.equal(sha256(r.value), s.digest);
    assert.ok(s.proxy.blobGets.some((g) => g.range.startsWith('bytes=')));
  });

  it('rides out an upstream error while resuming', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    s.proxy.inject('blob', { kind: 'cut', afterBytes: 3 * MiB });
    s.proxy.inject('blob', { kind: 'status', status: 503, headers: { 'retry-after': '0' } });
    const [r] = await getAll(s.blobUrl, 1);
    assert.equal(r?.status, 'fulfilled');
    if (r?.status === 'fulfilled') assert.equal(sha256(r.value), s.digest);
    assert.equal(s.proxy.requests.filter((q) => q.fault === 'status').length, 1);
  });

  it('aborts every client and stores nothing when resumes run out', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    s.proxy.inject('blob', { kind: 'cut', afterBytes: 512 * 1024 }, 10);
    const results = await getAll(s.blobUrl, 3);
    for (const r of results) assert.equal(r.status, 'rejected', 'a client never sees a clean, short body');
    assert.equal(s.proxy.blobGets.length, 1 + FAST.upstreamRetries);
    assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), []);
    assert.deepEqual(await readdir(join(s.mirror.storage, 'tmp')), []);
  });
});

describe('an upstream that is down or rate-limiting', () => {
  it(
    'answers a cold request fast when the upstream says 429, and turns away the next at once',
    TIMEOUT,
    async (t) => {
      const s = await setup(t, 1024);
      if (!s) return;
      // One blob cached before the upstream starts rate-limiting, one that is not.
      const cached = await fetch(s.blobUrl);
      assert.equal(sha256(Buffer.from(await cached.arrayBuffer())), s.digest);
      const uncached = await pushBlob(s.registry, 'f/blob', randomBytes(1024));
      const before = s.proxy.requests.length;
      s.proxy.inject('manifest', { kind: 'status', status: 429, headers: { 'retry-after': '30' } }, 5);
      const res = await fetch(`${s.mirror.url}/v2/f/blob/manifests/v1?ns=up.test`);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '30');
      const body = (await res.json()) as { errors: Array<{ code: string }> };
      assert.equal(body.errors[0]?.code, 'TOOMANYREQUESTS');
      // Retry-After (30 s) exceeds the client budget: one upstream request, no retry.
      assert.equal(s.proxy.requests.length, before + 1);
      // While the upstream asked us to wait, the next request is answered without contacting it.
      const next = await fetch(`${s.mirror.url}/v2/f/other/manifests/v2?ns=up.test`);
      assert.equal(next.status, 429);
      assert.ok(Number(next.headers.get('retry-after')) > 0);
      assert.equal(s.proxy.requests.length, before + 1);
      // Cached content is still served meanwhile, without asking the upstream...
      const blob = await fetch(s.blobUrl);
      assert.equal(blob.status, 200, 'a cached blob is served');
      assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), s.digest);
      // ...while an uncached blob, which needs the upstream, is turned away at once.
      const cold = await fetch(`${s.mirror.url}/v2/f/blob/blobs/${uncached}?ns=up.test`);
      assert.equal(cold.status, 429, 'an uncached blob needs the upstream');
      assert.ok(Number(cold.headers.get('retry-after')) > 0);
      assert.equal(s.proxy.requests.length, before + 1, 'nothing more was asked upstream');
    },
  );

  it('retries a 503 within the client budget', TIMEOUT, async (t) => {
    const s = await setup(t, 1024, { clientRetryBudgetMs: 2000 });
    if (!s) return;
    s.proxy.inject('blob', { kind: 'status', status: 503 });
    const res = await fetch(s.blobUrl);
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), s.digest);
    assert.equal(s.proxy.blobGets.length, 2);
  });

  it('serves cached tags (marked stale) and blobs while the upstream answers 503', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-faults-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a', size: 20_000 }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/f/app:v1`);
    const proxy = await startFaultProxy(registry.url);
    t.after(() => proxy.close());
    const mirror = await startMirror({ 'up.test': proxy.url }, { file: { ...FAST, tagTtlSeconds: 0 } });
    t.after(() => mirror.close());
    const accept = { accept: [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(',') };
    const url = `${mirror.url}/v2/f/app/manifests/v1?ns=up.test`;
    assert.equal((await fetch(url, { headers: accept })).headers.get('x-hoist-cache'), 'miss');
    const layer = image.manifests[0]?.layers[0];
    assert.ok(layer);
    await (await fetch(`${mirror.url}/v2/f/app/blobs/${layer.digest}?ns=up.test`)).arrayBuffer();

    proxy.inject('any', { kind: 'status', status: 503 }, 100);
    const stale = await fetch(url, { headers: accept });
    assert.equal(stale.status, 200);
    assert.equal(stale.headers.get('x-hoist-cache'), 'stale');
    assert.equal(stale.headers.get('docker-content-digest'), image.digest);
    const blob = await fetch(`${mirror.url}/v2/f/app/blobs/${layer.digest}?ns=up.test`);
    assert.equal(blob.status, 200);
    assert.equal(sha256(Buffer.from(await blob.arrayBuffer())), layer.digest);
    assert.ok(
      (await mirror.metric('hoist_mirror_cache_lookups_total', { kind: 'tag', result: 'stale' })) >= 1,
    );
    // An uncached tag gets a fast error naming the cause, for containerd to fall back on.
    const cold = await fetch(`${mirror.url}/v2/f/app/manifests/nope?ns=up.test`, { headers: accept });
    assert.ok(cold.status === 502 || cold.status === 503, `status ${cold.status}`);
  });
});
