import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { PeerClient, type PeerClientOptions } from './peer-client.js';

/** A client of the tests' cluster token; `overrides` set its timeouts. */
function testClient(overrides: Partial<PeerClientOptions> = {}): PeerClient {
  return new PeerClient({
    self: 'http://127.0.0.1:1',
    token: 'peer-token-for-tests-0123456789',
    connectTimeoutMs: 5_000,
    patientConnectTimeoutMs: 5_000,
    headersTimeoutMs: 30_000,
    ...overrides,
  });
}

/** Holds this process's only thread, as a loaded machine (or a long GC) can. */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

test('a connection that completed while this process could not run is not judged a connect timeout', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN' }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const peer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = testClient({ connectTimeoutMs: 50, patientConnectTimeoutMs: 50 });
  t.after(() => client.close());
  const answer = client.getBlob({
    peer,
    digest: `sha256:${'a'.repeat(64)}`,
    upstream: 'reg',
    repo: 'team/app',
  });
  // The connect is under way (issued on this turn's next tick); the kernel completes it while
  // this process is held for six connect timeouts, from the end of the turn (a setImmediate).
  await new Promise<void>((r) =>
    setImmediate(() => {
      hold(300);
      r();
    }),
  );
  const got = await answer;
  assert.equal(got.kind, 'miss', 'the peer answered (404)');
});

test("an idle kept-alive connection is closed by this side before the peer's keep-alive ends", async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN' }] }));
  });
  // Announced as `Keep-Alive: timeout=2`; the server times the socket out 2 s after the answer.
  server.keepAliveTimeout = 2_000;
  const closedBy = new Promise<'client' | 'server'>((resolve) => {
    server.on('connection', (socket) => {
      socket.once('timeout', () => resolve('server'));
      socket.once('end', () => resolve('client'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const peer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = testClient();
  t.after(() => client.close());
  const got = await client.getBlob({
    peer,
    digest: `sha256:${'a'.repeat(64)}`,
    upstream: 'reg',
    repo: 'team/app',
  });
  assert.equal(got.kind, 'miss');
  // Closed by this side (FIN seen by the server) rather than left to the server's timeout, where a
  // request sent at that moment would be reset.
  assert.equal(await closedBy, 'client');
});
