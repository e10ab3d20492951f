// Manifests through the mirror, counted at the upstream: a body whose content digest is not the one
// asked for (or announced) is never served nor cached; a stale tag costs one HEAD upstream while it
// has not moved and a GET only once it has; concurrent cold requests share one upstream GET.
// Upstream requests are counted at a fault proxy in front of docker-registry: it records each
// request when it arrives, so the counts are exact as soon as the mirror has answered (the
// registry's own access-log line may be written after its response has reached the mirror).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { MEDIA_TYPES, buildImage, pushImage, type BuiltImage } from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { fetchManifest, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 180_000 };
const ACCEPT = {
  accept: [
    MEDIA_TYPES.ociIndex,
    MEDIA_TYPES.ociManifest,
    MEDIA_TYPES.dockerManifest,
    MEDIA_TYPES.dockerManifestList,
  ].join(','),
};

interface Setup {
  work: string;
  registry: RegistryPeer;
  proxy: FaultProxy;
  image: BuiltImage;
}

async function setup(t: TestContext, repo: string): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry', 'skopeo')) return undefined;
  const work = await testTempDir(t, 'hoist-manifests-');
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const image = await buildImage(join(work, 'one'), {
    tag: 'v1',
    layers: [{ files: [{ path: 'a', content: 'one' }] }],
  });
  await pushImage(image.dir, 'v1', `${registry.host}/${repo}:v1`);
  const proxy = await startFaultProxy(registry.url);
  t.after(() => proxy.close());
  return { work, registry, proxy, image };
}

/** Manifest requests the upstream received for `repo`, as "METHOD reference". */
function manifestRequests(proxy: FaultProxy, repo: string): string[] {
  const prefix = `/v2/${repo}/manifests/`;
  return proxy.requests
    .filter((r) => r.path.startsWith(prefix))
    .map((r) => `${r.method} ${r.path.slice(prefix.length).split('?')[0]}`);
}

async function manifestFiles(mirror: MirrorHandle): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else found.push(e.name);
    }
  };
  await walk(join(mirror.storage, 'manifests'));
  return found;
}

describe('manifest verification', () => {
  it('never serves nor caches a manifest whose bytes do not match its digest', TIMEOUT, async (t) => {
    const s = await setup(t, 'bad/digest');
    if (!s) return;
    const mirror = await startMirror({ 'up.test': s.proxy.url }, { file: { tagTtlSeconds: 3600 } });
    t.after(() => mirror.close());
    const body = (await fetchManifest(s.registry, 'bad/digest', s.image.digest, ACCEPT.accept.split(',')))
      .body;
    // Flip a byte inside the layer digest's hex: still valid JSON, still a manifest, wrong digest.
    const layer = s.image.manifests[0]?.layers[0];
    assert.ok(layer);
    const at = Buffer.from(body).indexOf(layer.digest.slice(7)) + 10;
    assert.ok(at > 10);

    const byDigest = `${mirror.url}/v2/bad/digest/manifests/${s.image.digest}?ns=up.test`;
    const byTag = `${mirror.url}/v2/bad/digest/manifests/v1?ns=up.test`;
    for (const url of [byDigest, byTag]) {
      s.proxy.inject('manifest', { kind: 'corrupt', at });
      const res = await fetch(url, { headers: ACCEPT });
      const text = await res.text();
      assert.equal(res.status, 502, `${url}: ${text}`);
      assert.ok(!text.includes(layer.digest.slice(7, 20)), 'no part of the corrupted body is served');
      assert.deepEqual(await manifestFiles(mirror), [], 'nothing was cached');
    }
    assert.deepEqual(
      s.proxy.requests.filter((r) => r.fault === 'corrupt').length,
      2,
      'both requests got corrupted bodies',
    );
    // Once the upstream sends the right bytes, they are served and cached.
    for (const url of [byDigest, byTag]) {
      const res = await fetch(url, { headers: ACCEPT });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), body);
      assert.equal(res.headers.get('docker-content-digest'), s.image.digest);
    }
    assert.ok((await manifestFiles(mirror)).length > 0);
  });
});

describe('tag re-check and single-flight', () => {
  it('re-checks a stale tag with a HEAD, and GETs only when it moved', TIMEOUT, async (t) => {
    const s = await setup(t, 't/recheck');
    if (!s) return;
    const two = await buildImage(join(s.work, 'two'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a', content: 'two' }] }],
    });
    // tagTtlSeconds 0: every request finds the tag past its TTL (no clock to wait for).
    const stale = await startMirror({ 'up.test': s.proxy.url }, { file: { tagTtlSeconds: 0 } });
    t.after(() => stale.close());
    const fresh = await startMirror({ 'up.test': s.proxy.url }, { file: { tagTtlSeconds: 3600 } });
    t.after(() => fresh.close());
    const get = async (m: MirrorHandle) => {
      const res = await fetch(`${m.url}/v2/t/recheck/manifests/v1?ns=up.test`, { headers: ACCEPT });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      return { digest: res.headers.get('docker-content-digest'), cache: res.headers.get('x-hoist-cache') };
    };
    const requestsFor = async (fn: () => Promise<unknown>) => {
      const before = manifestRequests(s.proxy, 't/recheck').length;
      await fn();
      return manifestRequests(s.proxy, 't/recheck').slice(before);
    };

    assert.deepEqual(await requestsFor(() => get(stale)), ['GET v1'], 'a cold tag is fetched with one GET');
    let r: { digest: string | null; cache: string | null } | undefined;
    assert.deepEqual(
      await requestsFor(async () => (r = await get(stale))),
      ['HEAD v1'],
      'a stale tag that did not move costs one HEAD and no GET',
    );
    assert.deepEqual(r, { digest: s.image.digest, cache: 'hit' });

    assert.deepEqual(await requestsFor(() => get(fresh)), ['GET v1']);
    assert.deepEqual(await requestsFor(() => get(fresh)), [], 'within the TTL nothing goes upstream');

    await pushImage(two.dir, 'v1', `${s.registry.host}/t/recheck:v1`);
    assert.deepEqual(
      await requestsFor(async () => (r = await get(stale))),
      ['HEAD v1', 'GET v1'],
      'a stale tag that moved: the HEAD sees the new digest, then one GET',
    );
    assert.deepEqual(r, { digest: two.digest, cache: 'miss' });
    assert.deepEqual(
      await requestsFor(async () => (r = await get(stale))),
      ['HEAD v1'],
      'the moved tag, unchanged since: a HEAD again',
    );
    assert.deepEqual(r, { digest: two.digest, cache: 'hit' });
    assert.deepEqual(
      await requestsFor(async () => (r = await get(fresh))),
      [],
      'within the TTL the old digest is still served',
    );
    assert.deepEqual(r, { digest: s.image.digest, cache: 'hit' });
  });

  it('answers concurrent cold requests for one manifest with one upstream GET', TIMEOUT, async (t) => {
    const s = await setup(t, 't/flight');
    if (!s) return;
    // By tag, and by digest on a second mirror with a fresh store (the tag's fetch also stores
    // the manifest by digest).
    const byTag = await startMirror({ 'up.test': s.proxy.url });
    t.after(() => byTag.close());
    const byDigest = await startMirror({ 'up.test': s.proxy.url });
    t.after(() => byDigest.close());
    const N = 16;
    for (const [m, ref] of [
      [byTag, 'v1'],
      [byDigest, s.image.digest],
    ] as const) {
      const before: number = manifestRequests(s.proxy, 't/flight').length;
      const answers = await Promise.all(
        Array.from({ length: N }, async () => {
          const res = await fetch(`${m.url}/v2/t/flight/manifests/${ref}?ns=up.test`, { headers: ACCEPT });
          return {
            status: res.status,
            digest: res.headers.get('docker-content-digest'),
            body: await res.text(),
          };
        }),
      );
      for (const a of answers) {
        assert.equal(a.status, 200);
        assert.equal(a.digest, s.image.digest);
      }
      assert.equal(new Set(answers.map((a) => a.body)).size, 1);
      assert.deepEqual(manifestRequests(s.proxy, 't/flight').slice(before), [`GET ${ref}`], `${N} × ${ref}`);
    }
  });
});
