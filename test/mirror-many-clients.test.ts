// Memory and fairness follow a budget, not the number of connections (issue 10): hundreds of
// clients pull a cached blob from a real `hoist mirror` process at once, while some clients
// requested a large blob and then stopped reading. Every reading client gets the whole body,
// verified; the stuck ones do not hold the others up; the send buffers the mirror leased never
// exceed its budget (its own gauge, not RSS, which is noisy); and once the stuck clients leave,
// every buffer is back.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startHoist } from './helpers/cri.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const REPO = 'load/app';
/** Small enough that 300 clients take little time; larger than one send buffer. */
const SMALL_BYTES = 1 * MiB + 123;
/** Far more than loopback socket buffers absorb, so the stuck clients' writes stay pending. */
const BIG_BYTES = 48 * MiB;
const READERS = 300;
const BIG_READERS = 4;
const STUCK = 20;
/** The budget under test: far less than one 512 KiB buffer per connection. */
const BUDGET_BYTES = 8 * MiB;

/** One sample of the mirror's Prometheus text. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m?.[1]) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

/** A whole GET on a connection of its own: status, length and digest of what arrived. */
function pull(url: string): Promise<{ status: number; complete: boolean; digest: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        bytes += c.byteLength;
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          complete: res.complete,
          digest: `sha256:${hash.digest('hex')}`,
          bytes,
        }),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** A raw connection that sends a GET, waits for the first bytes of the answer, then reads no more. */
async function stuckClient(
  host: string,
  port: number,
  path: string,
): Promise<{ socket: Socket; ended: () => boolean }> {
  const socket = connect(port, host);
  socket.on('error', () => {});
  let ended = false;
  socket.on('end', () => (ended = true));
  socket.on('close', () => (ended = true));
  await once(socket, 'connect');
  socket.write(`GET ${path} HTTP/1.1\r\nhost: ${host}:${port}\r\n\r\n`);
  await once(socket, 'data');
  socket.pause();
  return { socket, ended: () => ended };
}

describe('many clients on a cached blob', () => {
  it(
    'every reader gets its verified body, stuck readers hold nobody up, and buffers stay within the budget',
    { timeout: 300_000 },
    async (t) => {
      if (!requirePeers(t, 'docker-registry')) return;
      const upstream = await startRegistry();
      t.after(() => upstream.stop());
      const small = randomBytes(SMALL_BYTES);
      const big = randomBytes(BIG_BYTES);
      const smallDigest = await pushBlob(upstream, REPO, small);
      const bigDigest = await pushBlob(upstream, REPO, big);

      const dir = await testTempDir(t, 'hoist-many-');
      const config = join(dir, 'mirror.yaml');
      await writeFile(
        config,
        [
          `sendBufferBytes: ${BUDGET_BYTES}`,
          // Long: the stuck clients must still be stuck when the readers are done.
          'sendStallTimeoutSeconds: 3600',
          'logLevel: warn',
          '',
        ].join('\n'),
      );
      const upstreamName = new URL(upstream.url).host;
      const mirror = startHoist([
        'mirror',
        '--listen',
        '127.0.0.1:0',
        '--storage',
        join(dir, 'store'),
        '--upstream',
        `${upstreamName}=${upstream.url}`,
        '--config',
        config,
      ]);
      t.after(() => mirror.stop());
      const url = await mirror.url;
      const { hostname, port } = new URL(url);
      const smallUrl = `${url}/v2/${REPO}/blobs/${smallDigest}`;
      const bigPath = `/v2/${REPO}/blobs/${bigDigest}`;

      // Cached first: this is about serving the store.
      assert.equal((await pull(smallUrl)).digest, smallDigest);
      assert.equal((await pull(`${url}${bigPath}`)).digest, bigDigest);
      assert.equal(await metric(url, 'hoist_mirror_send_buffer_budget_bytes'), BUDGET_BYTES);

      const stuck = await Promise.all(
        Array.from({ length: STUCK }, () => stuckClient(hostname, Number(port), bigPath)),
      );

      const results = await Promise.all([
        ...Array.from({ length: READERS }, () => pull(smallUrl)),
        ...Array.from({ length: BIG_READERS }, () => pull(`${url}${bigPath}`)),
      ]);
      for (const [i, r] of results.entries()) {
        const want =
          i < READERS ? { digest: smallDigest, bytes: SMALL_BYTES } : { digest: bigDigest, bytes: BIG_BYTES };
        assert.deepEqual(r, { status: 200, complete: true, ...want }, `client ${i}`);
      }

      // Their connections arrived at once: sending paused while they waited to be accepted.
      assert.ok((await metric(url, 'hoist_mirror_accept_hold_seconds_total')) > 0, 'accept holds counted');

      // The readers finished while every stuck client was still connected and still holding a
      // buffer with a write its socket did not take.
      assert.equal(stuck.filter((s) => s.ended()).length, 0);
      const held = await metric(url, 'hoist_mirror_send_buffer_bytes');
      assert.ok(held > 0, 'the stuck clients hold buffers');
      const peak = await metric(url, 'hoist_mirror_send_buffer_peak_bytes');
      t.diagnostic(`held by stuck clients ${held} bytes, peak leased ${peak} bytes`);
      assert.ok(peak > 0 && peak <= BUDGET_BYTES, `peak leased ${peak} bytes, budget ${BUDGET_BYTES}`);

      // Once the stuck clients leave, every buffer comes back (polled: another process's gauge).
      for (const s of stuck) s.socket.destroy();
      let leased = held;
      for (let i = 0; i < 200 && leased > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        leased = await metric(url, 'hoist_mirror_send_buffer_bytes');
      }
      assert.equal(leased, 0);
      assert.equal(await metric(url, 'hoist_mirror_send_waiting'), 0);
      assert.equal((await pull(smallUrl)).digest, smallDigest);
    },
  );
});
