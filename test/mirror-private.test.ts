// Private images: a repository that needs credentials upstream is served from the cache only to a
// client whose own credentials the upstream accepts, even when the content is cached; content
// cached for one repository or registry is not served through another that does not hold it;
// `clientAuth: trust` serves a node-local mirror's clients with the mirror's own credentials.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { buildImage, fileDigest, pushImage, skopeoCopyToDir, MEDIA_TYPES } from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 180_000 };
const ACCEPT = { accept: [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(',') };
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

/**
 * The first request log line for `path` with `status` from log line `since` on. It is written when the response closes,
 * which can be just after the client has read the body: poll the in-memory log briefly.
 */
async function requestLine(mirror: MirrorHandle, since: number, path: string, status: number) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const line = mirror.logs().findLast((l) => l.msg === 'request' && l.path === path && l.status === status);
    if (line) return line;
    if (Date.now() > deadline) assert.fail(`no request log line for ${path} with status ${status}`);
    await delay(10);
  }
}

describe('private upstream repositories', () => {
  it('serves cached private content only to clients the upstream accepts', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
    const work = await testTempDir(t, 'hoist-private-');
    const password = 'right-horse-battery';
    const registry = await startRegistry({ htpasswd: { username: 'alice', password } });
    t.after(() => registry.stop());
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'secret.bin', size: 50_000, seed: 'private' }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/private/app:v1`, { creds: `alice:${password}` });
    const other = await buildImage(join(work, 'other'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'o', content: 'o' }] }],
    });
    await pushImage(other.dir, 'v1', `${registry.host}/private/other:v1`, { creds: `alice:${password}` });
    const layer = image.manifests[0]?.layers[0];
    assert.ok(layer);

    // A public registry beside it, through the same mirror (the store is shared).
    const publicRegistry = await startRegistry();
    t.after(() => publicRegistry.stop());
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: {
            [registry.host]: { url: registry.url, username: 'alice', password },
            [publicRegistry.host]: { url: publicRegistry.url },
          },
          defaultUpstream: registry.host,
        },
      },
    );
    t.after(() => mirror.close());

    // A client with the right credentials pulls; everything is now cached.
    await skopeoCopyToDir(`docker://${mirror.host}/private/app:v1`, join(work, 'good'), {
      creds: `alice:${password}`,
    });
    assert.equal(await fileDigest(join(work, 'good', 'manifest.json')), image.digest);

    const manifestUrl = `${mirror.url}/v2/private/app/manifests/v1`;
    const blobUrl = `${mirror.url}/v2/private/app/blobs/${layer.digest}`;
    for (const url of [manifestUrl, blobUrl, `${mirror.url}/v2/private/app/manifests/${image.digest}`]) {
      const anonymous = await fetch(url, { headers: ACCEPT });
      assert.equal(anonymous.status, 401, `${url} without credentials`);
      assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
      assert.equal(
        ((await anonymous.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
        'UNAUTHORIZED',
      );
      const wrong = await fetch(url, { headers: { ...ACCEPT, authorization: basic('alice', 'wrong') } });
      assert.equal(wrong.status, 401, `${url} with wrong credentials`);
      const since = mirror.logs().length;
      const right = await fetch(url, { headers: { ...ACCEPT, authorization: basic('alice', password) } });
      assert.equal(right.status, 200, `${url} with the right credentials`);
      await right.arrayBuffer();
      if (url === blobUrl) {
        // Blob responses carry no X-Hoist-Cache header: the request's log line says where it came from.
        const line = await requestLine(mirror, since, new URL(url).pathname, 200);
        assert.equal(line.cache, 'hit', `${url} served from the cache`);
      } else {
        assert.equal(right.headers.get('x-hoist-cache'), 'hit', `${url} served from the cache`);
      }
    }
    // skopeo without credentials is refused too, though everything is cached.
    await assert.rejects(skopeoCopyToDir(`docker://${mirror.host}/private/app:v1`, join(work, 'anon')));
    await assert.rejects(
      skopeoCopyToDir(`docker://${mirror.host}/private/app:v1`, join(work, 'wrong'), { creds: 'alice:nope' }),
    );

    // Cached for private/app, asked for through a repository that does not hold it: not served.
    const elsewhere = await fetch(`${mirror.url}/v2/private/other/blobs/${layer.digest}`, {
      headers: { authorization: basic('alice', password) },
    });
    assert.equal(elsewhere.status, 404);
    // ...nor through the public registry that shares the store.
    const leak = await fetch(`${mirror.url}/v2/private/app/blobs/${layer.digest}?ns=${publicRegistry.host}`);
    assert.equal(leak.status, 404);
    const leakManifest = await fetch(
      `${mirror.url}/v2/private/app/manifests/${image.digest}?ns=${publicRegistry.host}`,
      {
        headers: ACCEPT,
      },
    );
    assert.equal(leakManifest.status, 404);
  });

  it('serves every client with the mirror’s own credentials in trust mode', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
    const work = await testTempDir(t, 'hoist-trust-');
    const password = 'node-local-secret';
    const registry = await startRegistry({ htpasswd: { username: 'node', password } });
    t.after(() => registry.stop());
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a', size: 10_000 }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/team/app:v1`, { creds: `node:${password}` });
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: {
            [registry.host]: { url: registry.url, username: 'node', password, clientAuth: 'trust' },
          },
        },
      },
    );
    t.after(() => mirror.close());
    await skopeoCopyToDir(`docker://${mirror.host}/team/app:v1`, join(work, 'out'));
    assert.equal(await fileDigest(join(work, 'out', 'manifest.json')), image.digest);
  });
});
