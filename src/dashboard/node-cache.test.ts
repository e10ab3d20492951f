import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodePull, NodePullMirrorStatus } from '../prepull/index.js';
import { mergeNodeCaches, nodeCachesFromNodePulls } from './node-cache.js';
import type { NodeCache } from './sources.js';
import { buildState } from './state.js';

const figures = { storeBytes: 10, blobHits: 1, blobLookups: 2, servedBytes: 30, upstreamBytes: 10 };

function nodePull(node: string, mirror?: NodePullMirrorStatus): NodePull {
  return {
    metadata: { name: node },
    spec: { nodeName: node, maxConcurrentPulls: 1, images: [] },
    ...(mirror ? { status: { mirror } } : {}),
  };
}

const scraped = (node: string, extra: Partial<NodeCache> = {}): NodeCache => ({
  node,
  ...figures,
  servedBytes: 99,
  scrapedAt: '2026-01-01T00:00:15Z',
  ...extra,
});

describe('per-node cache figures: scraped and agent-reported', () => {
  it("reads NodePull status.mirror as the agent's figures", () => {
    const caches = nodeCachesFromNodePulls([
      nodePull('a', { ...figures, peerBytes: 5, observedAt: '2026-01-01T00:00:00Z' }),
      nodePull('b'),
    ]);
    assert.deepEqual(caches, [
      { node: 'a', ...figures, peerBytes: 5, scrapedAt: '2026-01-01T00:00:00Z', source: 'agent' },
    ]);
  });

  it('a good direct read wins; a failed one yields to the agent; alone, it still shows its error', () => {
    const reported = nodeCachesFromNodePulls([
      nodePull('a', { ...figures, observedAt: '2026-01-01T00:00:00Z' }),
      nodePull('b', { ...figures, observedAt: '2026-01-01T00:00:00Z' }),
      nodePull('d', { ...figures, observedAt: '2026-01-01T00:00:00Z' }),
    ]);
    const merged = mergeNodeCaches(
      [scraped('a'), scraped('b', { error: 'timed out' }), scraped('c', { error: 'timed out' })],
      reported,
    );
    const byNode = Object.fromEntries(merged.map((c) => [c.node, c]));
    assert.equal(byNode.a?.source, 'mirror');
    assert.equal(byNode.a?.servedBytes, 99);
    assert.equal(byNode.b?.source, 'agent');
    assert.equal(byNode.b?.servedBytes, 30);
    assert.equal(byNode.c?.source, 'mirror');
    assert.equal(byNode.c?.error, 'timed out');
    assert.equal(byNode.d?.source, 'agent');
    assert.equal(merged.length, 4);
  });

  it('the state carries where each row came from, and totals over both', () => {
    const state = buildState({
      prePulls: [],
      nodePulls: [],
      identity: 'x',
      leader: true,
      synced: true,
      now: new Date(0),
      cache: mergeNodeCaches(
        [scraped('a')],
        nodeCachesFromNodePulls([nodePull('b', { ...figures, observedAt: '2026-01-01T00:00:00Z' })]),
      ),
    });
    assert.deepEqual(
      state.cache?.map((c) => [c.node, c.source, c.hitRatio]),
      [
        ['a', 'mirror', 0.5],
        ['b', 'agent', 0.5],
      ],
    );
    assert.deepEqual(state.bytes, { upstream: 20, cache: 99 + 30 - 20 });
  });

  it('bounds the cache rows as the matrix is bounded: the filter, then at most maxNodes, and says how many matched', () => {
    const cache = ['gpu-1', 'gpu-2', 'gpu-3', 'cpu-1'].map((n) => scraped(n));
    const input = {
      prePulls: [],
      nodePulls: [],
      identity: 'x',
      leader: true,
      synced: true,
      now: new Date(0),
      cache,
    };
    const s = buildState({ ...input, nodeFilter: 'GPU', limits: { maxNodes: 2 } });
    assert.deepEqual(
      s.cache?.map((c) => c.node),
      ['gpu-1', 'gpu-2'],
    );
    assert.equal(s.cacheMatching, 3);
    assert.equal(s.bytes?.upstream, 40, 'totals over every node, not only the rows shown');
    assert.equal(buildState(input).cacheMatching, 4);
  });
});
