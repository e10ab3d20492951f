import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NodePull, NodePullImageStatus, PrePull } from '../prepull/index.js';
import { mergeNodeCaches, nodeCachesFromNodePulls } from './node-cache.js';
import { buildState } from './state.js';

const entry = (image: string) => ({
  image,
  pin: false,
  retryLimit: 5,
  retryBackoffSeconds: 10,
  progressTimeoutSeconds: 300,
  sources: ['team/p'],
});

function nodePull(node: string, images: string[], status: NodePullImageStatus[] = []): NodePull {
  return {
    metadata: { name: node },
    spec: { nodeName: node, maxConcurrentPulls: 2, images: images.map(entry) },
    status: { images: status },
  };
}

const base = { identity: 'r1', leader: true, synced: true, now: new Date('2026-01-01T00:00:00Z') };
const prePull: PrePull = {
  metadata: { name: 'p', namespace: 'team' },
  spec: { images: ['a', 'b'] },
  status: {
    nodes: { desired: 2, pulling: 1, succeeded: 1, failed: 0 },
    conditions: [
      {
        type: 'Ready',
        status: 'False',
        reason: 'Pulling',
        message: '',
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ],
  },
};

describe('dashboard state', () => {
  it('builds the nodes × images matrix from NodePull spec and status', () => {
    const s = buildState({
      ...base,
      prePulls: [prePull],
      nodePulls: [
        nodePull('n2', ['b'], [{ image: 'b', phase: 'Failed', reason: 'ErrImagePull', attempts: 3 }]),
        nodePull(
          'n1',
          ['a', 'b'],
          [
            { image: 'a', phase: 'Succeeded' },
            { image: 'b', phase: 'Pulling' },
          ],
        ),
      ],
    });
    assert.deepEqual(s.matrix.images, ['a', 'b']);
    assert.deepEqual(
      s.matrix.rows.map((r) => [r.node, r.cells.map((c) => c.phase)]),
      [
        ['n1', ['Succeeded', 'Pulling']],
        ['n2', ['Absent', 'Failed']],
      ],
    );
    assert.deepEqual(s.matrix.rows[1]!.cells[1], { phase: 'Failed', reason: 'ErrImagePull', attempts: 3 });
    assert.deepEqual(
      { ...s.counts },
      { pending: 0, pulling: 1, succeeded: 1, failed: 1, nodes: 2, images: 2, prePulls: 1 },
    );
    assert.deepEqual(s.prePulls[0]!.ready, { status: 'False', reason: 'Pulling' });
  });

  it("leaves nodes without pulls out of the matrix, while their agents' mirror figures show", () => {
    const mirror = {
      storeBytes: 100,
      blobHits: 3,
      blobLookups: 4,
      servedBytes: 1000,
      upstreamBytes: 300,
      observedAt: '2026-01-01T00:00:00Z',
    };
    // The controller keeps an empty NodePull on every node no PrePull has work for.
    const idle: NodePull = { ...nodePull('n0', []), status: { images: [], mirror } };
    const nodePulls = [idle, nodePull('n1', ['a'], [{ image: 'a', phase: 'Succeeded' }])];
    const s = buildState({
      ...base,
      prePulls: [prePull],
      nodePulls,
      cache: mergeNodeCaches([], nodeCachesFromNodePulls(nodePulls)),
    });
    assert.deepEqual(
      s.matrix.rows.map((r) => r.node),
      ['n1'],
    );
    assert.equal(s.matrix.matchingNodes, 1);
    assert.deepEqual(
      { ...s.counts },
      { pending: 0, pulling: 0, succeeded: 1, failed: 0, nodes: 1, images: 1, prePulls: 1 },
    );
    assert.deepEqual(
      s.cache!.map((c) => [c.node, c.hitRatio, c.source]),
      [['n0', 0.75, 'agent']],
    );
    assert.deepEqual(s.bytes, { upstream: 300, cache: 700 });
  });

  it('counts a spec entry the agent has not answered as Pending', () => {
    const s = buildState({ ...base, prePulls: [], nodePulls: [nodePull('n1', ['a'])] });
    assert.equal(s.matrix.rows[0]!.cells[0]!.phase, 'Pending');
    assert.equal(s.counts.pending, 1);
  });

  it('caps rows and columns, filters nodes, and says how many matched', () => {
    const nodePulls = Array.from({ length: 5000 }, (_, i) =>
      nodePull(`node-${String(i).padStart(4, '0')}`, ['x', 'y', 'z']),
    );
    const s = buildState({ ...base, prePulls: [], nodePulls, limits: { maxNodes: 200, maxImages: 2 } });
    assert.equal(s.matrix.rows.length, 200);
    assert.equal(s.matrix.matchingNodes, 5000);
    assert.deepEqual(s.matrix.images, ['x', 'y']);
    assert.equal(s.matrix.totalImages, 3);
    assert.ok(JSON.stringify(s).length < 200_000, 'bounded snapshot');
    const f = buildState({ ...base, prePulls: [], nodePulls, nodeFilter: ' NODE-49 ' });
    assert.equal(f.matrix.filter, 'node-49');
    assert.equal(f.matrix.matchingNodes, 100);
    assert.equal(f.matrix.rows[0]!.node, 'node-4900');
  });

  it('says "no data yet" (null) for every section without a source', () => {
    const s = buildState({ ...base, prePulls: [], nodePulls: [] });
    assert.equal(s.cache, null);
    assert.equal(s.bytes, null);
    assert.equal(s.slowest, null);
    assert.equal(s.beforeAfter, null);
  });

  it('derives hit ratio and bytes by source from the node caches', () => {
    const s = buildState({
      ...base,
      prePulls: [],
      nodePulls: [],
      cache: [
        {
          node: 'n2',
          storeBytes: 10,
          blobHits: 0,
          blobLookups: 0,
          servedBytes: 0,
          upstreamBytes: 0,
          scrapedAt: 't',
        },
        {
          node: 'n1',
          storeBytes: 100,
          blobHits: 3,
          blobLookups: 4,
          servedBytes: 1000,
          upstreamBytes: 300,
          peerBytes: 200,
          scrapedAt: 't',
        },
      ],
    });
    assert.deepEqual(
      s.cache!.map((c) => [c.node, c.hitRatio]),
      [
        ['n1', 0.75],
        ['n2', undefined],
      ],
    );
    assert.deepEqual(s.bytes, { upstream: 300, cache: 500, peers: 200 });
  });

  it('pairs direct and Hoist pull times per image, compared images first', () => {
    const s = buildState({
      ...base,
      prePulls: [],
      nodePulls: [],
      summary: [
        { image: 'a', via: 'direct', count: 2, medianSeconds: 60, p90Seconds: 90 },
        { image: 'z', via: 'direct', count: 1, medianSeconds: 50, p90Seconds: 50 },
        { image: 'z', via: 'hoist', count: 4, medianSeconds: 5, p90Seconds: 8 },
      ],
    });
    assert.deepEqual(
      s.beforeAfter!.map((r) => [r.image, r.direct?.medianSeconds, r.hoist?.medianSeconds]),
      [
        ['z', 50, 5],
        ['a', 60, undefined],
      ],
    );
  });
});
