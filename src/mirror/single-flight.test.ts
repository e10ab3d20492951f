import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SingleFlight } from './single-flight.js';

/** A promise with its resolve/reject exposed, so a test decides when a call ends. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('joins a second caller for the same key onto the running call', async () => {
    const sf = new SingleFlight<string>();
    const d = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls += 1;
      return d.promise;
    };
    const a = sf.run('k', fn);
    const b = sf.run('k', fn);
    assert.equal(calls, 1);
    assert.equal(sf.size, 1);
    d.resolve('v');
    assert.deepEqual(await Promise.all([a, b]), ['v', 'v']);
  });

  it('runs different keys separately', async () => {
    const sf = new SingleFlight<string>();
    const a = sf.run('a', async () => 'A');
    const b = sf.run('b', async () => 'B');
    assert.equal(sf.size, 2);
    assert.deepEqual(await Promise.all([a, b]), ['A', 'B']);
  });

  it('forgets a key once its call settled, so the next caller starts afresh', async () => {
    const sf = new SingleFlight<number>();
    let calls = 0;
    const fn = async () => ++calls;
    assert.equal(await sf.run('k', fn), 1);
    assert.equal(sf.size, 0);
    assert.equal(await sf.run('k', fn), 2);
  });

  it('gives every joined caller the failure, then forgets it', async () => {
    const sf = new SingleFlight<number>();
    const d = deferred<number>();
    const a = sf.run('k', () => d.promise);
    const b = sf.run('k', async () => 99);
    d.reject(new Error('upstream down'));
    await assert.rejects(a, /upstream down/);
    await assert.rejects(b, /upstream down/);
    assert.equal(sf.size, 0);
    assert.equal(await sf.run('k', async () => 7), 7);
  });
});
