// Pull-through end to end with the real peers: images pushed by skopeo to Debian's docker-registry,
// pulled through Hoist's mirror by skopeo (by tag, by digest, every platform of an index, a Docker
// schema 2 image), digests compared; Accept negotiation, errors, tag TTL, offline serving,
// upstream credentials and metrics.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import {
  MEDIA_TYPES,
  buildImage,
  fileDigest,
  pushImage,
  skopeoCopyToDir,
  type BuiltImage,
} from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { freePort, removeTempDir, requirePeers, tempDir, testTempDir } from './helpers/peers.js';
import { fetchManifest, pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 180_000 };
const ALL_ACCEPT = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifest,
  MEDIA_TYPES.dockerManifestList,
];

interface Fixture {
  work: string;
  registry: RegistryPeer;
  mirror: MirrorHandle;
  app: BuiltImage;
  multi: BuiltImage;
  docker: BuiltImage;
  /** Digest of test/docker:v1 as the registry holds it (Docker schema 2). */
  dockerDigest: string;
}

let fixture: Promise<Fixture> | undefined;
const cleanups: Array<() => Promise<void>> = [];

/** One registry with three images, and one mirror in front of it; made on first use. */
function getFixture(): Promise<Fixture> {
  fixture ??= (async () => {
    const work = await tempDir('hoist-pull-');
    cleanups.push(() => removeTempDir(work));
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    const app = await buildImage(join(work, 'app'), {
      tag: 'v1',
      layers: [
        { files: [{ path: 'app/big.bin', size: 3_000_000, seed: 'big' }] },
        { files: [{ path: 'app/lib.bin', size: 500_000, seed: 'lib' }] },
        { files: [{ path: 'etc/hello.txt', content: 'hello\n' }] },
      ],
    });
    await pushImage(app.dir, 'v1', `${registry.host}/test/app:v1`);
    const multi = await buildImage(join(work, 'multi'), {
      tag: 'v1',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: [{ path: 'shared.bin', size: 400_000, seed: 'shared' }] }],
    });
    await pushImage(multi.dir, 'v1', `${registry.host}/test/multi:v1`, { all: true });
    const docker = await buildImage(join(work, 'docker'), {
      tag: 'v1',
      layers: [
        { files: [{ path: 'd.bin', size: 200_000, seed: 'docker' }] },
        { files: [{ path: 'e.txt', content: 'e' }] },
      ],
    });
    await pushImage(docker.dir, 'v1', `${registry.host}/test/docker:v1`, { format: 'v2s2' });
    const head = await fetchManifest(registry, 'test/docker', 'v1', [MEDIA_TYPES.dockerManifest]);
    assert.equal(head.contentType, MEDIA_TYPES.dockerManifest);
    const mirror = await startMirror(
      { [registry.host]: registry.url, 'local.test': registry.url },
      { defaultUpstream: registry.host },
    );
    cleanups.push(() => mirror.close());
    return { work, registry, mirror, app, multi, docker, dockerDigest: head.digest };
  })();
  return fixture;
}

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/**
 * Asserts a skopeo dir: copy of a single-platform `image` holds its manifest (by digest) and every
 * blob, byte for byte: a blob missing from the copy fails, it is not skipped.
 */
async function assertCopied(dir: string, topDigest: string, image: BuiltImage): Promise<void> {
  assert.equal(image.manifests.length, 1, 'assertCopied checks single-platform images');
  assert.equal(await fileDigest(join(dir, 'manifest.json')), topDigest);
  const files = new Set(await readdir(dir));
  for (const m of image.manifests) {
    for (const blob of [m.config, ...m.layers]) {
      const hex = blob.digest.slice(7);
      assert.ok(files.has(hex), `the copy holds ${blob.digest}`);
      assert.equal(await fileDigest(join(dir, hex)), blob.digest);
    }
  }
}

async function peers(t: TestContext): Promise<Fixture | undefined> {
  if (!requirePeers(t, 'docker-registry', 'skopeo')) return undefined;
  return getFixture();
}

function blobGets(registry: RegistryPeer, digest: string): number {
  return registry.accessLog().filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`)).length;
}

describe('pull-through with skopeo and docker-registry', () => {
  before(() => {});

  it('pulls an OCI image by tag, byte for byte, each blob fetched upstream once', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const out = await testTempDir(t, 'hoist-out-');
    await skopeoCopyToDir(`docker://${f.mirror.host}/test/app:v1`, join(out, 'a'));
    await assertCopied(join(out, 'a'), f.app.digest, f.app);
    const [image] = f.app.manifests;
    assert.ok(image);
    for (const layer of image.layers) {
      assert.equal(await fileDigest(join(out, 'a', layer.digest.slice(7))), layer.digest);
    }
    // A second client is served from the cache: the upstream sees no more blob GETs.
    await skopeoCopyToDir(`docker://${f.mirror.host}/test/app:v1`, join(out, 'b'));
    await assertCopied(join(out, 'b'), f.app.digest, f.app);
    for (const layer of image.layers) {
      await f.registry.waitForAccess((e) => e.path.endsWith(layer.digest));
      assert.equal(blobGets(f.registry, layer.digest), 1, `upstream GETs of ${layer.digest}`);
    }
    assert.ok(
      (await f.mirror.metric('hoist_mirror_cache_lookups_total', { kind: 'blob', result: 'hit' })) >= 4,
    );
  });

  it('pulls by digest through a registry named in the path', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const out = await testTempDir(t, 'hoist-out-');
    await skopeoCopyToDir(`docker://${f.mirror.host}/local.test/test/app@${f.app.digest}`, out);
    await assertCopied(out, f.app.digest, f.app);
  });

  it('pulls every platform of an OCI index', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const out = await testTempDir(t, 'hoist-out-');
    await skopeoCopyToDir(`docker://${f.mirror.host}/test/multi:v1`, out, { all: true });
    assert.equal(await fileDigest(join(out, 'manifest.json')), f.multi.digest);
    for (const m of f.multi.manifests) {
      assert.equal(
        await fileDigest(join(out, `${m.manifest.digest.slice(7)}.manifest.json`)),
        m.manifest.digest,
      );
      for (const blob of [m.config, ...m.layers]) {
        assert.equal(await fileDigest(join(out, blob.digest.slice(7))), blob.digest);
      }
    }
  });

  it('pulls a Docker schema 2 image', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const out = await testTempDir(t, 'hoist-out-');
    await skopeoCopyToDir(`docker://${f.mirror.host}/test/docker:v1`, out);
    assert.equal(await fileDigest(join(out, 'manifest.json')), f.dockerDigest);
    const res = await fetch(`${f.mirror.url}/v2/test/docker/manifests/v1`, {
      method: 'HEAD',
      headers: { accept: MEDIA_TYPES.dockerManifest },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MEDIA_TYPES.dockerManifest);
    assert.equal(res.headers.get('docker-content-digest'), f.dockerDigest);
  });

  it('negotiates Accept like distribution: an OCI manifest needs an OCI Accept', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const docker = await fetchManifest(f.mirror, 'test/app', 'v1', [MEDIA_TYPES.dockerManifest]);
    assert.equal(docker.status, 404);
    assert.equal(JSON.parse(docker.body).errors[0].code, 'MANIFEST_UNKNOWN');
    const oci = await fetchManifest(f.mirror, 'test/app', 'v1', [MEDIA_TYPES.ociManifest]);
    assert.equal(oci.status, 200);
    assert.equal(oci.contentType, MEDIA_TYPES.ociManifest);
    assert.equal(oci.digest, f.app.digest);
    assert.equal(
      Number((await fetch(`${f.mirror.url}/v2/test/app/manifests/v1`)).headers.get('content-length')) > 0,
      true,
    );
    const index = await fetchManifest(f.mirror, 'test/multi', f.multi.digest, ALL_ACCEPT);
    assert.equal(index.contentType, MEDIA_TYPES.ociIndex);
    assert.equal(index.digest, f.multi.digest);
  });

  it('passes tag lists through, with pagination', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const all = await fetch(`${f.mirror.url}/v2/test/app/tags/list`);
    assert.equal(all.status, 200);
    assert.deepEqual(await all.json(), { name: 'test/app', tags: ['v1'] });
    const page = await fetch(`${f.mirror.url}/v2/test/app/tags/list?n=1&last=a`);
    assert.equal(page.status, 200);
    assert.deepEqual(((await page.json()) as { tags: string[] }).tags, ['v1']);
    assert.equal((await fetch(`${f.mirror.url}/v2/test/nothing/tags/list`)).status, 404);
  });

  it('answers blob HEAD and GET with the spec headers', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const layer = f.docker.manifests[0]?.layers[0];
    assert.ok(layer);
    const head = await fetch(`${f.mirror.url}/v2/test/docker/blobs/${layer.digest}`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), layer.size);
    assert.equal(head.headers.get('docker-content-digest'), layer.digest);
    const get = await fetch(`${f.mirror.url}/v2/test/docker/blobs/${layer.digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'application/octet-stream');
    assert.equal(get.headers.get('accept-ranges'), 'bytes');
    assert.equal(Buffer.from(await get.arrayBuffer()).byteLength, layer.size);
    const range = await fetch(`${f.mirror.url}/v2/test/docker/blobs/${layer.digest}`, {
      headers: { range: 'bytes=10-' },
    });
    assert.equal(range.status, 206);
    assert.equal(range.headers.get('content-range'), `bytes 10-${layer.size - 1}/${layer.size}`);
    assert.equal((await range.arrayBuffer()).byteLength, layer.size - 10);
    const past = await fetch(`${f.mirror.url}/v2/test/docker/blobs/${layer.digest}`, {
      headers: { range: `bytes=${layer.size}-` },
    });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${layer.size}`);
  });

  it('coalesces a range list that is not in ascending order into one covering range', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    // A blob of its own, so that the first request finds it cold (served while it downloads) and
    // the second finds it cached: both paths answer the same single covering part.
    const bytes = randomBytes(200_000);
    const digest = await pushBlob(f.registry, 'test/ranges', bytes);
    for (const state of ['cold', 'cached']) {
      const res = await fetch(`${f.mirror.url}/v2/test/ranges/blobs/${digest}`, {
        headers: { range: 'bytes=500-599,0-99' },
      });
      assert.equal(res.status, 206, state);
      assert.equal(res.headers.get('content-range'), `bytes 0-599/${bytes.byteLength}`, state);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream', `${state}: not multipart`);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes.subarray(0, 600), state);
    }
  });

  it('answers what it cannot serve with OCI errors', TIMEOUT, async (t) => {
    const f = await peers(t);
    if (!f) return;
    const cases: Array<[string, RequestInit, number, string]> = [
      ['/v2/test/app/manifests/nope', {}, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/test/app/blobs/sha256:${'0'.repeat(64)}`, {}, 404, 'BLOB_UNKNOWN'],
      ['/v2/nothing/here/manifests/v1', {}, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/test/app/manifests/v1?ns=elsewhere.example`, {}, 404, 'NAME_UNKNOWN'],
      ['/v2/test/app/blobs/uploads/', { method: 'POST' }, 405, 'UNSUPPORTED'],
      ['/v2/test/app/manifests/v1', { method: 'PUT', body: '{}' }, 405, 'UNSUPPORTED'],
      ['/v2/test/app/manifests/v1', { method: 'DELETE' }, 405, 'UNSUPPORTED'],
      ['/v2/Test/App/manifests/v1', {}, 400, 'NAME_INVALID'],
      ['/v2/test/app/blobs/sha256:abc', {}, 400, 'DIGEST_INVALID'],
      [
        '/v2/test/app/blobs/' + `sha256:${'1'.repeat(64)}`,
        { headers: { range: 'bytes=x-y' } },
        400,
        'RANGE_INVALID',
      ],
    ];
    for (const [path, init, status, code] of cases) {
      const res = await fetch(`${f.mirror.url}${path}`, init);
      assert.equal(res.status, status, `${init.method ?? 'GET'} ${path}`);
      const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
      assert.equal(body.errors[0]?.code, code, path);
      assert.ok(body.errors[0]?.message, 'an error says what was wrong');
    }
    // A HEAD error has no body but the right status.
    const head = await fetch(`${f.mirror.url}/v2/test/app/manifests/nope`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    // The unknown ns never reached any upstream.
    assert.equal(f.registry.accessLog().filter((e) => e.query.includes('elsewhere')).length, 0);
    const base = await fetch(`${f.mirror.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it(
    'reports requests, cache hits, bytes and store size in /metrics, and logs one line per request',
    TIMEOUT,
    async (t) => {
      const f = await peers(t);
      if (!f) return;
      const layer = f.app.manifests[0]?.layers[0];
      assert.ok(layer);
      await (await fetch(`${f.mirror.url}/v2/test/app/blobs/${layer.digest}`)).arrayBuffer();
      const text = await (await fetch(`${f.mirror.url}/metrics`)).text();
      for (const name of [
        'hoist_mirror_requests_total{route="blob",method="GET",status="200"}',
        'hoist_mirror_cache_lookups_total{kind="blob",result="hit"}',
        'hoist_mirror_served_bytes_total{source="cache"}',
        `hoist_mirror_upstream_bytes_total{upstream="${f.registry.host}"}`,
        'hoist_mirror_upstream_fetch_duration_seconds_count',
        'hoist_mirror_inflight_fetches',
        'hoist_mirror_inflight_clients',
        'hoist_mirror_store_bytes',
      ]) {
        assert.ok(text.includes(name), `metrics include ${name}`);
      }
      assert.ok((await f.mirror.metric('hoist_mirror_store_bytes')) >= layer.size);
      const line = f.mirror
        .logs()
        .find((l) => l.msg === 'request' && String(l.path).includes(layer.digest) && l.cache === 'hit');
      assert.ok(line, 'a request line for the cached blob');
      assert.equal(line.status, 200);
      assert.equal(line.bytes, layer.size);
    },
  );
});

describe('tags, offline serving and upstream credentials', () => {
  it('re-checks a tag upstream once its TTL has passed, and follows it when it moves', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-ttl-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const one = await buildImage(join(work, 'one'), {
      tag: 'x',
      layers: [{ files: [{ path: 'a', content: 'one' }] }],
    });
    const two = await buildImage(join(work, 'two'), {
      tag: 'x',
      layers: [{ files: [{ path: 'a', content: 'two' }] }],
    });
    await pushImage(one.dir, 'x', `${registry.host}/t/moving:latest`);

    const cached = await startMirror({ [registry.host]: registry.url }, { file: { tagTtlSeconds: 3600 } });
    t.after(() => cached.close());
    const fresh = await startMirror({ [registry.host]: registry.url }, { file: { tagTtlSeconds: 0 } });
    t.after(() => fresh.close());
    const ns = `?ns=${registry.host}`;
    const get = (m: MirrorHandle) =>
      fetch(`${m.url}/v2/t/moving/manifests/latest${ns}`, { headers: { accept: ALL_ACCEPT.join(',') } });
    assert.equal((await get(cached)).headers.get('docker-content-digest'), one.digest);
    assert.equal((await get(fresh)).headers.get('docker-content-digest'), one.digest);

    await pushImage(two.dir, 'x', `${registry.host}/t/moving:latest`);
    const stillOld = await get(cached);
    assert.equal(
      stillOld.headers.get('docker-content-digest'),
      one.digest,
      'within the TTL the cached tag is served',
    );
    assert.equal(stillOld.headers.get('x-hoist-cache'), 'hit');
    const moved = await get(fresh);
    assert.equal(moved.headers.get('docker-content-digest'), two.digest, 'past the TTL the move is seen');
    // The stale check was a HEAD; the GET happened only because the digest changed.
    await registry.waitForAccess((e) => e.method === 'HEAD' && e.path.endsWith('/manifests/latest'));
  });

  it(
    'starts while its upstream is down, and serves what it holds once the upstream is gone',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const work = await testTempDir(t, 'hoist-offline-');
      // Nothing listens here yet: the mirror must start anyway.
      const port = await freePort();
      const down = await startMirror(
        { [`127.0.0.1:${port}`]: `http://127.0.0.1:${port}` },
        { storage: join(work, 'store') },
      );
      assert.equal((await fetch(`${down.url}/readyz`)).status, 200);
      const miss = await fetch(`${down.url}/v2/a/b/manifests/v1`);
      assert.equal(miss.status, 502);
      assert.equal(
        ((await miss.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
        'UNAVAILABLE',
      );
      await down.close();

      const registry = await startRegistry();
      const image = await buildImage(join(work, 'img'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'f', size: 100_000, seed: 'offline' }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/off/line:v1`);
      const mirror = await startMirror({ [registry.host]: registry.url }, { file: { tagTtlSeconds: 0 } });
      t.after(() => mirror.close());
      await skopeoCopyToDir(`docker://${mirror.host}/off/line:v1`, join(work, 'first'));
      await registry.stop();

      await skopeoCopyToDir(`docker://${mirror.host}/off/line:v1`, join(work, 'second'));
      assert.equal(await fileDigest(join(work, 'second', 'manifest.json')), image.digest);
      const res = await fetch(`${mirror.url}/v2/off/line/manifests/v1`, {
        headers: { accept: ALL_ACCEPT.join(',') },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-hoist-cache'), 'stale');
      assert.ok(
        (await mirror.metric('hoist_mirror_cache_lookups_total', { kind: 'tag', result: 'stale' })) >= 1,
      );
    },
  );

  it('keeps serving after a restart from what is on disk', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-restart-');
    const registry = await startRegistry();
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'f', size: 50_000 }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/re/start:v1`);
    const storage = join(work, 'store');
    const first = await startMirror({ [registry.host]: registry.url }, { storage });
    await skopeoCopyToDir(`docker://${first.host}/re/start:v1`, join(work, 'a'));
    await first.close();
    await registry.stop();
    const second = await startMirror({ [registry.host]: registry.url }, { storage });
    t.after(() => second.close());
    await skopeoCopyToDir(`docker://${second.host}/re/start:v1`, join(work, 'b'));
    assert.equal(await fileDigest(join(work, 'b', 'manifest.json')), image.digest);
  });

  it(
    'authenticates to a private upstream with configured credentials and never logs them',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
      const work = await testTempDir(t, 'hoist-auth-');
      const password = 'pa55-w0rd-never-logged';
      const registry = await startRegistry({ htpasswd: { username: 'puller', password } });
      t.after(() => registry.stop());
      const image = await buildImage(join(work, 'img'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'f', size: 10_000 }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/private/app:v1`, { creds: `puller:${password}` });

      const anonymous = await startMirror({ [registry.host]: registry.url });
      t.after(() => anonymous.close());
      const refused = await fetch(`${anonymous.url}/v2/private/app/manifests/v1`);
      assert.equal(refused.status, 401);

      const mirror = await startMirror(
        {},
        { file: { upstreams: { [registry.host]: { url: registry.url, username: 'puller', password } } } },
      );
      t.after(() => mirror.close());
      // The repository is private upstream, so the client logs in to the mirror too (mirror-private.test.ts).
      await skopeoCopyToDir(`docker://${mirror.host}/private/app:v1`, join(work, 'out'), {
        creds: `puller:${password}`,
      });
      assert.equal(await fileDigest(join(work, 'out', 'manifest.json')), image.digest);
      const logs = JSON.stringify(mirror.logs()) + JSON.stringify(anonymous.logs());
      assert.ok(!logs.includes(password), 'the password is not in the logs');
      assert.ok(!logs.includes(Buffer.from(`puller:${password}`).toString('base64')), 'nor its Basic form');
      assert.ok(!(await (await fetch(`${mirror.url}/metrics`)).text()).includes(password));
    },
  );
});
