// Private images through a mirror with no credentials of its own (issue #10): the client's own
// credentials (skopeo's --src-creds here; the pod's imagePullSecret handed over by the kubelet in
// the containerd tests) are checked and used upstream. Cached private content is served only to
// clients the upstream accepts, also after a restart; public repositories need no credentials;
// no password appears in the mirror's log or metrics.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildImage, fileDigest, pushImage, skopeoCopyToDir, MEDIA_TYPES } from './helpers/images.js';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, tempDir, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';
import { startTokenFront } from './helpers/token-front.js';

const TIMEOUT = { timeout: 240_000 };
const ACCEPT = { accept: [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(',') };
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

async function errorCode(res: Response): Promise<string | undefined> {
  return ((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code;
}

describe('private images through a mirror without credentials (passthrough)', () => {
  it(
    'uses each client’s own credentials upstream and serves the cache only to accepted clients',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
      const work = await testTempDir(t, 'hoist-passthrough-');
      const alice = { username: 'alice', password: 'alice-secret-horse-7' };
      const bob = { username: 'bob', password: 'bob-secret-staple-9' };
      const wrongPassword = 'not-the-password-3';
      const registry = await startRegistry({ htpasswd: alice, moreUsers: [bob] });
      t.after(() => registry.stop());
      const image = await buildImage(join(work, 'img'), {
        tag: 'v1',
        layers: [
          { files: [{ path: 'secret.bin', size: 400_000, seed: 'passthrough-private' }] },
          { files: [{ path: 'more.bin', size: 20_000, seed: 'passthrough-more' }] },
        ],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/private/app:v1`, {
        creds: `${alice.username}:${alice.password}`,
      });
      const layers = image.manifests[0]?.layers ?? [];
      assert.equal(layers.length, 2);
      // A public registry on the same mirror (docker-registry's htpasswd covers every repository).
      const publicRegistry = await startRegistry();
      t.after(() => publicRegistry.stop());
      const pub = await buildImage(join(work, 'pub'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'p.bin', size: 30_000, seed: 'passthrough-public' }] }],
      });
      await pushImage(pub.dir, 'v1', `${publicRegistry.host}/lib/pub:v1`);

      const storage = await tempDir('hoist-passthrough-store-');
      t.after(() => import('./helpers/peers.js').then((p) => p.removeTempDir(storage)));
      const file = {
        // No username or password anywhere: the mirror has no credentials of its own.
        upstreams: {
          [registry.host]: { url: registry.url },
          'public.test': { url: publicRegistry.url },
        },
        defaultUpstream: registry.host,
      };
      const mirror = await startMirror({}, { file, storage });
      let closed = false;
      t.after(() => (closed ? undefined : mirror.close()));

      // The ping says 200 (docker pulls public images anonymously) with a Basic challenge
      // (skopeo, podman and CRI-O then send the credentials they hold).
      const ping = await fetch(`${mirror.url}/v2/`);
      assert.equal(ping.status, 200);
      assert.match(ping.headers.get('www-authenticate') ?? '', /^Basic realm=/);

      const src = `docker://${mirror.host}/private/app:v1`;
      await assert.rejects(skopeoCopyToDir(src, join(work, 'anon')), /unauthorized|authentication required/i);
      await assert.rejects(
        skopeoCopyToDir(src, join(work, 'wrong'), { creds: `alice:${wrongPassword}` }),
        /unauthorized|authentication required/i,
      );
      // Nothing private was fetched by those two.
      assert.equal(
        registry.accessLog().filter((e) => e.path.includes('/blobs/') && e.status === 200).length,
        0,
      );

      await skopeoCopyToDir(src, join(work, 'alice'), { creds: `${alice.username}:${alice.password}` });
      assert.equal(await fileDigest(join(work, 'alice', 'manifest.json')), image.digest);
      for (const layer of layers) {
        assert.equal(
          await fileDigest(join(work, 'alice', layer.digest.slice('sha256:'.length))),
          layer.digest,
        );
        const got = await registry.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
        assert.equal(got.userAgent, 'hoist-mirror', 'the mirror fetched it');
      }
      const blobGets = () =>
        registry
          .accessLog()
          .filter((e) => e.method === 'GET' && e.path.includes('/blobs/') && e.status === 200).length;
      const fetchedOnce = blobGets();

      // Another user the upstream accepts: served from the cache, no blob fetched again.
      await skopeoCopyToDir(src, join(work, 'bob'), { creds: `${bob.username}:${bob.password}` });
      assert.equal(await fileDigest(join(work, 'bob', 'manifest.json')), image.digest);
      assert.equal(blobGets(), fetchedOnce, 'bob was served from the cache');

      // The cached private content is refused to anonymous clients and wrong credentials...
      const layer = layers[0];
      assert.ok(layer);
      const blobUrl = `${mirror.url}/v2/private/app/blobs/${layer.digest}`;
      const manifestUrl = `${mirror.url}/v2/private/app/manifests/v1`;
      for (const url of [blobUrl, manifestUrl]) {
        const anonymous = await fetch(url, { headers: ACCEPT });
        assert.equal(anonymous.status, 401, `${url} anonymous`);
        assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
        assert.equal(await errorCode(anonymous), 'UNAUTHORIZED');
        const empty = await fetch(url, { headers: { ...ACCEPT, authorization: 'Basic Og==' } });
        assert.equal(empty.status, 401, `${url} with empty credentials (skopeo without a login)`);
        await empty.body?.cancel();
        for (let round = 0; round < 2; round++) {
          // A refusal is not remembered as an acceptance, and an acceptance does not let the wrong password in.
          const wrong = await fetch(url, {
            headers: { ...ACCEPT, authorization: basic('alice', wrongPassword) },
          });
          assert.equal(wrong.status, 401, `${url} with the wrong password`);
          assert.equal(await errorCode(wrong), 'UNAUTHORIZED');
          const right = await fetch(url, {
            headers: { ...ACCEPT, authorization: basic('alice', alice.password) },
          });
          assert.equal(right.status, 200, `${url} with alice's password`);
          await right.arrayBuffer();
        }
      }
      assert.equal(blobGets(), fetchedOnce, 'still nothing fetched again');

      // A public repository of another upstream of the same mirror: no credentials needed, none asked.
      await skopeoCopyToDir(`docker://${mirror.host}/public.test/lib/pub:v1`, join(work, 'pub-out'));
      assert.equal(await fileDigest(join(work, 'pub-out', 'manifest.json')), pub.digest);
      const pubManifest = await fetch(`${mirror.url}/v2/public.test/lib/pub/manifests/v1`, {
        headers: ACCEPT,
      });
      assert.equal(pubManifest.status, 200);
      assert.equal(pubManifest.headers.get('www-authenticate'), null);
      await pubManifest.arrayBuffer();

      // Credentials appear in no log line and no metric.
      const metrics = await (await fetch(`${mirror.url}/metrics`)).text();
      const logText = JSON.stringify(mirror.logs());
      for (const secret of [alice.password, bob.password, wrongPassword]) {
        assert.ok(!logText.includes(secret), 'no password in the log');
        assert.ok(!metrics.includes(secret), 'no password in the metrics');
        const b64 = Buffer.from(secret).toString('base64').slice(0, 12);
        assert.ok(!logText.includes(b64), 'no encoded password in the log');
      }
      assert.ok(logText.includes('"status":401'), 'the log was captured');

      // After a restart the cache still knows the repository is private.
      await mirror.close();
      closed = true;
      const again = await startMirror({}, { file, storage });
      t.after(() => again.close());
      const anonymous = await fetch(`${again.url}/v2/private/app/blobs/${layer.digest}`);
      assert.equal(anonymous.status, 401, 'cached private blob refused after a restart');
      await anonymous.body?.cancel();
      const right = await fetch(`${again.url}/v2/private/app/blobs/${layer.digest}`, {
        headers: { authorization: basic('bob', bob.password) },
      });
      assert.equal(right.status, 200);
      assert.equal(
        Buffer.from(await right.arrayBuffer()).equals(
          await readFile(join(work, 'alice', layer.digest.slice(7))),
        ),
        true,
      );
      assert.equal(blobGets(), fetchedOnce, 'served from the cache after the restart');
    },
  );
  it('exchanges each client’s credentials for its own token at a Bearer upstream', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-passthrough-bearer-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const users = { alice: 'alice-token-pass-5', bob: 'bob-token-pass-6' };
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 's.bin', size: 100_000, seed: 'bearer-private' }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/private/app:v1`);
    const pub = await buildImage(join(work, 'pub'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'p.bin', size: 10_000, seed: 'bearer-public' }] }],
    });
    await pushImage(pub.dir, 'v1', `${registry.host}/lib/pub:v1`);
    const front = await startTokenFront({ registryUrl: registry.url, users, publicRepos: ['lib/pub'] });
    t.after(() => front.close());
    const mirror = await startMirror({ [front.host]: front.url }, { defaultUpstream: front.host });
    t.after(() => mirror.close());

    // A public repository of the token-auth upstream: anonymous, with an anonymous token, no challenge.
    await skopeoCopyToDir(`docker://${mirror.host}/lib/pub:v1`, join(work, 'pub-out'));
    assert.equal(await fileDigest(join(work, 'pub-out', 'manifest.json')), pub.digest);

    const src = `docker://${mirror.host}/private/app:v1`;
    await assert.rejects(skopeoCopyToDir(src, join(work, 'anon')), /unauthorized|authentication required/i);
    await assert.rejects(
      skopeoCopyToDir(src, join(work, 'wrong'), { creds: 'alice:wrong-password-8' }),
      /unauthorized|authentication required/i,
    );
    await skopeoCopyToDir(src, join(work, 'alice'), { creds: `alice:${users.alice}` });
    assert.equal(await fileDigest(join(work, 'alice', 'manifest.json')), image.digest);
    // Alice's credentials went to the token service only, never to the registry API.
    assert.ok(
      front.tokenRequests.some((r) => r.user === 'alice' && r.issued && r.scope.includes('private/app')),
    );
    const privateRequests = front.requests.filter(
      (r) => r.path.includes('/private/app/') && r.status === 200,
    );
    assert.ok(privateRequests.length > 0);
    assert.deepEqual([...new Set(privateRequests.map((r) => r.user))], ['alice']);

    // Bob, right after: his access is checked with a token of his own, never with alice's.
    const before = front.requests.length;
    const res = await fetch(`${mirror.url}/v2/private/app/manifests/v1`, {
      headers: { ...ACCEPT, authorization: basic('bob', users.bob) },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-hoist-cache'), 'hit');
    await res.arrayBuffer();
    const bobs = front.requests.slice(before).filter((r) => r.status === 200);
    assert.ok(bobs.length > 0, 'bob was checked upstream');
    assert.deepEqual([...new Set(bobs.map((r) => r.user))], ['bob']);
    // A wrong password gets no token, hence a 401 from the mirror (not a 5xx).
    const wrong = await fetch(`${mirror.url}/v2/private/app/manifests/v1`, {
      headers: { ...ACCEPT, authorization: basic('bob', 'nope-9') },
    });
    assert.equal(wrong.status, 401);
    assert.equal(await errorCode(wrong), 'UNAUTHORIZED');
    const logText = JSON.stringify(mirror.logs());
    for (const secret of [...Object.values(users), 'wrong-password-8', 'nope-9']) {
      assert.ok(!logText.includes(secret), 'no password in the log');
    }
  });
  it(
    'lets a second client join a download only after its own check; a resume keeps the first client’s credentials',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
      const work = await testTempDir(t, 'hoist-passthrough-join-');
      const alice = { username: 'alice', password: 'alice-join-pass-1' };
      const bob = { username: 'bob', password: 'bob-join-pass-2' };
      const registry = await startRegistry({ htpasswd: alice, moreUsers: [bob] });
      t.after(() => registry.stop());
      const image = await buildImage(join(work, 'img'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'big.bin', size: 1_000_000, seed: 'passthrough-join' }] }],
      });
      await pushImage(image.dir, 'v1', `${registry.host}/private/app:v1`, {
        creds: `${alice.username}:${alice.password}`,
      });
      const layer = image.manifests[0]?.layers[0];
      assert.ok(layer && layer.size > 300_000, 'a layer large enough to hold and cut');
      const proxy = await startFaultProxy(registry.url, { holdBlobAfterBytes: 64 * 1024 });
      t.after(() => proxy.close());
      const mirror = await startMirror({ [proxy.host]: proxy.url }, { defaultUpstream: proxy.host });
      t.after(() => mirror.close());
      const asAlice = { authorization: basic(alice.username, alice.password) };
      const asBob = { authorization: basic(bob.username, bob.password) };

      // Alice's pull starts: the manifest (the repository is now known private), then the layer,
      // which the proxy holds after 64 KiB and, once released, cuts at 300 KB.
      const manifest = await fetch(`${mirror.url}/v2/private/app/manifests/v1`, {
        headers: { ...ACCEPT, ...asAlice },
      });
      assert.equal(manifest.status, 200);
      await manifest.arrayBuffer();
      proxy.inject({ pathIncludes: layer.digest }, { kind: 'cut', afterBytes: 300_000 });
      const blobUrl = `${mirror.url}/v2/private/app/blobs/${layer.digest}`;
      const aliceRes = await fetch(blobUrl, { headers: asAlice });
      assert.equal(aliceRes.status, 200);
      const aliceBody = aliceRes.arrayBuffer();
      await proxy.held();

      // While it runs: no one joins without a check of their own.
      const anonymous = await fetch(blobUrl);
      assert.equal(anonymous.status, 401);
      await anonymous.body?.cancel();
      const wrong = await fetch(blobUrl, { headers: { authorization: basic('bob', 'wrong-join-3') } });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      const bobRes = await fetch(blobUrl, { headers: asBob });
      assert.equal(bobRes.status, 200);
      const bobBody = bobRes.arrayBuffer();
      proxy.release();

      const expected = await readFile(join(image.dir, 'blobs', 'sha256', layer.digest.slice(7)));
      assert.ok(Buffer.from(await aliceBody).equals(expected), 'alice got the layer');
      assert.ok(Buffer.from(await bobBody).equals(expected), 'bob got the layer');

      const layerRequests = proxy.requests.filter((r) => r.path.includes(layer.digest));
      const gets = layerRequests.filter((r) => r.method === 'GET');
      // One download: alice's whole GET, cut, then resumed with a Range, with her credentials.
      assert.deepEqual(
        gets.map((r) => [r.range === '' ? 'whole' : 'range', r.authorization === asAlice.authorization]),
        [
          ['whole', true],
          ['range', true],
        ],
      );
      // Bob was checked with his own credentials (a HEAD) before he joined.
      assert.ok(layerRequests.some((r) => r.method === 'HEAD' && r.authorization === asBob.authorization));
      assert.equal(await mirror.metric('hoist_mirror_upstream_resumes_total'), 1);
    },
  );
});
