import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, describe, it, mock, type TestContext } from 'node:test';
import { RegistryClient } from './client.js';
import { UpstreamError } from './errors.js';
import { sendRequest } from './http-transport.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

interface TestServer {
  server: Server;
  url: string;
  /** TCP connections accepted so far. */
  connections(): number;
}

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function listen(handler: Handler, port = 0): Promise<TestServer> {
  const server = createServer(handler);
  let connections = 0;
  server.on('connection', () => void (connections += 1));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  servers.push(server);
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
  };
}

const GET = { method: 'GET', headers: {} };

/** Ports the fetch standard refuses (fetch spec §2.9 "bad port"); the first free one is used. */
const BLOCKED_PORTS = [6000, 6665, 6666, 6667, 6668, 6669, 10080, 5060, 6697];

describe('http transport', { timeout: 20_000 }, () => {
  it('reaches a server on a port the fetch standard blocks', async (t: TestContext) => {
    let srv: TestServer | undefined;
    const busy: string[] = [];
    for (const port of BLOCKED_PORTS) {
      try {
        srv = await listen((_req, res) => void res.end('hello'), port);
        break;
      } catch (err) {
        busy.push(`${port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    if (!srv) {
      t.skip(`no blocked port is free (${busy.join(', ')})`);
      return;
    }
    // The global fetch refuses this port outright, which is why the transport exists.
    await assert.rejects(fetch(srv.url), (err: Error) => /bad port/.test(String(err.cause)));
    const res = await sendRequest(srv.url, GET, { name: 'blocked', headersTimeoutMs: 5_000 });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hello');
  });

  it('follows a same-origin redirect with the Authorization, drops it across origins', async () => {
    const seen: Record<string, string | undefined> = {};
    const cdn = await listen((req, res) => {
      seen[`cdn${req.url}`] = req.headers.authorization;
      res.end('from cdn');
    });
    const origin = await listen((req, res) => {
      if (req.url === '/same') res.writeHead(307, { location: '/target' }).end();
      else if (req.url === '/cross') res.writeHead(307, { location: `${cdn.url}/blob` }).end();
      else {
        seen[`origin${req.url}`] = req.headers.authorization;
        res.end('from origin');
      }
    });
    const init = { method: 'GET', headers: { authorization: 'Bearer secret' } };
    const opts = { name: 'origin', headersTimeoutMs: 5_000 };
    const same = await sendRequest(`${origin.url}/same`, init, opts);
    assert.equal(await same.text(), 'from origin');
    assert.equal(seen['origin/target'], 'Bearer secret');
    const cross = await sendRequest(`${origin.url}/cross`, init, opts);
    assert.equal(cross.status, 200);
    assert.equal(await cross.text(), 'from cdn');
    assert.ok('cdn/blob' in seen, 'the redirect was followed');
    assert.equal(seen['cdn/blob'], undefined, 'no Authorization sent to another origin');
  });

  it('times out while waiting for headers', async () => {
    const silent = await listen(() => {}); // never answers
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const arrived = once(silent.server, 'request');
      const pending = sendRequest(silent.url, GET, { name: 'silent', headersTimeoutMs: 1_000 });
      await arrived;
      mock.timers.tick(1_000);
      await assert.rejects(pending, { name: 'UpstreamError', code: 'UPSTREAM_TIMEOUT' });
    } finally {
      mock.timers.reset();
    }
  });

  it('does not time out a body that takes longer than the headers timeout', async () => {
    let finish: (() => void) | undefined;
    const slow = await listen((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('01234');
      finish = () => res.end('56789');
    });
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const res = await sendRequest(slow.url, GET, { name: 'slow', headersTimeoutMs: 1_000 });
      const chunks: Buffer[] = [];
      const done = (async () => {
        for await (const c of res.body) chunks.push(c as Buffer);
      })();
      mock.timers.tick(10_000); // a headers timer still armed would fire now
      finish?.();
      await done;
      assert.equal(Buffer.concat(chunks).toString(), '0123456789');
    } finally {
      mock.timers.reset();
    }
  });

  it('errors the body (never a clean end) when the caller aborts mid-body', async () => {
    const srv = await listen((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('first part'); // and never the rest
    });
    const controller = new AbortController();
    const client = new RegistryClient({ name: 'srv', url: srv.url });
    const blob = await client.getBlob('a', 'sha256:x', { signal: controller.signal });
    let ended = false;
    blob.body.on('end', () => void (ended = true));
    const reason = new Error('caller went away');
    const read = (async () => {
      for await (const chunk of blob.body) {
        assert.equal(String(chunk), 'first part');
        controller.abort(reason);
      }
    })();
    await assert.rejects(read, (err) => err === reason);
    assert.equal(ended, false);
  });

  it('rejects with the caller reason when aborted before headers', async () => {
    const silent = await listen(() => {});
    const controller = new AbortController();
    const arrived = once(silent.server, 'request');
    const pending = sendRequest(silent.url, GET, {
      name: 'silent',
      headersTimeoutMs: 60_000,
      signal: controller.signal,
    });
    await arrived;
    const reason = new Error('shutting down');
    controller.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
  });

  it('reports a refused connection as UPSTREAM_UNAVAILABLE naming ECONNREFUSED', async () => {
    const gone = await listen(() => {});
    await new Promise((r) => gone.server.close(r));
    const client = new RegistryClient({ name: 'gone', url: gone.url, retry: { clientBudgetMs: 0 } });
    await assert.rejects(client.getManifest('a', 'v1', []), (err: unknown) => {
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.code, 'UPSTREAM_UNAVAILABLE');
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });

  it('reuses connections after bodies read, error bodies and challenges', async () => {
    // Larger than undici's read-ahead (64 KiB): a body nobody consumes would hold its connection.
    const big = 'x'.repeat(200 * 1024);
    let challenged = false;
    const srv = await listen((req, res) => {
      if (!challenged) {
        challenged = true;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"', 'content-length': big.length });
        res.end(big);
        return;
      }
      if (req.url?.includes('/tags/')) {
        const error = { errors: [{ code: 'NAME_UNKNOWN', message: 'no such repository' }] };
        const body = JSON.stringify(error) + ' '.repeat(big.length);
        res.writeHead(404, { 'content-type': 'application/json' }).end(body);
        return;
      }
      res.writeHead(200, { 'content-length': big.length, 'docker-content-digest': 'sha256:y' });
      res.end(req.method === 'HEAD' ? undefined : big);
    });
    const client = new RegistryClient({
      name: 'srv',
      url: srv.url,
      credentials: { username: 'u', password: 'p' },
    });
    const rounds = 5;
    for (let i = 0; i < rounds; i++) {
      assert.equal((await client.getManifest('a', 'v1', [])).body.length, big.length);
      await assert.rejects(client.listTags('a', ''), { code: 'NAME_UNKNOWN' });
      const blob = await client.getBlob('a', 'sha256:y');
      for await (const _ of blob.body) void _;
    }
    // undici's pool may open a second connection while the first one reports that it is free.
    assert.ok(srv.connections() <= 2, `${srv.connections()} connections for ${rounds * 3 + 1} requests`);
    // undici closes the connection after every HEAD (as the global fetch did): a HEAD with a
    // Content-Length but no body must still complete, and leave nothing that stalls the next GET.
    for (let i = 0; i < rounds; i++) {
      assert.equal((await client.headManifest('a', 'v1', [])).size, big.length);
      assert.equal((await client.headBlob('a', 'sha256:y')).size, big.length);
    }
    assert.equal((await client.getManifest('a', 'v1', [])).body.length, big.length);
  });

  it('streams a Readable request body', async () => {
    let received = '';
    const srv = await listen((req, res) => {
      req.setEncoding('utf8');
      req.on('data', (d: string) => void (received += d));
      req.on('end', () => res.writeHead(202).end());
    });
    const client = new RegistryClient({ name: 'srv', url: srv.url });
    const parts = Array.from({ length: 50 }, (_, i) => Buffer.from(`part ${i};`));
    const res = await client.request('PATCH', '/v2/a/blobs/uploads/x', 'a', {
      body: Readable.from(parts),
      headers: { 'content-type': 'application/octet-stream' },
    });
    await res.discard();
    assert.equal(res.status, 202);
    assert.equal(received, Buffer.concat(parts).toString());
  });
});
