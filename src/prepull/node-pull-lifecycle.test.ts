// One NodePull per Node (docs/prepull.md "NodePull"): a node without work keeps an empty one, so
// that its agent has somewhere to report its mirror; only a vanished Node loses its NodePull.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plan, PlanCache, type PrePullInput } from './plan.js';
import { parsePrePullSpec } from './spec.js';
import type { Node, NodePull, NodePullSpec, PrePullSpecInput } from './types.js';
import { applyNodePullActions } from '../../test/helpers/node-pull-actions.js';

const NOW = new Date('2026-12-01T10:00:00Z');
const D1 = `sha256:${'1'.repeat(64)}`;
const A = 'docker.io/library/a:1';

const node = (name: string, extra: Partial<Node> = {}): Node => ({
  metadata: { name, uid: `uid-${name}`, labels: { pool: name.startsWith('gpu') ? 'gpu' : 'cpu' } },
  ...extra,
});

function prePull(name: string, spec: PrePullSpecInput): PrePullInput {
  return {
    object: { metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation: 1 }, spec },
    parsed: parsePrePullSpec(spec),
  };
}

const empty = (nodeName: string): NodePullSpec => ({ nodeName, maxConcurrentPulls: 2, images: [] });

const apply = applyNodePullActions;

const gpuPrePull = prePull('p', { images: ['a:1'], nodeSelector: { pool: 'gpu' } });
const runs = new Map([['ns/p', { runTime: NOW, images: new Map([[A, { digest: D1 }]]) }]]);

describe('NodePull lifecycle: one per Node', () => {
  it('gives a node no PrePull targets an empty NodePull owned by its Node, and leaves it be', () => {
    const nodes = [node('cpu-1'), node('gpu-1')];
    const out = plan({ prePulls: [gpuPrePull], nodes, nodePulls: [], runs, now: NOW });
    const cpu = out.nodePulls.find((a) => a.name === 'cpu-1');
    assert.deepEqual(cpu, {
      action: 'create',
      name: 'cpu-1',
      owner: { name: 'cpu-1', uid: 'uid-cpu-1' },
      spec: empty('cpu-1'),
    });
    // Not a node of the PrePull: it counts one target, and cpu-1's NodePull changes nothing there.
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 1, pulling: 1, succeeded: 0, failed: 0 });
    const nps = apply([], out);
    const again = plan({ prePulls: [gpuPrePull], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(again.nodePulls, [], 'an empty NodePull as stored needs no write');
    assert.deepEqual(again.statuses[0]!.status.nodes, out.statuses[0]!.status.nodes);
    // With no PrePull at all, every node still has its NodePull.
    const none = plan({ prePulls: [], nodes, nodePulls: [], now: NOW });
    assert.deepEqual(
      none.nodePulls.map((a) => [a.action, a.name, a.action === 'delete' ? null : a.spec.images.length]),
      [
        ['create', 'cpu-1', 0],
        ['create', 'gpu-1', 0],
      ],
    );
  });

  it('gives cordoned and tainted nodes one too: the agent DaemonSet runs there', () => {
    const nodes = [
      node('cpu-cordoned', { spec: { unschedulable: true } }),
      node('cpu-tainted', { spec: { taints: [{ key: 'dedicated', value: 'x', effect: 'NoExecute' }] } }),
    ];
    const out = plan({ prePulls: [], nodes, nodePulls: [], now: NOW });
    assert.deepEqual(
      out.nodePulls.map((a) => (a.action === 'create' ? a.spec : a)),
      [empty('cpu-cordoned'), empty('cpu-tainted')],
    );
  });

  it('empties the NodePull of a node that loses all its work, keeps it, and fills it again', () => {
    const nodes = [node('gpu-1')];
    let nps = apply([], plan({ prePulls: [gpuPrePull], nodes, nodePulls: [], runs, now: NOW }));
    assert.equal(nps[0]!.spec.images.length, 1);
    nps = nps.map((np) => ({ ...np, status: { images: [{ image: A, phase: 'Succeeded', digest: D1 }] } }));

    // The PrePull is deleted: the entry goes, the NodePull stays.
    const out = plan({ prePulls: [], nodes, nodePulls: nps, now: NOW });
    assert.deepEqual(out.nodePulls, [{ action: 'update', name: 'gpu-1', spec: empty('gpu-1') }]);
    nps = apply(nps, out);
    assert.deepEqual(plan({ prePulls: [], nodes, nodePulls: nps, now: NOW }).nodePulls, []);

    // Until its agent reports the empty spec, the old status says nothing (as with no NodePull):
    // the node is not done for a PrePull that wants the image again.
    const stale = plan({ prePulls: [gpuPrePull], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(stale.statuses[0]!.status.nodes, { desired: 1, pulling: 1, succeeded: 0, failed: 0 });
    // The agent has reported the empty spec: a new PrePull fills the same object (an update).
    nps = nps.map((np) => ({ ...np, status: { images: [] } }));
    const back = plan({ prePulls: [gpuPrePull], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(
      back.nodePulls.map((a) => [a.action, a.action === 'delete' ? [] : a.spec.images.map((e) => e.image)]),
      [['update', [A]]],
    );
    assert.deepEqual(back.statuses[0]!.status.nodes, { desired: 1, pulling: 1, succeeded: 0, failed: 0 });
  });

  it('deletes the NodePull of a Node that is gone or going, and creates none for a Node going', () => {
    const going = node('cpu-2', { metadata: { name: 'cpu-2', deletionTimestamp: '2026-12-01T09:00:00Z' } });
    const leaving = node('cpu-3', { metadata: { name: 'cpu-3', deletionTimestamp: '2026-12-01T09:00:00Z' } });
    const stored: NodePull[] = [
      { metadata: { name: 'cpu-1' }, spec: empty('cpu-1') },
      { metadata: { name: 'cpu-2' }, spec: empty('cpu-2') },
      { metadata: { name: 'old', deletionTimestamp: '2026-12-01T09:00:00Z' }, spec: empty('old') },
    ];
    const out = plan({ prePulls: [], nodes: [going, leaving], nodePulls: stored, now: NOW });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`).sort(),
      ['delete:cpu-1', 'delete:cpu-2'],
      'cpu-1 has no Node, cpu-2 is going, cpu-3 gets none, "old" is already being deleted',
    );
  });

  it('takes a stored entry without pin (the CRD does not require it) as pin: false, with no rewrite', () => {
    const nodes = [node('gpu-1')];
    const cache = new PlanCache();
    const first = plan({ prePulls: [gpuPrePull], nodes, nodePulls: [], runs, now: NOW, cache });
    const [np] = apply([], first);
    const entries = np!.spec.images.map(({ pin, ...rest }) => {
      assert.equal(pin, false);
      return rest;
    });
    const stored: NodePull = { ...np!, spec: { ...np!.spec, images: entries } };
    assert.deepEqual(
      plan({ prePulls: [gpuPrePull], nodes, nodePulls: [stored], runs, now: NOW }).nodePulls,
      [],
    );
    // A pinning PrePull does rewrite it.
    const pinning = prePull('p', { images: ['a:1'], nodeSelector: { pool: 'gpu' }, pin: true });
    const out = plan({ prePulls: [pinning], nodes, nodePulls: [stored], runs, now: NOW });
    assert.equal(out.nodePulls[0]?.action === 'update' && out.nodePulls[0].spec.images[0]!.pin, true);
  });
});
