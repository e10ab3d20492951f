// Graceful shutdown: the mirror stops accepting and reports not ready, lets running downloads
// finish within the grace period, aborts what is left after it (clients see aborted connections,
// never clean short bodies), and leaves the store consistent: no temp file, nothing partial.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy } from './helpers/fault-proxy.js';
import { startMirror } from './helpers/mirror.js';
import { removeTempDir, requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 60_000 };
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function setup(t: TestContext) {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const data = randomBytes(4 * MiB);
  const digest = await pushBlob(registry, 'sd/blob', data);
  const proxy = await startFaultProxy(registry.url, { holdBlobAfterBytes: MiB });
  t.after(() => proxy.close());
  const mirror = await startMirror({ 'up.test': proxy.url });
  // The tests close the mirror themselves; its storage goes afterwards.
  t.after(() => removeTempDir(mirror.storage));
  const url = `${mirror.url}/v2/sd/blob/blobs/${digest}?ns=up.test`;
  // A client is mid-blob: the upstream body is held after 1 MiB.
  const res = await fetch(url);
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  await proxy.held();
  const rest = (async () => {
    const chunks = [Buffer.from(first.value)];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return Buffer.concat(chunks);
      chunks.push(Buffer.from(value));
    }
  })();
  rest.catch(() => {});
  return { mirror, proxy, data, digest, url, rest };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** A whole chunked body at the start of `buf`, or undefined while it is incomplete. */
function dechunk(buf: Buffer): { data: Buffer; consumed: number } | undefined {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) return undefined;
    const size = parseInt(buf.subarray(at, eol).toString('latin1'), 16);
    if (buf.byteLength < eol + 2 + size + 2) return undefined;
    if (size === 0) return { data: Buffer.concat(parts), consumed: eol + 4 };
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/**
 * One keep-alive connection with pipelined requests: `next()` resolves each response in order
 * (by Content-Length, or chunked).
 */
function pipelined(port: number, requests: string[]) {
  const socket = connect({ host: '127.0.0.1', port });
  const send = (paths: string[]) =>
    socket.write(paths.map((r) => `GET ${r} HTTP/1.1\r\nHost: mirror\r\n\r\n`).join(''));
  send(requests);
  let buf = Buffer.alloc(0);
  let ended = false;
  let wake: () => void = () => {};
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake();
  });
  socket.on('close', () => {
    ended = true;
    wake();
  });
  socket.on('error', () => {});
  const more = () => new Promise<void>((r) => (wake = r));
  return {
    async next(): Promise<RawResponse | undefined> {
      for (;;) {
        const headEnd = buf.indexOf('\r\n\r\n');
        if (headEnd >= 0) {
          const [statusLine = '', ...lines] = buf.subarray(0, headEnd).toString('latin1').split('\r\n');
          const headers = Object.fromEntries(
            lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
          );
          const start = headEnd + 4;
          if (headers['transfer-encoding'] === 'chunked') {
            const body = dechunk(buf.subarray(start));
            if (body) {
              buf = buf.subarray(start + body.consumed);
              return { status: Number(statusLine.split(' ')[1]), headers, body: body.data };
            }
          } else {
            const length = Number(headers['content-length']);
            if (buf.byteLength >= start + length) {
              const body = buf.subarray(start, start + length);
              buf = buf.subarray(start + length);
              return { status: Number(statusLine.split(' ')[1]), headers, body };
            }
          }
        }
        if (ended) return undefined;
        await more();
      }
    },
    /** Sends more requests on the same connection. */
    send,
    close: () => socket.destroy(),
  };
}

describe('graceful shutdown', () => {
  it('reports not ready while open requests drain', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    const port = Number(new URL(s.mirror.url).port);
    const path = new URL(s.url).pathname + new URL(s.url).search;
    // One keep-alive connection, busy with a blob (joining the held download) when shutdown starts.
    const conn = pipelined(port, ['/readyz', path]);
    t.after(() => conn.close());
    const before = await conn.next();
    assert.equal(before?.status, 200, 'ready before shutdown');
    const closing = s.mirror.mirror.close(30_000);
    // New connections are refused at once; a probe on the open connection is answered 503 once the
    // blob ahead of it is done.
    await assert.rejects(fetch(`${s.mirror.url}/readyz`));
    conn.send(['/readyz']);
    s.proxy.release();
    // ...and the requests still open drain: the blob completes, then the probe says not ready.
    const blob = await conn.next();
    assert.equal(blob?.status, 200);
    assert.equal(sha256(blob.body), s.digest);
    assert.equal(sha256(await s.rest), s.digest);
    const during = await conn.next();
    assert.equal(during?.status, 503, 'not ready during shutdown');
    assert.equal(
      (JSON.parse(during.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'UNAVAILABLE',
    );
    // The mirror closes idle connections only as shutdown starts; one that turns idle later is
    // left to the client (or to its keep-alive timeout), so this client hangs up.
    conn.close();
    await closing;
  });

  it('lets a download that finishes within the grace period complete and store', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    const closing = s.mirror.mirror.close(30_000);
    // New connections are refused at once while the running one goes on.
    await assert.rejects(fetch(`${s.mirror.url}/healthz`));
    s.proxy.release();
    assert.equal(sha256(await s.rest), s.digest);
    await closing;
    assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), [s.digest.slice(7)]);
    assert.deepEqual(await readdir(join(s.mirror.storage, 'tmp')), []);
  });

  it('aborts what is still running after the grace period and leaves nothing partial', TIMEOUT, async (t) => {
    const s = await setup(t);
    if (!s) return;
    await s.mirror.mirror.close(200);
    await assert.rejects(s.rest, 'the client sees an aborted connection, not a clean short body');
    assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), []);
    assert.deepEqual(await readdir(join(s.mirror.storage, 'tmp')), []);
  });
});
