// Graceful shutdown: the mirror stops accepting and reports not ready, lets running downloads
// finish within the grace period, aborts what is left after it (clients see aborted connections,
// never clean short bodies), and leaves the store consistent: no temp file, nothing partial.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
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

describe('graceful shutdown', () => {
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
