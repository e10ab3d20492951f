// KubeClient against a scripted HTTP server on port 0: the wire details the real API server
// cannot be made to produce on demand (split chunks, expired continue tokens, a rotated token
// file, a silent server). test/kube-client.test.ts covers the real kube-apiserver.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient } from './client.js';
import { KubeConnectionError, KubeError } from './errors.js';
import type { KubeObject } from './types.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const status = (code: number, reason: string, message: string) =>
  JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    code,
    reason,
    message,
    details: { name: 'x' },
  });

describe('KubeClient (scripted server)', () => {
  let server: Server;
  let url: string;
  let handler: Handler = (_q, res) => res.end('{}');
  const seen: Array<{
    method: string;
    url: string;
    auth: string | undefined;
    type: string | undefined;
    body: string;
  }> = [];
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoist-kube-client-'));
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        seen.push({
          method: req.method ?? '',
          url: req.url ?? '',
          auth: req.headers.authorization,
          type: req.headers['content-type'],
          body,
        });
        handler(req, res, body);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const addr = server.address();
    assert.ok(addr && typeof addr === 'object');
    url = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const json = (res: ServerResponse, code: number, body: string) => {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(body);
  };
  const cm = { group: '', version: 'v1', plural: 'configmaps', namespace: 'ns' };

  it('maps Status answers to KubeError; get 404 is undefined; delete 404 is fine', async () => {
    const client = new KubeClient({ server: url, token: 't0' });
    handler = (req, res) => {
      if (req.method === 'GET') return json(res, 404, status(404, 'NotFound', 'configmaps "x" not found'));
      if (req.method === 'DELETE') return json(res, 404, status(404, 'NotFound', 'gone'));
      if (req.method === 'POST') return json(res, 409, status(409, 'AlreadyExists', 'exists'));
      if (req.method === 'PUT')
        return json(res, 409, status(409, 'Conflict', 'the object has been modified'));
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html>bad gateway</html>');
    };
    assert.equal(await client.get({ ...cm, name: 'x' }), undefined);
    await client.delete(
      { ...cm, name: 'x' },
      { propagationPolicy: 'Foreground', preconditions: { uid: 'u' } },
    );
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Foreground',
      preconditions: { uid: 'u' },
    });
    await assert.rejects(client.create(cm, { metadata: { name: 'x' } }), {
      name: 'KubeError',
      status: 409,
      reason: 'AlreadyExists',
      code: 'ALREADY_EXISTS',
      details: { name: 'x' },
    });
    await assert.rejects(client.replace(cm, { metadata: { name: 'x', resourceVersion: '1' } }), {
      status: 409,
      reason: 'Conflict',
      code: 'CONFLICT',
    });
    assert.equal(seen.at(-1)!.url, '/api/v1/namespaces/ns/configmaps/x');
    await assert.rejects(client.patch({ ...cm, name: 'x' }, {}, 'merge'), (err: unknown) => {
      assert.ok(err instanceof KubeError);
      assert.equal(err.status, 502);
      assert.equal(err.code, 'UNEXPECTED_STATUS');
      assert.match(err.message, /bad gateway/);
      return true;
    });
    assert.equal(seen.at(-1)!.auth, 'Bearer t0');
    client.close();
  });

  it('sends each patch type with its content type; apply carries fieldManager and force', async () => {
    const client = new KubeClient({ server: url });
    handler = (_q, res) => json(res, 200, '{"metadata":{"name":"x"}}');
    const ref = { ...cm, name: 'x', subresource: 'status' };
    await client.patch(ref, { a: 1 }, 'merge');
    await client.patch(ref, [{ op: 'add', path: '/a', value: 1 }], 'json');
    await client.patch(ref, { a: 1 }, 'strategic');
    await client.patch(ref, { a: 1 }, { apply: { fieldManager: 'hoist', force: true } });
    assert.deepEqual(
      seen.slice(-4).map((s) => [s.type, s.url]),
      [
        ['application/merge-patch+json', '/api/v1/namespaces/ns/configmaps/x/status'],
        ['application/json-patch+json', '/api/v1/namespaces/ns/configmaps/x/status'],
        ['application/strategic-merge-patch+json', '/api/v1/namespaces/ns/configmaps/x/status'],
        [
          'application/apply-patch+yaml',
          '/api/v1/namespaces/ns/configmaps/x/status?fieldManager=hoist&force=true',
        ],
      ],
    );
    assert.equal(seen.at(-1)!.auth, undefined);
    client.close();
  });

  it('re-reads a token file when it changes', async () => {
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'first\n');
    const client = new KubeClient({ server: url, token: 'static', tokenFile });
    handler = (_q, res) => json(res, 200, '{}');
    await client.request('GET', '/version');
    await writeFile(tokenFile, 'second-token\n');
    await client.request('GET', '/version');
    assert.deepEqual(
      seen.slice(-2).map((s) => s.auth),
      ['Bearer first', 'Bearer second-token'],
    );
    client.close();
  });

  it('lists all pages, and lists in one piece when a continue token expires', async () => {
    const client = new KubeClient({ server: url });
    let expire = false;
    handler = (req, res) => {
      const q = new URL(req.url ?? '', 'http://x').searchParams;
      const page = (names: string[], cont?: string) =>
        json(
          res,
          200,
          JSON.stringify({
            apiVersion: 'v1',
            kind: 'ConfigMapList',
            metadata: { resourceVersion: '42', ...(cont ? { continue: cont } : {}) },
            items: names.map((name) => ({ metadata: { name } })),
          }),
        );
      if (!q.has('limit')) return page(['a', 'b', 'c']);
      if (q.get('continue') === 'p2') {
        if (expire) return json(res, 410, status(410, 'Expired', 'continue token too old'));
        return page(['c']);
      }
      return page(['a', 'b'], 'p2');
    };
    const all = await client.list(cm, { labelSelector: 'app=x' });
    assert.equal(all.resourceVersion, '42');
    assert.deepEqual(
      all.items.map((i) => [i.kind, i.apiVersion, i.metadata.name]),
      [
        ['ConfigMap', 'v1', 'a'],
        ['ConfigMap', 'v1', 'b'],
        ['ConfigMap', 'v1', 'c'],
      ],
    );
    assert.match(seen.at(-2)!.url, /labelSelector=app%3Dx&limit=500$/);
    expire = true;
    const again = await client.list(cm);
    assert.deepEqual(
      again.items.map((i) => i.metadata.name),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(
      seen.slice(-3).map((s) => s.url),
      [
        '/api/v1/namespaces/ns/configmaps?limit=500',
        '/api/v1/namespaces/ns/configmaps?limit=500&continue=p2',
        '/api/v1/namespaces/ns/configmaps',
      ],
    );
    client.close();
  });

  it('watch: events split anywhere, bookmarks, then ERROR 410 thrown as KubeError Gone', async () => {
    const client = new KubeClient({ server: url });
    const lines =
      '{"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}}\n' +
      '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}\n' +
      '{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","code":410,"reason":"Expired","message":"too old resource version: 1 (9)"}}\n';
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const bytes = Buffer.from(lines);
      // Three writes cutting lines in the middle.
      res.write(bytes.subarray(0, 30));
      setTimeout(() => res.write(bytes.subarray(30, 100)), 5);
      setTimeout(() => res.end(bytes.subarray(100)), 10);
    };
    const got: string[] = [];
    const ac = new AbortController();
    await assert.rejects(
      (async () => {
        for await (const ev of client.watch<KubeObject>(cm, {
          resourceVersion: '1',
          signal: ac.signal,
          timeoutSeconds: 60,
        })) {
          got.push(`${ev.type} ${ev.object.metadata.resourceVersion}`);
        }
      })(),
      (err: unknown) => {
        assert.ok(err instanceof KubeError, String(err));
        assert.equal(err.status, 410);
        assert.equal(err.reason, 'Gone');
        assert.equal(err.code, 'GONE');
        assert.match(err.message, /too old resource version/);
        return true;
      },
    );
    assert.deepEqual(got, ['ADDED 5', 'BOOKMARK 9']);
    assert.equal(
      seen.at(-1)!.url,
      '/api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=1&timeoutSeconds=60',
    );
    client.close();
  });

  it('watches and lists one named object through its collection and a field selector', async () => {
    const client = new KubeClient({ server: url });
    handler = (req, res) =>
      req.url?.includes('watch=true')
        ? json(res, 200, '')
        : json(
            res,
            200,
            '{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"3"},"items":[]}',
          );
    const ac = new AbortController();
    for await (const _ev of client.watch(
      { ...cm, name: 'a,b' },
      { resourceVersion: '0', signal: ac.signal },
    )) {
      assert.fail('no event expected');
    }
    await client.list({ ...cm, name: 'a' }, { fieldSelector: 'status.phase=Running' });
    assert.deepEqual(
      seen.slice(-2).map((s) => s.url),
      [
        '/api/v1/namespaces/ns/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=0&fieldSelector=metadata.name%3Da%5C%2Cb',
        '/api/v1/namespaces/ns/configmaps?fieldSelector=metadata.name%3Da%2Cstatus.phase%3DRunning&limit=500',
      ],
    );
    client.close();
  });

  it('watch: ends quietly when the signal aborts; a request rejects with the abort reason', async () => {
    const client = new KubeClient({ server: url });
    let open: ServerResponse | undefined;
    handler = (_q, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n');
      open = res;
    };
    const ac = new AbortController();
    const names: string[] = [];
    for await (const ev of client.watch<KubeObject>(cm, { resourceVersion: '0', signal: ac.signal })) {
      names.push(ev.object.metadata.name);
      ac.abort();
    }
    assert.deepEqual(names, ['a']);
    open?.end();

    const ac2 = new AbortController();
    handler = () => ac2.abort(new Error('shutting down'));
    await assert.rejects(client.request('GET', '/slow', { signal: ac2.signal }), {
      message: 'shutting down',
    });
    client.close();
  });

  it('times out a silent server with KUBE_TIMEOUT', async () => {
    const client = new KubeClient({ server: url }, { timeoutMs: 50 });
    handler = () => {}; // never answers
    await assert.rejects(client.request('GET', '/silent'), (err: unknown) => {
      assert.ok(err instanceof KubeConnectionError);
      assert.equal(err.code, 'KUBE_TIMEOUT');
      return true;
    });
    client.close();
  });

  it('reports a refused connection as KUBE_UNREACHABLE', async () => {
    const client = new KubeClient({ server: 'http://127.0.0.1:1' });
    await assert.rejects(client.get({ ...cm, name: 'x' }), { code: 'KUBE_UNREACHABLE' });
    client.close();
  });
});
