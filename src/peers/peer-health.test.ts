import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PeerHealth } from './peer-health.js';

const A = 'http://10.0.0.1:5000';
const B = 'http://10.0.0.2:5000';

function health(now: { t: number }, maxSlowBlobs?: number) {
  return new PeerHealth({
    downMs: 5_000,
    quarantineMs: 60_000,
    slowMs: 30_000,
    now: () => now.t,
    ...(maxSlowBlobs !== undefined ? { maxSlowBlobs } : {}),
  });
}

test('a slow verdict is for one blob: the peer stays usable, and is avoided only for that digest, a while', () => {
  const now = { t: 0 };
  const h = health(now);
  h.demote(A, 'sha256:aa', 'held the whole blob but sent 10 B/s');
  assert.equal(h.usable(A), true, 'still a fetcher and a source for other blobs');
  assert.deepEqual([...h.slowFor('sha256:aa')], [A]);
  assert.deepEqual([...h.slowFor('sha256:bb')], []);
  assert.equal(h.problem(A)?.problem, 'slow');
  assert.match(h.problem(A)?.reason ?? '', /10 B\/s \(avoided for 1 blob\)/);
  assert.equal(h.problem(B), undefined);
  now.t = 30_000;
  assert.deepEqual([...h.slowFor('sha256:aa')], []);
  assert.equal(h.problem(A), undefined);
});

test('down and quarantine still apply to every blob, over a slow verdict', () => {
  const now = { t: 0 };
  const h = health(now);
  h.demote(A, 'sha256:aa', 'slow');
  h.markDown(A, 'refused');
  assert.equal(h.usable(A), false);
  assert.equal(h.problem(A)?.problem, 'down');
  h.markUp(A);
  assert.equal(h.usable(A), true);
  assert.equal(h.problem(A)?.problem, 'slow');
});

test('slow verdicts are bounded (oldest blob forgotten first) and forgotten with the peer', () => {
  const now = { t: 0 };
  const h = health(now, 2);
  h.demote(A, 'sha256:01', 'slow');
  h.demote(A, 'sha256:02', 'slow');
  h.demote(B, 'sha256:03', 'slow');
  assert.deepEqual([...h.slowFor('sha256:01')], []);
  assert.deepEqual([...h.slowFor('sha256:02')], [A]);
  h.retain(new Set([B]));
  assert.deepEqual([...h.slowFor('sha256:02')], []);
  assert.deepEqual([...h.slowFor('sha256:03')], [B]);
});
