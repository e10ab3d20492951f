// Access to private repositories: a client's checked access is trusted for `accessCacheSeconds`
// (no re-check upstream within it, a re-check after it), and credentials (the mirror's configured
// upstream password, and the Basic credentials clients send) never appear in any response (status
// line, header or body) nor in any log line, on success or on any error path.
// Upstream requests are counted at a small recording proxy in front of docker-registry: it records
// each request as it arrives (with whether it carried credentials), so counts are exact as soon as
// the mirror has answered.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { freePort, requirePeers, testTempDir } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

interface Seen {
  method: string;
  path: string;
  /** Whether the request carried credentials (the client's, for an access check). */
  authorized: boolean;
}

/** Forwards every request to `target`, recording each as it arrives. */
async function startRecorder(target: string): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const upstream = new URL(target);
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', authorized: !!req.headers.authorization });
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('client access to private repositories', () => {
  it('trusts a checked client for accessCacheSeconds, and re-checks after it', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'htpasswd')) return;
    const password = 'access-cache-secret';
    const registry = await startRegistry({ htpasswd: { username: 'alice', password } });
    t.after(() => registry.stop());
    const creds = { username: 'alice', password };
    const data = randomBytes(10_000);
    const digest = await pushBlob(registry, 'private/cache', data, creds);
    const proxy = await startRecorder(registry.url);
    t.after(() => proxy.close());
    const heads = (authorized: boolean) =>
      proxy.seen.filter(
        (r) => r.method === 'HEAD' && r.path.endsWith(`/blobs/${digest}`) && r.authorized === authorized,
      ).length;
    const gets = () => proxy.seen.filter((r) => r.method === 'GET').length;
    const upstreams = (accessCacheSeconds: number) => ({
      file: {
        accessCacheSeconds,
        upstreams: { 'up.test': { url: proxy.url, username: 'alice', password } },
        defaultUpstream: 'up.test',
      },
    });
    // Two windows instead of a clock to wait for: one far longer than the test, one already over
    // by the next request.
    const within = await startMirror({}, upstreams(3600));
    t.after(() => within.close());
    const over = await startMirror({}, upstreams(0));
    t.after(() => over.close());
    const auth = { authorization: basic('alice', password) };

    for (const [m, name] of [
      [within, 'within'],
      [over, 'over'],
    ] as const) {
      const url = `${m.url}/v2/private/cache/blobs/${digest}`;
      // The first request checks upstream with HEADs: anonymously (is the repository private?),
      // then with the client's credentials.
      let before = heads(true);
      const first = await fetch(url, { headers: auth });
      assert.equal(first.status, 200, name);
      assert.deepEqual(Buffer.from(await first.arrayBuffer()), data);
      assert.ok(heads(true) > before, `${name}: the first request checks the client upstream`);
      for (let i = 0; i < 3; i++) {
        before = heads(true);
        const getsBefore = gets();
        const again = await fetch(url, { headers: auth });
        assert.equal(again.status, 200, name);
        assert.deepEqual(Buffer.from(await again.arrayBuffer()), data);
        assert.equal(gets(), getsBefore, `${name}: served from the cache`);
        const rechecks = heads(true) - before;
        if (name === 'within') assert.equal(rechecks, 0, 'within the window the client is not re-checked');
        else assert.ok(rechecks > 0, 'after the window the client is checked upstream again');
      }
      // Cached or not, a client without credentials is refused.
      assert.equal((await fetch(url)).status, 401, name);
    }
  });
});

describe('credentials', () => {
  it('never appear in a response or a log line, on success or on error', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'htpasswd', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-creds-');
    const password = 'Upstream-Pa55word-7c1e';
    const clientWrong = 'Client-Wrong-Pa55-91d2';
    const mirrorWrong = 'Mirror-Wrong-Pa55-3b8f';
    const registry = await startRegistry({ htpasswd: { username: 'alice', password } });
    t.after(() => registry.stop());
    const creds = { username: 'alice', password };
    const data = randomBytes(20_000);
    const digest = await pushBlob(registry, 'private/creds', data, creds);
    const image = await buildImage(join(work, 'img'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a', content: 'a' }] }],
    });
    await pushImage(image.dir, 'v1', `${registry.host}/private/creds:v1`, { creds: `alice:${password}` });
    const downPort = await freePort(); // nothing listens here
    const mirror = await startMirror(
      {},
      {
        file: {
          upstreams: {
            'good.test': { url: registry.url, username: 'alice', password },
            // Configured with a password the upstream refuses: its errors must not echo it.
            'bad.test': { url: registry.url, username: 'alice', password: mirrorWrong },
            'down.test': { url: `http://127.0.0.1:${downPort}`, username: 'alice', password },
          },
          defaultUpstream: 'good.test',
          upstreamHeadersTimeoutSeconds: 2,
          clientRetryBudgetMs: 0,
        },
      },
    );
    t.after(() => mirror.close());

    const secrets = [password, clientWrong, mirrorWrong];
    const forms = secrets.flatMap((s) => [
      s,
      encodeURIComponent(s),
      Buffer.from(`alice:${s}`).toString('base64'),
      Buffer.from(s).toString('base64'),
    ]);
    const right = { authorization: basic('alice', password) };
    const wrong = { authorization: basic('alice', clientWrong) };
    const seen: string[] = [];
    const statuses: string[] = [];
    const ask = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
      const res = await fetch(`${mirror.url}${path}`, { method, headers });
      const body = await res.text();
      statuses.push(`${method} ${path} ${headers.authorization ? 'creds' : 'anon'} ${res.status}`);
      seen.push(`${res.status} ${res.statusText}`, ...[...res.headers].map(([k, v]) => `${k}: ${v}`), body);
      return res.status;
    };

    const repoPaths = (ns: string) => [
      `/v2/private/creds/blobs/${digest}?ns=${ns}`,
      `/v2/private/creds/manifests/v1?ns=${ns}`,
      `/v2/private/creds/manifests/${image.digest}?ns=${ns}`,
      `/v2/private/creds/manifests/latest?ns=${ns}`,
      `/v2/private/creds/manifests/sha256:${'0'.repeat(64)}?ns=${ns}`,
      `/v2/private/creds/tags/list?ns=${ns}`,
      `/v2/private/missing/blobs/${digest}?ns=${ns}`,
    ];
    for (const headers of [{}, right, wrong]) {
      await ask('/v2/', headers);
      for (const ns of ['good.test', 'bad.test', 'down.test']) {
        for (const path of repoPaths(ns)) {
          await ask(path, headers);
          await ask(path, headers, 'HEAD');
        }
      }
      await ask(`/v2/private/creds/blobs/${digest}?ns=good.test`, { ...headers, range: 'bytes=0-99' });
    }
    await ask('/metrics');
    await ask('/readyz');
    // The exercise reached the success and error paths it is meant to cover.
    assert.ok(
      statuses.includes(`GET /v2/private/creds/blobs/${digest}?ns=good.test creds 200`),
      statuses.join('\n'),
    );
    assert.ok(statuses.includes(`GET /v2/private/creds/manifests/v1?ns=good.test creds 200`));
    assert.ok(statuses.some((s) => s.endsWith(' 401')));
    assert.ok(
      statuses.some((s) => /down\.test creds 50\d$/.test(s)),
      statuses.join('\n'),
    );

    const logs = mirror.logs().map((l) => JSON.stringify(l));
    assert.ok(logs.length > statuses.length, 'every request was logged');
    for (const form of forms) {
      for (const text of seen) assert.ok(!text.includes(form), `a response contains a credential: ${text}`);
      for (const line of logs) assert.ok(!line.includes(form), `a log line contains a credential: ${line}`);
    }
  });
});
