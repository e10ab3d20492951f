import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateWindow } from './rate-window.js';

test('no rate until a whole window was measured, then the bytes of the last window per second', () => {
  const w = new RateWindow(1000, 0, 4);
  w.add(100, 0);
  w.add(100, 500);
  assert.equal(w.bytesPerSecond(999), undefined);
  w.add(100, 900);
  // Slots [0,250) [250,500) [500,750) [750,1000) hold 100, 0, 100, 100; the running one 0.
  assert.equal(w.bytesPerSecond(1000), 300);
});

test('the window slides: old bytes leave it, a gap counts as nothing sent', () => {
  const w = new RateWindow(1000, 0, 4);
  w.add(4000, 100);
  assert.equal(w.bytesPerSecond(1000), 4000);
  assert.equal(w.bytesPerSecond(1250), 0);
  w.add(500, 1300);
  assert.equal(w.bytesPerSecond(2400), 500);
  assert.equal(w.bytesPerSecond(2600), 0);
  // Far later: everything has left the window.
  assert.equal(w.bytesPerSecond(60_000), 0);
});

test('restart forgets what was measured: time spent waiting on our own consumer is not the peer', () => {
  const w = new RateWindow(1000, 0, 4);
  w.add(10, 100);
  assert.equal(w.bytesPerSecond(1000), 10);
  w.restart(5000);
  assert.equal(w.bytesPerSecond(5500), undefined);
  w.add(2000, 5600);
  assert.equal(w.bytesPerSecond(6000), 2000);
});

test('a window must be positive and cut into whole slots', () => {
  assert.throws(() => new RateWindow(0, 0), RangeError);
  assert.throws(() => new RateWindow(1000, 0, 0), RangeError);
});
