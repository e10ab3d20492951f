import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { IncomingRates } from './incoming-rates.js';
import { tapUpstream } from './upstream-tap.js';

const PEER = 'http://10.0.0.2:5000';

test("an upstream body counts among this node's incoming bodies while it runs, and passes its bytes on unchanged", async () => {
  let t = 0;
  const rates = new IncomingRates(400);
  const peer = rates.track(PEER, t);
  const upstream = new PassThrough();
  const out = tapUpstream(upstream, rates, () => t);
  assert.equal(rates.contended(peer, 1000, t), true, 'the upstream body is running, not yet measured');
  const received: Buffer[] = [];
  out.on('data', (c: Buffer) => received.push(c));
  for (; t <= 600; t += 50) upstream.write(Buffer.alloc(10, t % 256));
  assert.equal(
    rates.contended(peer, 1000, t),
    true,
    'the upstream body is as slow: this node is the common factor',
  );
  for (; t <= 1200; t += 50) upstream.write(Buffer.alloc(1000));
  assert.equal(
    rates.contended(peer, 1000, t),
    false,
    'the upstream body is fast: the peer is slow on its own',
  );
  upstream.end();
  await new Promise((r) => out.once('end', r));
  assert.equal(rates.size, 1, 'only the peer body is left');
  assert.equal(Buffer.concat(received).length, 13 * 10 + 12 * 1000);
});

test('an upstream body that breaks fails downstream and leaves the count', async () => {
  const rates = new IncomingRates(400);
  const upstream = new PassThrough();
  const out = tapUpstream(upstream, rates, () => 0);
  const failed = new Promise((r) => out.once('error', r));
  upstream.destroy(new Error('reset'));
  assert.match(String(await failed), /reset/);
  assert.equal(rates.size, 0);
});
