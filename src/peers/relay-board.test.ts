import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayBoard, type Assignment } from './relay-board.js';

const D = 'sha256:' + 'a'.repeat(64);

function board(fanout: number, clock = { t: 0 }, maxBlobs = 100): RelayBoard {
  return new RelayBoard({ fanout, idleMs: 60_000, maxBlobs, now: () => clock.t });
}

function source(a: Assignment): string {
  return a.kind === 'serve' ? 'self' : a.relay;
}

test('fanout 1 makes a pipeline in arrival order: every uplink carries the blob once', () => {
  const b = board(1);
  const got = ['A', 'B', 'C', 'D'].map((n) => b.assign(D, n));
  assert.deepEqual(got.map(source), ['self', 'A', 'B', 'C']);
  assert.deepEqual(
    got.map((a) => a.depth),
    [1, 2, 3, 4],
  );
});

test('fanout 3 fills breadth first, so depth grows as log3 of the askers', () => {
  const b = board(3);
  const askers = Array.from({ length: 12 }, (_, i) => `n${i}`);
  const got = askers.map((n) => b.assign(D, n));
  assert.deepEqual(got.slice(0, 3).map(source), ['self', 'self', 'self']);
  assert.deepEqual(got.slice(3, 6).map(source), ['n0', 'n0', 'n0']);
  assert.deepEqual(got.slice(6, 9).map(source), ['n1', 'n1', 'n1']);
  // 3 served here, 9 by those 3: the 13th asker is the first at depth 3.
  assert.equal(Math.max(...got.map((a) => a.depth)), 2);
  assert.equal(b.assign(D, 'n12').depth, 3);
});

test('an asker whose relay failed is placed elsewhere, never under itself or its descendants', () => {
  const b = board(1);
  for (const n of ['A', 'B', 'C', 'D']) b.assign(D, n); // self → A → B → C → D
  // B lost A (A died): it must not be sent to C or D, which read from B.
  const again = b.assign(D, 'B', 'A');
  assert.equal(source(again), 'self');
  // A newcomer is never sent to the failed relay.
  const e = b.assign(D, 'E');
  assert.notEqual(source(e), 'A');
  assert.notEqual(source(e), 'E');
});

test('a direct reader that is done frees its slot; trees are forgotten when idle and bounded in number', () => {
  const clock = { t: 0 };
  const b = board(1, clock, 2);
  assert.equal(source(b.assign(D, 'A')), 'self');
  assert.equal(source(b.assign(D, 'B')), 'A');
  b.release(D, 'A');
  assert.equal(source(b.assign(D, 'C')), 'self');
  clock.t = 61_000;
  assert.equal(source(b.assign('sha256:' + 'b'.repeat(64), 'A')), 'self');
  assert.equal(b.size, 1, 'the idle tree was dropped');
  b.assign('sha256:' + 'c'.repeat(64), 'A');
  b.assign('sha256:' + 'd'.repeat(64), 'A');
  assert.equal(b.size, 2);
});

test('when every member is full or failed the asker is served here rather than kept waiting', () => {
  const b = board(1);
  b.assign(D, 'A');
  const again = b.assign(D, 'B', 'A');
  assert.equal(source(again), 'self');
});
