import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fetcherFor, rankPeers } from './rendezvous.js';

const peers = Array.from({ length: 8 }, (_, i) => `http://127.77.0.${i + 10}:5000`);
const digests = Array.from({ length: 4000 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);

test('every node computes the same ranking, whatever order it lists the members in', () => {
  for (const d of digests.slice(0, 50)) {
    const shuffled = [...peers].reverse();
    assert.deepEqual(rankPeers(d, shuffled), rankPeers(d, peers));
    assert.equal(fetcherFor(d, shuffled), rankPeers(d, peers)[0]);
  }
});

test('a ranking holds each member once', () => {
  const ranked = rankPeers(digests[0] as string, [...peers, ...peers]);
  assert.equal(ranked.length, peers.length);
  assert.deepEqual([...ranked].sort(), [...peers].sort());
  assert.equal(fetcherFor(digests[0] as string, []), undefined);
});

test('digests spread evenly over the members', () => {
  const counts = new Map<string, number>();
  for (const d of digests) {
    const f = fetcherFor(d, peers) as string;
    counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  assert.equal(counts.size, peers.length);
  const fair = digests.length / peers.length;
  for (const [peer, n] of counts)
    assert.ok(n > fair * 0.8 && n < fair * 1.2, `${peer}: ${n} of ${digests.length}`);
});

test('a member leaving moves only the digests it was fetching', () => {
  const gone = peers[3] as string;
  const rest = peers.filter((p) => p !== gone);
  let moved = 0;
  for (const d of digests) {
    const before = fetcherFor(d, peers);
    const after = fetcherFor(d, rest);
    if (before !== gone) assert.equal(after, before, d);
    else moved++;
  }
  assert.ok(moved > 0);
  // The digests it fetched fall to the member ranked next, as every node computes.
  for (const d of digests.slice(0, 200)) {
    const ranked = rankPeers(d, peers);
    if (ranked[0] === gone) assert.equal(fetcherFor(d, rest), ranked[1]);
  }
});
