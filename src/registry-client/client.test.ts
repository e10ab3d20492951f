import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseChallenges } from './auth.js';
import { RegistryClient } from './client.js';
import { parseRetryAfter } from './errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('auth challenges', () => {
  it('parses a Bearer challenge with quoted params', () => {
    assert.deepEqual(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push"',
      ),
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:a/b:pull,push',
          },
        },
      ],
    );
  });
  it('parses Basic and unquoted values', () => {
    assert.deepEqual(parseChallenges('Basic realm=registry'), [
      { scheme: 'basic', params: { realm: 'registry' } },
    ]);
  });
  it('parses Retry-After seconds and dates', () => {
    assert.equal(parseRetryAfter('7'), 7);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 0), 10);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
});

describe('RegistryClient against a token-auth registry', () => {
  let registry: { server: Server; url: string };
  let tokenFetches = 0;
  let tokenAuth: string | undefined;
  const seenScopes: string[] = [];
  let issued = 0;

  before(async () => {
    registry = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        tokenFetches += 1;
        tokenAuth = req.headers.authorization;
        seenScopes.push(url.searchParams.get('scope') ?? '');
        if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`) {
          res.writeHead(401).end();
          return;
        }
        issued += 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token: `tok${issued}`, expires_in: 300 }));
        return;
      }
      if (!req.headers.authorization?.startsWith('Bearer tok')) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${registry.url}/token",service="test",scope="repository:${url.pathname.split('/')[2]}:pull"`,
          'content-type': 'application/json',
        });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      if (url.pathname.includes('/manifests/')) {
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': 'sha256:x',
        });
        res.end('{}');
        return;
      }
      if (url.pathname.includes('/blobs/')) {
        const data = Buffer.from('0123456789');
        const m = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? '');
        if (m) {
          const s = Number(m[1]);
          const e = m[2] ? Number(m[2]) : 9;
          res.writeHead(206, { 'content-range': `bytes ${s}-${e}/10`, 'content-length': e - s + 1 });
          res.end(data.subarray(s, e + 1));
        } else {
          res.writeHead(200, { 'content-length': 10 }).end(data);
        }
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}');
    });
  });
  after(() => registry.server.close());

  it('answers the challenge with the configured credentials and caches the token until it expires', async () => {
    let now = 1_000_000;
    const client = new RegistryClient({
      name: 'test',
      url: registry.url,
      credentials: { username: 'alice', password: 's3cret' },
      now: () => now,
    });
    const first = await client.getManifest('a', 'v1', ['application/vnd.oci.image.manifest.v1+json']);
    assert.equal(first.contentType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(tokenFetches, 1);
    assert.equal(seenScopes[0], 'repository:a:pull');
    await client.getManifest('a', 'v2', []);
    await client.headManifest('a', 'v2', []);
    assert.equal(tokenFetches, 1, 'the cached token is reused');
    // Another repository needs a token of its own scope, fetched without another 401 first.
    await client.getManifest('b', 'v1', []);
    assert.equal(tokenFetches, 2);
    assert.equal(seenScopes[1], 'repository:b:pull');
    now += 301_000;
    await client.getManifest('a', 'v1', []);
    assert.equal(tokenFetches, 3, 'an expired token is replaced');
  });

  it('reads ranges and whole blobs', async () => {
    const client = new RegistryClient({
      name: 'test',
      url: registry.url,
      credentials: { username: 'alice', password: 's3cret' },
    });
    const whole = await client.getBlob('a', 'sha256:x');
    assert.equal(whole.status, 200);
    assert.equal(whole.totalSize, 10);
    const ranged = await client.getBlob('a', 'sha256:x', { range: { start: 4 } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.offset, 4);
    assert.equal(ranged.totalSize, 10);
    const chunks: Buffer[] = [];
    for await (const c of ranged.body) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), '456789');
  });

  it('reports wrong credentials as UNAUTHORIZED without revealing them', async () => {
    const client = new RegistryClient({
      name: 'test',
      url: registry.url,
      credentials: { username: 'alice', password: 'wrong-pw' },
    });
    await assert.rejects(client.getManifest('a', 'v1', []), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'UNAUTHORIZED');
      assert.doesNotMatch(err.message, /wrong-pw|alice/);
      return true;
    });
    assert.notEqual(tokenAuth, undefined);
  });

  it('keeps the OCI error code of an upstream error body', async () => {
    const client = new RegistryClient({
      name: 'test',
      url: registry.url,
      credentials: { username: 'alice', password: 's3cret' },
    });
    await assert.rejects(client.listTags('a', ''), { code: 'NAME_UNKNOWN', status: 404 });
  });

  it('reports an unreachable upstream as UPSTREAM_UNAVAILABLE', async () => {
    const closed = await serve(() => {});
    const url = closed.url;
    await new Promise((r) => closed.server.close(r));
    const client = new RegistryClient({ name: 'gone', url });
    await assert.rejects(client.getManifest('a', 'v1', []), { code: 'UPSTREAM_UNAVAILABLE' });
  });

  it('times out waiting for headers', async () => {
    const silent = await serve(() => {});
    const client = new RegistryClient({ name: 'silent', url: silent.url, headersTimeoutMs: 50 });
    await assert.rejects(client.getManifest('a', 'v1', []), { code: 'UPSTREAM_TIMEOUT' });
    silent.server.closeAllConnections();
    silent.server.close();
  });
});

describe('RegistryClient against a Basic-auth registry', () => {
  it('switches to Basic when challenged so', async () => {
    const expected = `Basic ${Buffer.from('bob:pw').toString('base64')}`;
    let unauthorized = 0;
    const reg = await serve((req, res) => {
      if (req.headers.authorization !== expected) {
        unauthorized += 1;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="Registry Realm"' }).end();
        return;
      }
      res.writeHead(200, { 'content-length': 2 }).end('{}');
    });
    const client = new RegistryClient({
      name: 'basic',
      url: reg.url,
      credentials: { username: 'bob', password: 'pw' },
    });
    await client.getManifest('a', 'v1', []);
    await client.getManifest('a', 'v2', []);
    assert.equal(unauthorized, 1, 'Basic is sent up front once the registry asked for it');
    reg.server.close();
  });
});

describe('RegistryClient against an anonymous token registry', () => {
  it('fetches an anonymous token (no Authorization) and reuses it', async () => {
    let tokenRequests = 0;
    let tokenAuthorization: string | undefined = 'unset';
    const reg = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        tokenRequests += 1;
        tokenAuthorization = req.headers.authorization;
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end('{"access_token":"anon","expires_in":60}');
        return;
      }
      if (req.headers.authorization !== 'Bearer anon') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.url}/token",service="hub"` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const client = new RegistryClient({ name: 'anon', url: reg.url });
    await client.getManifest('library/alpine', 'latest', []);
    await client.getManifest('library/alpine', '3', []);
    assert.equal(tokenRequests, 1);
    assert.equal(tokenAuthorization, undefined);
    reg.server.close();
  });
});
