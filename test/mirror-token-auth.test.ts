// Bearer tokens from a real token server (distribution's contrib/token-server in front of
// docker-registry's `auth.token`; test/helpers/token-registry.ts): the mirror pulls a private image
// with its configured credentials, asks for exactly `repository:<name>:pull`, caches one token per
// scope until it expires (docs/spec/auth/token.md "expires_in"), and reports refused credentials
// and refused repositories to its client as OCI errors. `hoist convert` pushes with `pull,push`.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { RegistryClient } from '../src/registry-client/index.js';
import { runHoist } from './helpers/cri.js';
import { goPeerBinary, requireGoPeer } from './helpers/go-peers.js';
import {
  buildImage,
  fileDigest,
  pushImage,
  skopeoCopyToDir,
  MEDIA_TYPES,
  type BuiltImage,
} from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { findBinary, removeTempDir, requirePeers, tempDir, testTempDir } from './helpers/peers.js';
import { startTokenRegistry, type TokenRegistry, type TokenRequest } from './helpers/token-registry.js';

const TIMEOUT = { timeout: 180_000 };
const ACCEPT = { accept: [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex].join(',') };
const ALICE = { username: 'alice', password: 'alice-token-pass' };
const BOB = { username: 'bob', password: 'bob-token-pass' };
const basic = (u: { username: string; password: string }) =>
  `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`;
// The token server's fixed lifetime (contrib/token-server main.go: 15 minutes).
const TOKEN_LIFETIME_MS = 15 * 60 * 1000;

interface Fixture {
  tr: TokenRegistry;
  app: BuiltImage;
  other: BuiltImage;
  work: string;
}

describe('Bearer token auth against a real token server', () => {
  let fx: Fixture | undefined;

  before(async () => {
    // Peers are checked per test (a skip needs the test's context); start only when all are there.
    if (goPeerBinary('token-server') === undefined) return;
    if (['docker-registry', 'skopeo', 'htpasswd', 'openssl'].some((b) => findBinary(b) === undefined)) return;
    const work = await tempDir('hoist-tokenauth-');
    const tr = await startTokenRegistry({ users: [ALICE, BOB] });
    const app = await buildImage(join(work, 'app'), {
      tag: 'v1',
      // Several layers: several blob fetches under one scope.
      layers: [
        { files: [{ path: 'a.bin', size: 40_000, seed: 'token-a' }] },
        { files: [{ path: 'b.bin', size: 30_000, seed: 'token-b' }] },
        { files: [{ path: 'c.bin', size: 20_000, seed: 'token-c' }] },
      ],
    });
    const other = await buildImage(join(work, 'other'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'o.bin', size: 10_000, seed: 'token-o' }] }],
    });
    const creds = `${ALICE.username}:${ALICE.password}`;
    await pushImage(app.dir, 'v1', `${tr.registry.host}/alice/app:v1`, { creds });
    await pushImage(other.dir, 'v1', `${tr.registry.host}/alice/other:v1`, { creds });
    fx = { tr, app, other, work };
  });

  after(async () => {
    await fx?.tr.stop();
    if (fx) await removeTempDir(fx.work);
  });

  /** The fixture, or undefined after skipping (CI=true: failing) for a missing peer. */
  function fixture(t: TestContext): Fixture | undefined {
    if (!requireGoPeer(t, 'token-server')) return undefined;
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd', 'openssl')) return undefined;
    assert.ok(fx, 'the token registry did not start');
    return fx;
  }

  /** Token requests logged after the first `since`. */
  const requestsSince = (tr: TokenRegistry, since: number): TokenRequest[] => tr.tokenRequests().slice(since);

  it('pulls a private image byte for byte with one token per repository scope', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr, app } = f;
    const work = await testTempDir(t, 'hoist-tokenpull-');
    // trust: no per-client check, so every token request seen is the mirror's own.
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: { [tr.registry.host]: { url: tr.registry.url, ...ALICE, clientAuth: 'trust' } },
          defaultUpstream: tr.registry.host,
        },
      },
    );
    t.after(() => mirror.close());

    const since = tr.tokenRequests().length;
    await skopeoCopyToDir(`docker://${mirror.host}/alice/app:v1`, join(work, 'app'));
    assert.equal(await fileDigest(join(work, 'app', 'manifest.json')), app.digest);
    const manifest = app.manifests[0];
    assert.ok(manifest);
    for (const d of [manifest.config, ...manifest.layers]) {
      assert.equal(await fileDigest(join(work, 'app', d.digest.slice('sha256:'.length))), d.digest);
    }
    // Every upstream blob was fetched (a cold mirror) ...
    for (const layer of manifest.layers) {
      await tr.registry.waitForAccess(
        (e) => e.method === 'GET' && e.path === `/v2/alice/app/blobs/${layer.digest}` && e.status === 200,
      );
    }
    // ... with one token, asked for exactly this repository's pull scope.
    const appRequests = requestsSince(tr, since);
    assert.deepEqual(
      appRequests.map((r) => ({ scopes: r.scopes, service: r.service, user: r.user, status: r.status })),
      [{ scopes: ['repository:alice/app:pull'], service: tr.service, user: 'alice', status: 200 }],
      tr.output(),
    );
    assert.equal(appRequests[0]?.granted, '[{{repository  alice/app} pull}]');

    // A second repository is a second scope: one more token, for it alone.
    const since2 = tr.tokenRequests().length;
    await skopeoCopyToDir(`docker://${mirror.host}/alice/other:v1`, join(work, 'other'));
    assert.equal(await fileDigest(join(work, 'other', 'manifest.json')), f.other.digest);
    assert.deepEqual(
      requestsSince(tr, since2).map((r) => r.scopes),
      [['repository:alice/other:pull']],
    );

    // A later upstream request for the first repository (the tags list is always passed through)
    // reuses its cached token.
    const since3 = tr.tokenRequests().length;
    const tags = await fetch(`${mirror.url}/v2/alice/app/tags/list`);
    assert.equal(tags.status, 200);
    assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['v1']);
    await tr.registry.waitForAccess((e) => e.path === '/v2/alice/app/tags/list' && e.status === 200);
    assert.deepEqual(requestsSince(tr, since3), []);
  });

  it('renews a token once it expires (injected clock), not before', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    let now = Date.now();
    const client = new RegistryClient({
      name: tr.registry.host,
      url: tr.registry.url,
      credentials: ALICE,
      now: () => now,
    });
    const accept = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex];
    const since = tr.tokenRequests().length;
    await client.getManifest('alice/app', 'v1', accept);
    await client.headManifest('alice/app', 'v1', accept);
    assert.equal(requestsSince(tr, since).length, 1);

    // Close to the 900 s lifetime but short of the early-refresh margin: still cached.
    now += TOKEN_LIFETIME_MS - 60_000;
    await client.headManifest('alice/app', 'v1', accept);
    assert.equal(requestsSince(tr, since).length, 1);

    // Past it: a new token from the server, which the registry accepts.
    now += 60_000;
    const m = await client.getManifest('alice/app', 'v1', accept);
    assert.equal(m.digestHeader, f.app.digest);
    const renewed = requestsSince(tr, since);
    assert.equal(renewed.length, 2, tr.output());
    assert.deepEqual(renewed[1]?.scopes, ['repository:alice/app:pull']);
    assert.equal(renewed[1]?.status, 200);
  });

  it('answers clients with refused credentials or a refused repository with 401', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    const work = await testTempDir(t, 'hoist-tokendeny-');
    // verify (the default): each client's own credentials are checked upstream.
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: { [tr.registry.host]: { url: tr.registry.url, ...ALICE } },
          defaultUpstream: tr.registry.host,
        },
      },
    );
    t.after(() => mirror.close());
    const url = `${mirror.url}/v2/alice/app/manifests/v1`;
    const errorCode = async (res: Response) =>
      ((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code;

    const anonymous = await fetch(url, { headers: ACCEPT });
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm=/);
    assert.equal(await errorCode(anonymous), 'UNAUTHORIZED');

    // A wrong password: the token server refuses it (401), so does the mirror.
    const since = tr.tokenRequests().length;
    const wrong = await fetch(url, {
      headers: { ...ACCEPT, authorization: basic({ ...ALICE, password: 'no' }) },
    });
    assert.equal(wrong.status, 401);
    assert.equal(await errorCode(wrong), 'UNAUTHORIZED');
    const refused = await tr.waitForTokenRequest((r, i) => i >= since && r.refusedUser === 'alice');
    assert.equal(refused.status, 401);
    assert.equal(refused.user, undefined);
    assert.ok(requestsSince(tr, since).every((r) => r.status === 401));

    // Bob is a real user, but the token server grants him nothing in alice/: the registry refuses
    // his token (insufficient_scope) and the mirror refuses him, cached content or not.
    const bob = await fetch(url, { headers: { ...ACCEPT, authorization: basic(BOB) } });
    assert.equal(bob.status, 401);
    assert.equal(await errorCode(bob), 'UNAUTHORIZED');
    await tr.waitForTokenRequest((r) => r.user === 'bob' && r.status === 200 && r.granted === '[]');

    // Alice pulls; then the cache holds the image and still refuses Bob and a wrong password.
    await skopeoCopyToDir(`docker://${mirror.host}/alice/app:v1`, join(work, 'ok'), {
      creds: `${ALICE.username}:${ALICE.password}`,
    });
    assert.equal(await fileDigest(join(work, 'ok', 'manifest.json')), f.app.digest);
    await assert.rejects(
      skopeoCopyToDir(`docker://${mirror.host}/alice/app:v1`, join(work, 'bob'), {
        creds: `${BOB.username}:${BOB.password}`,
      }),
    );
    const bobAgain = await fetch(url, { headers: { ...ACCEPT, authorization: basic(BOB) } });
    assert.equal(bobAgain.status, 401);
  });

  it('tells the client when the mirror’s own credentials are refused', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: {
            [tr.registry.host]: {
              url: tr.registry.url,
              username: ALICE.username,
              password: 'stale-secret',
              clientAuth: 'trust',
            },
          },
          defaultUpstream: tr.registry.host,
        },
      },
    );
    t.after(() => mirror.close());
    const since = tr.tokenRequests().length;
    const res = await fetch(`${mirror.url}/v2/alice/app/manifests/v1`, { headers: ACCEPT });
    assert.equal(res.status, 401);
    await tr.waitForTokenRequest((r, i) => i >= since && r.refusedUser === 'alice' && r.status === 401);
    const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0]?.code, 'UNAUTHORIZED');
    assert.match(
      body.errors[0]?.message ?? '',
      /token service answered 401 .*check the configured credentials/,
    );
  });

  it('hoist convert pushes to a token-auth registry with a pull,push token', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    const work = await testTempDir(t, 'hoist-tokenconvert-');
    const dockerDir = join(work, 'docker');
    await mkdir(dockerDir);
    const authfile = join(dockerDir, 'config.json');
    const auth = Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64');
    await writeFile(authfile, JSON.stringify({ auths: { [tr.registry.host]: { auth } } }));
    const src = `${tr.registry.host}/alice/app:v1`;

    const since = tr.tokenRequests().length;
    const res = await runHoist(
      ['convert', src, `${tr.registry.host}/alice/app:esgz`, '--authfile', authfile],
      {
        fromSource: true,
      },
    );
    assert.equal(res.code, 0, `${res.stderr}\n${tr.output()}`);
    const scopes = requestsSince(tr, since).map((r) => r.scopes.join(' '));
    assert.ok(scopes.includes('repository:alice/app:pull,push'), scopes.join('\n'));
    const check = await runHoist(
      ['convert', '--check', `${tr.registry.host}/alice/app:esgz`, '--authfile', authfile],
      {
        fromSource: true,
      },
    );
    assert.equal(check.code, 0, check.stderr);

    // Into a repository the token server grants alice nothing in: a clear refusal, exit 1.
    const denied = await runHoist(
      ['convert', src, `${tr.registry.host}/bob/app:esgz`, '--authfile', authfile],
      {
        fromSource: true,
      },
    );
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stderr, /^hoist: upstream answered 401 for upload to bob\/app on .*\n$/);
  });

  // Last: it restarts the shared registry and token server (same ports, same storage).
  it('fetches a new token when the registry refuses the cached one (key rotated)', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    const work = await testTempDir(t, 'hoist-tokenrotate-');
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: { [tr.registry.host]: { url: tr.registry.url, ...ALICE, clientAuth: 'trust' } },
          defaultUpstream: tr.registry.host,
        },
      },
    );
    t.after(() => mirror.close());
    const tags = await fetch(`${mirror.url}/v2/alice/app/tags/list`);
    assert.equal(tags.status, 200);
    await tags.arrayBuffer();

    // The mirror's cached token is now signed by a key the registry no longer trusts.
    await tr.rotateSigningKey();
    const since = tr.tokenRequests().length;
    await skopeoCopyToDir(`docker://${mirror.host}/alice/app:v1`, join(work, 'app'));
    assert.equal(await fileDigest(join(work, 'app', 'manifest.json')), f.app.digest);
    // The registry refused the old token once, then served with the new one ...
    const manifestPath = '/v2/alice/app/manifests/v1';
    const refused = await tr.registry.waitForAccess((e) => e.path === manifestPath && e.status === 401);
    assert.equal(refused.method, 'GET');
    await tr.registry.waitForAccess((e) => e.path === manifestPath && e.status === 200);
    // ... which was one token request, for the same scope.
    assert.deepEqual(
      requestsSince(tr, since).map((r) => ({ scopes: r.scopes, status: r.status })),
      [{ scopes: ['repository:alice/app:pull'], status: 200 }],
    );
  });

  it('asks for one new token when requests in flight are refused together', TIMEOUT, async (t) => {
    const f = fixture(t);
    if (!f) return;
    const { tr } = f;
    const work = await testTempDir(t, 'hoist-tokenmany-');
    // Many layers, fetched at once as containerd fetches an image's layers.
    const many = await buildImage(join(work, 'many'), {
      tag: 'v1',
      layers: Array.from({ length: 12 }, (_, i) => ({
        files: [{ path: `l${i}.bin`, size: 50_000, seed: `many-${i}` }],
      })),
    });
    await pushImage(many.dir, 'v1', `${tr.registry.host}/alice/many:v1`, {
      creds: `${ALICE.username}:${ALICE.password}`,
    });
    const layers = many.manifests[0]?.layers ?? [];
    assert.equal(layers.length, 12);
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: { [tr.registry.host]: { url: tr.registry.url, ...ALICE, clientAuth: 'trust' } },
          defaultUpstream: tr.registry.host,
        },
      },
    );
    t.after(() => mirror.close());
    /** Fetches blobs through the mirror all at once; none is stored yet, so each goes upstream. */
    const fetchAll = async (digests: string[]) => {
      const statuses = await Promise.all(
        digests.map(async (d) => {
          const res = await fetch(`${mirror.url}/v2/alice/many/blobs/${d}`);
          await res.arrayBuffer();
          return res.status;
        }),
      );
      assert.deepEqual(
        statuses,
        digests.map(() => 200),
      );
    };
    const digests = layers.map((l) => l.digest);

    // First contact: every request is challenged; one token is asked for.
    let since = tr.tokenRequests().length;
    await fetchAll(digests.slice(0, 6));
    assert.deepEqual(
      requestsSince(tr, since).map((r) => r.scopes),
      [['repository:alice/many:pull']],
    );
    // The cached token stops being accepted: every request in flight with it is refused, and one
    // new token serves them all.
    await tr.rotateSigningKey();
    since = tr.tokenRequests().length;
    await fetchAll(digests.slice(6));
    assert.deepEqual(
      requestsSince(tr, since).map((r) => r.scopes),
      [['repository:alice/many:pull']],
      tr.output(),
    );
  });
});
