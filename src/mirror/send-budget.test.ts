import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SendBudget, SendBudgetClosedError, type SendLease } from './send-budget.js';

const KiB = 1024;

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SendBudget', () => {
  it('never leases more than the budget, and keeps leased plus kept buffers within it', async () => {
    const budget = new SendBudget({
      totalBytes: 256 * KiB,
      minChunkBytes: 32 * KiB,
      maxChunkBytes: 128 * KiB,
    });
    const unregister = [budget.register(), budget.register(), budget.register()];
    const held: SendLease[] = [];
    const waiting: Array<Promise<SendLease>> = [];
    for (let i = 0; i < 20; i++) waiting.push(budget.acquire());
    // Release in a scrambled order, checking the invariant at every step.
    let released = 0;
    for (let round = 0; round < 200 && released < 20; round++) {
      await settle();
      for (const p of waiting.splice(0)) {
        const lease = await Promise.race([p, Promise.resolve(undefined)]);
        if (lease) held.push(lease);
        else waiting.push(p);
      }
      const s = budget.stats();
      assert.ok(s.leasedBytes <= s.totalBytes, `leased ${s.leasedBytes} > ${s.totalBytes}`);
      assert.ok(s.leasedBytes + s.cachedBytes <= s.totalBytes, 'kept buffers exceed the budget');
      assert.equal(
        s.leasedBytes,
        held.reduce((n, l) => n + l.buf.byteLength, 0),
      );
      const victim = held.splice(round % Math.max(1, held.length), 1)[0];
      if (victim) {
        victim.release(round % 3 !== 0);
        released += 1;
      }
    }
    assert.equal(released, 20);
    for (const l of held) l.release(true);
    assert.equal(budget.stats().leasedBytes, 0);
    assert.equal(budget.stats().leases, 0);
    assert.ok(budget.stats().peakLeasedBytes <= 256 * KiB);
    for (const u of unregister) u();
    assert.equal(budget.stats().senders, 0);
  });

  it('serves waiters first come, first served, and nobody jumps the queue', async () => {
    const budget = new SendBudget({ totalBytes: 64 * KiB, minChunkBytes: 32 * KiB, maxChunkBytes: 32 * KiB });
    const a = await budget.acquire();
    const b = await budget.acquire();
    const order: string[] = [];
    const w1 = budget.acquire().then((l) => (order.push('w1'), l));
    const w2 = budget.acquire().then((l) => (order.push('w2'), l));
    const w3 = budget.acquire().then((l) => (order.push('w3'), l));
    await settle();
    assert.deepEqual(order, [] as string[]);
    assert.equal(budget.stats().waiting, 3);
    a.release(true);
    await settle();
    assert.deepEqual(order, ['w1']);
    // Room appears while w2 and w3 wait: a newcomer still queues behind them.
    const l1 = await w1;
    l1.release(true);
    const late = budget.acquire().then((l) => (order.push('late'), l));
    b.release(true);
    await settle();
    assert.deepEqual(order, ['w1', 'w2', 'w3']);
    (await w2).release(true);
    await settle();
    assert.deepEqual(order, ['w1', 'w2', 'w3', 'late']);
    (await w3).release(true);
    (await late).release(true);
    assert.equal(budget.stats().leasedBytes, 0);
  });

  it('drops a waiter whose response closed, and the next one gets the buffer', async () => {
    const budget = new SendBudget({ totalBytes: 32 * KiB, minChunkBytes: 32 * KiB, maxChunkBytes: 32 * KiB });
    const first = await budget.acquire();
    const gone = new AbortController();
    const w1 = budget.acquire(gone.signal);
    const w2 = budget.acquire();
    gone.abort(new Error('client left'));
    await assert.rejects(w1, SendBudgetClosedError);
    assert.equal(budget.stats().waiting, 1);
    first.release(true);
    const l2 = await w2;
    assert.equal(l2.buf.byteLength, 32 * KiB);
    l2.release(true);
    await assert.rejects(budget.acquire(gone.signal), SendBudgetClosedError);
    assert.equal(budget.stats().leasedBytes, 0);
    assert.equal(budget.stats().waiting, 0);
  });

  it('releasing twice counts once', async () => {
    const budget = new SendBudget({ totalBytes: 64 * KiB, minChunkBytes: 32 * KiB, maxChunkBytes: 32 * KiB });
    const a = await budget.acquire();
    const b = await budget.acquire();
    a.release(true);
    a.release(false);
    assert.equal(budget.stats().leasedBytes, 32 * KiB);
    b.release(true);
    assert.equal(budget.stats().leasedBytes, 0);
  });

  it('gives one sender large chunks and many senders smaller ones, never below the minimum', async () => {
    const budget = new SendBudget({
      totalBytes: 4096 * KiB,
      minChunkBytes: 32 * KiB,
      maxChunkBytes: 512 * KiB,
    });
    const one = budget.register();
    const big = await budget.acquire();
    assert.equal(big.buf.byteLength, 512 * KiB);
    big.release(true);
    const more = Array.from({ length: 15 }, () => budget.register());
    const mid = await budget.acquire();
    assert.equal(mid.buf.byteLength, 128 * KiB); // 4 MiB / (2 × 16)
    mid.release(true);
    const crowd = Array.from({ length: 1000 }, () => budget.register());
    const small = await budget.acquire();
    assert.equal(small.buf.byteLength, 32 * KiB);
    small.release(true);
    for (const u of [one, ...more, ...crowd]) u();
    // A buffer kept from before is reused for the same size.
    const again = await budget.acquire();
    assert.equal(again.buf.byteLength, 512 * KiB);
    assert.equal(again.buf, big.buf);
    again.release(true);
  });

  it('hands out a smaller lease rather than make a waiter wait for a full one', async () => {
    const budget = new SendBudget({
      totalBytes: 160 * KiB,
      minChunkBytes: 32 * KiB,
      maxChunkBytes: 64 * KiB,
    });
    const a = await budget.acquire();
    const b = await budget.acquire();
    assert.equal(a.buf.byteLength + b.buf.byteLength, 128 * KiB);
    const c = await budget.acquire();
    assert.equal(c.buf.byteLength, 32 * KiB);
    for (const l of [a, b, c]) l.release(false);
    assert.equal(budget.stats().cachedBytes, 0);
  });

  it('grants nothing while held, then serves the waiters in arrival order', async () => {
    const budget = new SendBudget({
      totalBytes: 1024 * KiB,
      minChunkBytes: 32 * KiB,
      maxChunkBytes: 64 * KiB,
    });
    const release = budget.hold();
    const again = budget.hold();
    const order: number[] = [];
    const waiting = [0, 1, 2].map((i) =>
      budget.acquire().then((lease) => {
        order.push(i);
        return lease;
      }),
    );
    await settle();
    assert.deepEqual(order, [], 'no lease while held, although the budget has room');
    assert.equal(budget.stats().waiting, 3);
    release();
    release(); // a second call does nothing: the other hold still stands
    await settle();
    assert.deepEqual(order, [], 'holds nest: one still stands');
    again();
    const leases = await Promise.all(waiting);
    assert.deepEqual(order, [0, 1, 2]);
    for (const l of leases) l.release(true);
  });
});
