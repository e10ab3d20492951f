import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { EventHub } from './events.js';

/** The parts of a response the hub uses, recording what it wrote. */
class FakeResponse extends EventEmitter {
  status = 0;
  chunks: string[] = [];
  ended = false;
  destroyed = false;
  writableLength = 0;
  writeHead(status: number) {
    this.status = status;
    return this;
  }
  write(chunk: string) {
    this.chunks.push(chunk);
    return true;
  }
  end(chunk?: string) {
    if (chunk) this.chunks.push(chunk);
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
  events() {
    return this.chunks.filter((c) => c.startsWith('event: state'));
  }
}

function open(hub: EventHub, render: () => string) {
  const req = new EventEmitter() as unknown as IncomingMessage;
  const res = new FakeResponse();
  hub.open(req, res as unknown as ServerResponse, () => {
    const json = render();
    return { json, key: json };
  });
  return { req, res };
}

describe('dashboard SSE hub', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('sends the state at once, then changes at most once per throttle window', () => {
    const hub = new EventHub({
      throttleMs: 500,
      heartbeatMs: 15_000,
      maxStreams: 4,
      maxBufferedBytes: 1 << 20,
    });
    let version = 0;
    const { res } = open(hub, () => `{"v":${version}}`);
    assert.deepEqual(res.events(), ['event: state\ndata: {"v":0}\n\n']);
    hub.poke(); // nothing changed: nothing sent
    mock.timers.tick(500);
    assert.equal(res.events().length, 1);
    for (let i = 0; i < 10; i++) {
      version++;
      hub.poke();
    }
    mock.timers.tick(499);
    assert.equal(res.events().length, 1, 'within the window of the last send: nothing yet');
    mock.timers.tick(1);
    assert.equal(res.events().length, 2, 'ten changes in a burst: one event');
    assert.match(res.events()[1]!, /"v":10/);
    version++;
    hub.poke();
    mock.timers.tick(499);
    assert.equal(res.events().length, 2, 'not before the window ends');
    mock.timers.tick(1);
    assert.equal(res.events().length, 3);
    hub.close();
    assert.equal(res.ended, true);
  });

  it('sends heartbeats, caps the number of streams, and drops a client that does not read', () => {
    const hub = new EventHub({ throttleMs: 500, heartbeatMs: 15_000, maxStreams: 2, maxBufferedBytes: 100 });
    const a = open(hub, () => '{}');
    const b = open(hub, () => '{}');
    const c = open(hub, () => '{}');
    assert.equal(c.res.status, 503);
    assert.equal(hub.size, 2);
    mock.timers.tick(15_000);
    assert.ok(a.res.chunks.includes(': heartbeat\n\n'));
    b.res.writableLength = 101;
    mock.timers.tick(15_000);
    assert.equal(b.res.destroyed, true);
    assert.equal(hub.size, 1);
    a.req.emit('close');
    assert.equal(hub.size, 0);
    hub.close();
  });
});
