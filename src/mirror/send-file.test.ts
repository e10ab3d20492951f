import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { SendBudget } from './send-budget.js';
import { sendRange, type ReadAt } from './send-file.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SOURCE = randomBytes(4 * MiB);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Serves SOURCE repeated to `bytes`; `fail` makes the read at that offset throw. */
function reader(fail?: number): ReadAt {
  return async (buf, pos, max) => {
    if (fail !== undefined && pos + max > fail) throw new Error('disk read failed');
    let n = 0;
    while (n < max)
      n += SOURCE.copy(
        buf,
        n,
        (pos + n) % SOURCE.byteLength,
        Math.min(SOURCE.byteLength, ((pos + n) % SOURCE.byteLength) + max - n),
      );
    return n;
  };
}

function expected(bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  for (let n = 0; n < bytes; n += SOURCE.byteLength)
    SOURCE.copy(out, n, 0, Math.min(SOURCE.byteLength, bytes - n));
  return out;
}

interface Harness {
  url: string;
  budget: SendBudget;
  /** Settles with each response's outcome: 'ok' or the error's name. */
  outcomes: Array<Promise<string>>;
  stalls: number;
  server: Server;
}

async function harness(opts: {
  totalBytes: number;
  bytes: number;
  stallTimeoutMs?: number;
  fail?: number;
}): Promise<Harness> {
  const budget = new SendBudget({
    totalBytes: opts.totalBytes,
    minChunkBytes: 32 * KiB,
    maxChunkBytes: 512 * KiB,
  });
  const h: Harness = { url: '', budget, outcomes: [], stalls: 0, server: undefined as unknown as Server };
  h.server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(200, { 'content-length': opts.bytes });
    h.outcomes.push(
      sendRange(reader(opts.fail), res, 0, opts.bytes - 1, {
        budget,
        stallTimeoutMs: opts.stallTimeoutMs ?? 60_000,
        onBytes: () => {},
        onStalled: () => (h.stalls += 1),
      }).then(
        () => 'ok',
        (err: Error) => {
          res.destroy();
          return err.name;
        },
      ),
    );
  });
  h.server.listen(0, '127.0.0.1');
  await once(h.server, 'listening');
  h.url = `http://127.0.0.1:${(h.server.address() as AddressInfo).port}/`;
  after(() => {
    h.server.closeAllConnections();
    h.server.close();
  });
  return h;
}

function fetchAll(url: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Waits until `n` responses have started on the server. */
async function started(h: Harness, n: number): Promise<void> {
  while (h.outcomes.length < n) await once(h.server, 'request');
}

describe('sendRange with a send budget', () => {
  it('serves many concurrent responses completely from a budget smaller than one buffer each', async () => {
    const bytes = 3 * MiB + 12345;
    const h = await harness({ totalBytes: 128 * KiB, bytes });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, h.budget.stats().leasedBytes)), 1);
    const bodies = await Promise.all(Array.from({ length: 24 }, () => fetchAll(h.url)));
    clearInterval(sampler);
    const want = sha(expected(bytes));
    for (const b of bodies) assert.equal(sha(b), want);
    assert.deepEqual(await Promise.all(h.outcomes), Array(24).fill('ok'));
    const s = h.budget.stats();
    assert.ok(s.peakLeasedBytes <= 128 * KiB, `peak ${s.peakLeasedBytes}`);
    assert.ok(peak <= 128 * KiB);
    assert.equal(s.leasedBytes, 0);
    assert.equal(s.senders, 0);
    assert.equal(s.waiting, 0);
  });

  it('a client that stops reading holds a bounded part of the budget, and others go on', async () => {
    // Far more than socket buffers hold, so the non-reading client's writes stay pending.
    const bytes = 64 * MiB;
    const h = await harness({ totalBytes: 4 * MiB, bytes });
    const stuck = connect((h.server.address() as AddressInfo).port, '127.0.0.1');
    stuck.on('error', () => {});
    stuck.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    stuck.pause();
    await started(h, 1);
    const body = await fetchAll(h.url);
    assert.equal(body.byteLength, bytes);
    assert.equal(sha(body), sha(expected(bytes)));
    assert.equal(await h.outcomes[1], 'ok');
    // The stuck response is still on, holding at most one of the largest leases.
    const stuckOutcome = h.outcomes[0] as Promise<string>;
    assert.equal(await Promise.race([stuckOutcome, Promise.resolve('pending')]), 'pending');
    const held = h.budget.stats().leasedBytes;
    assert.ok(held > 0 && held <= 512 * KiB, `stuck client holds ${held}`);
    stuck.destroy();
    assert.equal(await stuckOutcome, 'ResponseClosedError');
    assert.equal(h.budget.stats().leasedBytes, 0);
  });

  it('a client that reads nothing for the stall timeout is cut off and its buffers return', async () => {
    const bytes = 64 * MiB;
    const h = await harness({ totalBytes: 128 * KiB, bytes, stallTimeoutMs: 200 });
    const stuck = connect((h.server.address() as AddressInfo).port, '127.0.0.1');
    stuck.on('error', () => {});
    stuck.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    stuck.pause();
    await started(h, 1);
    assert.equal(await h.outcomes[0], 'SendStalledError');
    assert.equal(h.stalls, 1);
    assert.equal(h.budget.stats().leasedBytes, 0);
    stuck.destroy();
  });

  it('a client that leaves mid-body releases its buffers', async () => {
    const bytes = 64 * MiB;
    const h = await harness({ totalBytes: 128 * KiB, bytes });
    await new Promise<void>((resolve, reject) => {
      get(h.url, { agent: false }, (res) => {
        res.once('data', () => {
          res.destroy();
          resolve();
        });
      }).on('error', (err) => (err.message.includes('aborted') ? resolve() : reject(err)));
    });
    await started(h, 1);
    assert.equal(await h.outcomes[0], 'ResponseClosedError');
    assert.equal(h.budget.stats().leasedBytes, 0);
    assert.equal(h.budget.stats().senders, 0);
  });

  it('a read error releases the buffers and aborts the body', async () => {
    const bytes = 8 * MiB;
    const h = await harness({ totalBytes: 128 * KiB, bytes, fail: 2 * MiB });
    const body = fetchAll(h.url).then(
      (b) => b.byteLength,
      () => -1,
    );
    await started(h, 1);
    assert.equal(await h.outcomes[0], 'Error');
    assert.notEqual(await body, bytes);
    assert.equal(h.budget.stats().leasedBytes, 0);
    assert.equal(h.budget.stats().senders, 0);
  });

  it('a response waiting for data (a slow download) holds no buffer, so others are served', async () => {
    // Room for one lease only: if the waiting response held it, the other could never send.
    const budget = new SendBudget({ totalBytes: 32 * KiB, minChunkBytes: 32 * KiB, maxChunkBytes: 32 * KiB });
    let arrive: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (arrive = resolve));
    let waiting: () => void = () => {};
    const isWaiting = new Promise<void>((resolve) => (waiting = resolve));
    const outcomes: Array<Promise<string>> = [];
    const server = createServer((req, res) => {
      const slow = req.url === '/slow';
      const bytes = 256 * KiB;
      res.writeHead(200, { 'content-length': bytes });
      outcomes.push(
        sendRange(reader(), res, 0, bytes - 1, {
          budget,
          stallTimeoutMs: 60_000,
          onBytes: () => {},
          ...(slow
            ? {
                waitReadable: async (pos: number) => {
                  if (pos > 0) return;
                  waiting();
                  await arrived;
                },
              }
            : {}),
        }).then(
          () => 'ok',
          (err: Error) => err.name,
        ),
      );
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    after(() => {
      server.closeAllConnections();
      server.close();
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const slowBody = fetchAll(`${base}/slow`);
    await isWaiting;
    assert.equal(budget.stats().leasedBytes, 0);
    const fast = await fetchAll(`${base}/fast`);
    assert.equal(sha(fast), sha(expected(256 * KiB)));
    arrive();
    assert.equal(sha(await slowBody), sha(expected(256 * KiB)));
    assert.deepEqual(await Promise.all(outcomes), ['ok', 'ok']);
    assert.equal(budget.stats().leasedBytes, 0);
  });
});
