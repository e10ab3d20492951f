import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { AcceptGate } from './accept-gate.js';

/** Records holds against the number of connections accepted when each began and ended. */
class Recorder {
  accepted = 0;
  readonly holds: Array<{ from: number; to?: number }> = [];
  readonly ended: Array<{ capped: boolean }> = [];
  hold(): () => void {
    const h: { from: number; to?: number } = { from: this.accepted };
    this.holds.push(h);
    return () => {
      h.to = this.accepted;
    };
  }
}

async function listening(server: Server): Promise<number> {
  server.listen({ port: 0, host: '127.0.0.1', backlog: 1024 });
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Opens n connections at once: every handshake completes before the server accepts the first. */
async function burst(port: number, n: number): Promise<Socket[]> {
  const sockets = Array.from({ length: n }, () => connect({ port, host: '127.0.0.1' }));
  await Promise.all(sockets.map((s) => once(s, 'connect')));
  return sockets;
}

describe('AcceptGate', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setUp(options: ConstructorParameters<typeof AcceptGate>[2] = {}) {
    const rec = new Recorder();
    const server = createServer();
    // Counted before the gate's own listener runs: a hold starting on a connection sees it.
    server.on('connection', () => {
      rec.accepted += 1;
    });
    const gate = new AcceptGate(server, rec, {
      ...options,
      onHold: (ms, capped) => rec.ended.push({ capped }),
    });
    const sockets: Socket[] = [];
    server.on('connection', (s: Socket) => sockets.push(s));
    const port = await listening(server);
    cleanups.push(async () => {
      gate.close();
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    });
    return { rec, server, port, gate };
  }

  it('holds sending from the first accept of a burst until every waiting connection is accepted', async (t) => {
    const { rec, port } = await setUp({ maxHoldMs: 60_000 });
    const clients = await burst(port, 200);
    t.after(() => clients.forEach((c) => c.destroy()));
    while (rec.accepted < 200 || rec.ended.length === 0) await new Promise((r) => setImmediate(r));
    // libuv accepts one connection per loop turn: a hold that ended early would show up as many
    // holds, or one that ended before the 200th accept.
    assert.equal(rec.holds.length, 1, `one hold for the burst, got ${JSON.stringify(rec.holds)}`);
    assert.deepEqual(rec.holds[0], { from: 1, to: 200 });
    assert.deepEqual(rec.ended, [{ capped: false }]);
  });

  it('a lone connection holds for one turn and releases', async (t) => {
    const { rec, port } = await setUp();
    const [c] = await burst(port, 1);
    t.after(() => c?.destroy());
    while (rec.ended.length === 0) await new Promise((r) => setImmediate(r));
    assert.deepEqual(rec.holds, [{ from: 1, to: 1 }]);
  });

  it('cuts a hold at maxHoldMs, then sends for minServeMs before holding again', async (t) => {
    const { rec, port } = await setUp({ maxHoldMs: 0, minServeMs: 60_000 });
    const clients = await burst(port, 50);
    t.after(() => clients.forEach((c) => c.destroy()));
    while (rec.accepted < 50) await new Promise((r) => setImmediate(r));
    // The first hold was capped at its first check; the serving window then kept every later
    // accept of the burst from starting another.
    assert.equal(rec.holds.length, 1);
    assert.deepEqual(rec.ended, [{ capped: true }]);
    assert.ok((rec.holds[0]?.to ?? 0) < 50, 'the capped hold ended before the burst was accepted');
  });

  it('after any hold, sends for minServeMs before holding again', async (t) => {
    const { rec, port } = await setUp({ minServeMs: 60_000 });
    const [first] = await burst(port, 1);
    t.after(() => first?.destroy());
    while (rec.ended.length === 0) await new Promise((r) => setImmediate(r));
    const [second] = await burst(port, 1);
    t.after(() => second?.destroy());
    while (rec.accepted < 2) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rec.holds, [{ from: 1, to: 1 }], 'no second hold inside the serving window');
  });

  it('releases its hold on close', async () => {
    const { rec, port, gate } = await setUp({ maxHoldMs: 60_000 });
    const c = connect({ port, host: '127.0.0.1' });
    await once(c, 'connect');
    while (rec.accepted < 1) await new Promise((r) => setImmediate(r));
    gate.close();
    assert.equal(rec.holds.length, 1);
    assert.notEqual(rec.holds[0]?.to, undefined, 'released');
    c.destroy();
  });
});
