import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IncomingRates } from './incoming-rates.js';

const A = 'http://10.0.0.1:5000';
const B = 'http://10.0.0.2:5000';

test('a slow body waits only while every other peer body is as slow; one fast body elsewhere lets the verdict stand', () => {
  const rates = new IncomingRates(400);
  const a = rates.track(A, 0);
  assert.equal(rates.contended(a, 1000, 0), false, 'alone: nothing to compare with');
  const sameA = rates.track(A, 0);
  assert.equal(rates.contended(a, 1000, 0), false, 'another body of the same peer is no evidence');
  sameA.close(0);
  const b = rates.track(B, 0);
  assert.equal(rates.contended(a, 1000, 0), true, 'B not measured yet: wait');
  for (let t = 0; t <= 600; t += 50) b.add(10, t);
  assert.equal(rates.contended(a, 1000, 600), true, 'B slow too: the common factor is this node');
  for (let t = 650; t <= 1200; t += 50) b.add(1000, t);
  assert.equal(rates.contended(a, 1000, 1200), false, 'B fast: A is slow on its own');
  b.close(1200);
  assert.equal(rates.contended(a, 1000, 1200), false);
  a.close(1200);
  assert.equal(rates.size, 0);
});

test("a body that ends restarts the others' windows: a rate measured while sharing the link is not judged alone", () => {
  const rates = new IncomingRates(400);
  const a = rates.track(A, 0);
  const b = rates.track(B, 0);
  for (let t = 0; t <= 600; t += 50) a.add(10, t);
  assert.notEqual(a.bytesPerSecond(600), undefined);
  b.close(600);
  assert.equal(a.bytesPerSecond(600), undefined, 'measured afresh');
  a.close(600);
});
