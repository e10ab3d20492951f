// Ranges on cold blobs with bad bytes, against Debian's docker-registry behind the fault proxy
// (test/helpers/fault-proxy.ts): a range that reaches the blob's last byte never ends cleanly
// before the whole blob is verified, whichever path answers it (the download in progress, or a
// ranged upstream read far ahead of it, or any open-ended range when the upstream sends no size);
// a range ending before the last byte may be answered unverified; nothing corrupt is stored.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from './helpers/fault-proxy.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
/** Far ahead of the download: with rangeAheadBytes 4 MiB, fetched upstream on its own. */
const FAR = 12 * MiB + 7;

interface Setup {
  mirror: MirrorHandle;
  proxy: FaultProxy;
  data: Buffer;
  digest: string;
  blobUrl: string;
}

/**
 * A registry holding one random blob, the fault proxy in front of it, and a mirror in front of
 * that. `unsized`: between mirror and proxy, a front that hides the blob's size (no Content-Length
 * on whole-blob answers, `/*` as the total of ranged ones).
 */
async function setup(
  t: TestContext,
  faults: FaultProxyOptions = {},
  opts: { unsized?: boolean; size?: number } = {},
): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const data = randomBytes(opts.size ?? SIZE);
  const digest = await pushBlob(registry, 'big/blob', data);
  const proxy = await startFaultProxy(registry.url, faults);
  t.after(() => proxy.close());
  const upstream = opts.unsized ? await startUnsizedFront(t, proxy.url) : proxy.url;
  const mirror = await startMirror({ 'upstream.test': upstream }, { file: { rangeAheadBytes: 4 * MiB } });
  t.after(() => mirror.close());
  return {
    mirror,
    proxy,
    data,
    digest,
    blobUrl: `${mirror.url}/v2/big/blob/blobs/${digest}?ns=upstream.test`,
  };
}

async function startUnsizedFront(t: TestContext, target: string): Promise<string> {
  const to = new URL(target);
  const server = createServer((req, res) => {
    const forward = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: to.host },
      },
      (up) => {
        const headers = { ...up.headers };
        if (/\/blobs\/sha/.test(req.url ?? '')) {
          if (up.statusCode === 200) delete headers['content-length'];
          if (typeof headers['content-range'] === 'string')
            headers['content-range'] = headers['content-range'].replace(/\/\d+$/, '/*');
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
        up.on('error', () => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * 'ended' with the body, or 'aborted' when the connection broke before a clean end: after the
 * headers, or before them (status 0) when the download had already failed its check by the time
 * the answer would start.
 */
async function get(
  url: string,
  range: string,
): Promise<{ status: number; outcome: 'ended' | 'aborted'; body?: Buffer }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { range } });
  } catch {
    return { status: 0, outcome: 'aborted' };
  }
  try {
    return { status: res.status, outcome: 'ended', body: Buffer.from(await res.arrayBuffer()) };
  } catch {
    return { status: res.status, outcome: 'aborted' };
  }
}

async function assertNothingStored(s: Setup): Promise<void> {
  await s.mirror.mirror.close(1000).catch(() => {});
  assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), []);
  assert.deepEqual(await readdir(join(s.mirror.storage, 'tmp')), []);
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

describe('a range reaching the end of a corrupt blob never ends cleanly', () => {
  for (const range of [
    `bytes=${FAR}-`,
    `bytes=${FAR}-${SIZE - 1}`,
    'bytes=-51',
    `bytes=${FAR}-${SIZE + 99}`,
  ]) {
    it(`aborts ${range} far ahead of the download`, TIMEOUT, async (t) => {
      // Whole-blob GETs are corrupted; the ranged upstream read itself is clean.
      const s = await setup(t, { corruptBlobByteAt: 2 * MiB });
      if (!s) return;
      const r = await get(s.blobUrl, range);
      assert.equal(r.status, 206);
      assert.equal(r.outcome, 'aborted');
      assert.ok(
        s.proxy.blobGets.some((g) => g.range !== ''),
        'answered by a ranged upstream read, not from the download',
      );
      assert.equal(await s.mirror.metric('hoist_mirror_verify_failures_total'), 1);
      await assertNothingStored(s);
    });
  }

  it('aborts a range at the end served from the download', TIMEOUT, async (t) => {
    const s = await setup(t, { corruptBlobByteAt: 1 * MiB }, { size: 3 * MiB });
    if (!s) return;
    const r = await get(s.blobUrl, 'bytes=-51');
    // Either the answer had started and breaks, or the download had already failed its check
    // when the answer would start, and the client gets an error status: never a clean 206.
    assert.ok(
      r.outcome === 'aborted' || (r.status >= 500 && r.status <= 599),
      `status ${r.status}, ${r.outcome}: ${r.body?.toString('utf8').slice(0, 200)}`,
    );
    assert.ok(
      s.proxy.blobGets.every((g) => g.range === ''),
      'served from the download',
    );
    await assertNothingStored(s);
  });

  it('aborts an open-ended range when the upstream sends no size', TIMEOUT, async (t) => {
    const s = await setup(t, { corruptBlobByteAt: 2 * MiB }, { unsized: true });
    if (!s) return;
    const r = await get(s.blobUrl, `bytes=${FAR}-`);
    assert.equal(r.status, 206);
    assert.equal(r.outcome, 'aborted');
    await assertNothingStored(s);
  });

  it('aborts when the ranged upstream read lies although the blob verifies', TIMEOUT, async (t) => {
    const s = await setup(t, { holdBlobAfterBytes: 1 * MiB });
    if (!s) return;
    // Start the download (held at 1 MiB), then corrupt the next blob GET: the ranged read.
    const near = await get(s.blobUrl, 'bytes=0-99');
    assert.deepEqual(near.body, s.data.subarray(0, 100));
    await s.proxy.held();
    s.proxy.inject('blob', { kind: 'corrupt', at: 10 });
    const pending = get(s.blobUrl, `bytes=${FAR}-`);
    s.proxy.release();
    const r = await pending;
    assert.equal(r.outcome, 'aborted');
    assert.ok(s.proxy.requests.some((q) => q.fault === 'corrupt' && q.range !== ''));
    // The verified download is stored, and serves the true bytes.
    const again = await get(s.blobUrl, `bytes=${FAR}-`);
    assert.deepEqual(again.body, s.data.subarray(FAR));
  });
});

describe('a range ending before the end may be served unverified', () => {
  it('serves ranges of a corrupt blob that end before its last byte', TIMEOUT, async (t) => {
    const s = await setup(t, { corruptBlobByteAt: 3 * MiB });
    if (!s) return;
    // Far ahead (a clean ranged upstream read) and near the start (from the corrupt download,
    // before the corrupt byte).
    const far = await get(s.blobUrl, `bytes=${FAR}-${13 * MiB}`);
    assert.equal(far.status, 206);
    assert.deepEqual(far.body, s.data.subarray(FAR, 13 * MiB + 1));
    const near = await get(s.blobUrl, 'bytes=1000-1999');
    assert.deepEqual(near.body, s.data.subarray(1000, 2000));
    await assertNothingStored(s);
  });

  it('serves a bounded range when the upstream sends no size', TIMEOUT, async (t) => {
    const s = await setup(t, { corruptBlobByteAt: 2 * MiB }, { unsized: true });
    if (!s) return;
    const r = await get(s.blobUrl, `bytes=${FAR}-${13 * MiB}`);
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, s.data.subarray(FAR, 13 * MiB + 1));
    await assertNothingStored(s);
  });
});

describe('good blobs', () => {
  it('holds the last byte of a far range until the download is verified', TIMEOUT, async (t) => {
    const s = await setup(t, { holdBlobAfterBytes: 1 * MiB });
    if (!s) return;
    const res = await fetch(s.blobUrl, { headers: { range: `bytes=${FAR}-` } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes ${FAR}-${SIZE - 1}/${SIZE}`);
    const want = SIZE - FAR;
    const reader = res.body!.getReader();
    const chunks: Buffer[] = [];
    let got = 0;
    // Everything but the last byte arrives while the whole-blob download is held at 1 MiB.
    while (got < want - 1) {
      const { done, value } = await reader.read();
      assert.ok(!done, 'the body ended early');
      chunks.push(Buffer.from(value));
      got += value.byteLength;
    }
    assert.equal(got, want - 1, 'the last byte waits for verification');
    await s.proxy.held();
    assert.equal(await s.mirror.metric('hoist_mirror_inflight_fetches'), 1);
    s.proxy.release();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
    }
    assert.deepEqual(Buffer.concat(chunks), s.data.subarray(FAR));
  });

  for (const [range, from] of [
    ['bytes=-51', SIZE - 51],
    [`bytes=${FAR}-${SIZE - 1}`, FAR],
    [`bytes=${SIZE - 10}-${SIZE + 99}`, SIZE - 10],
  ] as const) {
    it(`answers ${range} on a cold blob and stores the blob`, TIMEOUT, async (t) => {
      const s = await setup(t);
      if (!s) return;
      const r = await get(s.blobUrl, range);
      assert.equal(r.status, 206);
      assert.deepEqual(r.body, s.data.subarray(from));
      const whole = await get(s.blobUrl, 'bytes=0-');
      assert.equal(sha256(whole.body!), s.digest);
      // The whole-blob answer ends only after the commit: the blob is stored.
      assert.deepEqual(await readdir(join(s.mirror.storage, 'blobs', 'sha256')), [s.digest.slice(7)]);
    });
  }

  it('answers an open-ended range when the upstream sends no size', TIMEOUT, async (t) => {
    const s = await setup(t, {}, { unsized: true });
    if (!s) return;
    const r = await get(s.blobUrl, `bytes=${FAR}-`);
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, s.data.subarray(FAR));
  });
});
