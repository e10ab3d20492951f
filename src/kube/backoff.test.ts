import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff, sleep } from './backoff.js';

describe('Backoff', () => {
  it('doubles up to maxMs, with the jitter inside [base/2, base]', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0);
    assert.deepEqual(
      Array.from({ length: 6 }, () => low.next()),
      [50, 100, 200, 400, 500, 500],
    );
    const high = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1);
    assert.deepEqual(
      Array.from({ length: 6 }, () => high.next()),
      [100, 200, 400, 800, 1000, 1000],
    );
  });

  it('starts over after reset', () => {
    const b = new Backoff({ initialMs: 10, maxMs: 1000 }, () => 1);
    b.next();
    b.next();
    assert.equal(b.next(), 40);
    b.reset();
    assert.equal(b.next(), 10);
  });

  it('never overflows after many failures', () => {
    const b = new Backoff({ initialMs: 1, maxMs: 30_000 }, () => 1);
    for (let i = 0; i < 2000; i++) b.next();
    assert.equal(b.next(), 30_000);
  });

  it('refuses nonsense bounds', () => {
    assert.throws(() => new Backoff({ initialMs: 0, maxMs: 10 }), RangeError);
    assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
  });
});

describe('sleep', () => {
  it('returns as soon as the signal aborts, without rejecting', async () => {
    const ac = new AbortController();
    const p = sleep(3_600_000, ac.signal);
    ac.abort();
    await p;
    await sleep(3_600_000, ac.signal); // already aborted: returns at once
  });
});
