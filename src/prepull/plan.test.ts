// The planning rules of docs/prepull.md, one by one: targets, done/active/waiting, stagger with
// old entries kept, edits, merges, failure isolation, status and conditions.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  plan,
  PlanCache,
  type PlanInput,
  type PlanOutput,
  type PrePullInput,
  type RunResult,
} from './plan.js';
import { parsePrePullSpec } from './spec.js';
import type {
  Node,
  NodePull,
  NodePullImageStatus,
  NodePullSpec,
  PrePull,
  PrePullSpecInput,
  Taint,
} from './types.js';
import { SPEC_TIME_ANNOTATION } from './types.js';
import { applyNodePullActions } from '../../test/helpers/node-pull-actions.js';

const NOW = new Date('2026-12-01T10:00:00Z');
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const A = 'docker.io/library/a:1';
const B = 'docker.io/library/b:1';

function node(name: string, labels: Record<string, string> = {}, taints?: Taint[]): Node {
  return { metadata: { name, uid: `uid-${name}`, labels }, ...(taints ? { spec: { taints } } : {}) };
}

function prePull(
  name: string,
  spec: PrePullSpecInput,
  extra: Partial<PrePull> = {},
  generation = 1,
): PrePullInput {
  const object: PrePull = {
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation },
    spec,
    ...extra,
  };
  return { object, parsed: parsePrePullSpec(spec) };
}

/** A NodePull as the API server would hold it, with the agent's status per image. */
function nodePull(spec: NodePullSpec, status: NodePullImageStatus[] = []): NodePull {
  return { metadata: { name: spec.nodeName }, spec, status: { images: status } };
}

const apply = applyNodePullActions;

/**
 * The agent: marks every spec image of the named nodes with `phase` at the spec's digest (or
 * `digest`), echoing the entry's run as the agent does.
 */
function report(
  nodePulls: NodePull[],
  names: string[],
  phase: 'Succeeded' | 'Failed',
  digest?: string,
): NodePull[] {
  return nodePulls.map((np) => {
    if (!names.includes(np.metadata.name)) return np;
    const images = np.spec.images.map((e): NodePullImageStatus => ({
      image: e.image,
      phase,
      ...((e.digest ?? digest) ? { digest: e.digest ?? digest } : {}),
      ...(phase === 'Failed' ? { reason: 'NotFound', message: 'manifest unknown' } : {}),
      ...(e.run ? { run: e.run } : {}),
    }));
    return { ...np, status: { images } };
  });
}

/** The NodePull writes that give a node work (every other node gets an empty spec). */
const withWork = (out: PlanOutput) =>
  out.nodePulls.filter((a) => a.action !== 'delete' && a.spec.images.length > 0);
/** The nodes whose NodePull has work. */
const busy = (nps: NodePull[]) => nps.filter((n) => n.spec.images.length > 0).map((n) => n.metadata.name);

const runsOn = (nps: NodePull[], name: string) =>
  nps.find((n) => n.metadata.name === name)?.spec.images.map((e) => e.run) ?? [];
const specOf = (nps: NodePull[], name: string) => nps.find((n) => n.metadata.name === name)?.spec;
const imagesOn = (nps: NodePull[], name: string) =>
  specOf(nps, name)?.images.map((e) => `${e.image}@${e.digest ?? ''}`) ?? [];

function resolved(map: Record<string, string>, runTime = NOW): Map<string, RunResult> {
  return new Map([
    ['ns/p', { runTime, images: new Map(Object.entries(map).map(([i, d]) => [i, { digest: d }])) }],
  ]);
}

describe('plan: targets', () => {
  it('selects by every nodeSelector pair and skips untolerated hard taints, not PreferNoSchedule', () => {
    const nodes = [
      node('gpu-1', { gpu: 'true', zone: 'a' }),
      node('gpu-2', { gpu: 'true', zone: 'b' }),
      node('cpu-1', { zone: 'a' }),
      node('gpu-tainted', { gpu: 'true', zone: 'a' }, [
        { key: 'dedicated', value: 'ml', effect: 'NoSchedule' },
      ]),
      node('gpu-soft', { gpu: 'true', zone: 'a' }, [{ key: 'soft', effect: 'PreferNoSchedule' }]),
      node('gpu-exec', { gpu: 'true', zone: 'a' }, [{ key: 'nvidia.com/gpu', effect: 'NoExecute' }]),
    ];
    const p = prePull('p', {
      images: ['a:1'],
      nodeSelector: { gpu: 'true', zone: 'a' },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }],
      maxConcurrentNodes: '100%',
    });
    const out = plan({ prePulls: [p], nodes, nodePulls: [], now: NOW });
    assert.deepEqual(
      withWork(out)
        .map((a) => a.name)
        .sort(),
      ['gpu-1', 'gpu-exec', 'gpu-soft'],
    );
    assert.equal(out.statuses[0]!.status.nodes!.desired, 3);
    // Every other node still gets its NodePull, empty, for its agent to report into.
    assert.deepEqual(
      out.nodePulls
        .filter((a) => a.action === 'create' && a.spec.images.length === 0)
        .map((a) => a.name)
        .sort(),
      ['cpu-1', 'gpu-2', 'gpu-tainted'],
    );
  });

  it('never targets a node being deleted', () => {
    const gone: Node = { metadata: { name: 'n1', deletionTimestamp: '2026-12-01T09:00:00Z' } };
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'] })],
      nodes: [gone],
      nodePulls: [],
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, []);
    assert.equal(out.statuses[0]!.status.nodes!.desired, 0);
  });

  it('creates NodePulls with the node as owner and the normalised image', () => {
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'] })],
      nodes: [node('n1')],
      nodePulls: [],
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, [
      {
        action: 'create',
        name: 'n1',
        owner: { name: 'n1', uid: 'uid-n1' },
        spec: {
          nodeName: 'n1',
          maxConcurrentPulls: 2,
          images: [
            {
              image: A,
              pin: false,
              retryLimit: 5,
              retryBackoffSeconds: 10,
              progressTimeoutSeconds: 300,
              sources: ['ns/p'],
            },
          ],
        },
      },
    ]);
  });
});

describe('plan: stagger', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'].map((n) => node(n));

  it('starts at most maxConcurrentNodes in name order and advances as nodes finish', () => {
    const p = prePull('p', { images: ['a:1', 'b:1'], maxConcurrentNodes: 2 });
    const runs = resolved({ [A]: D1, [B]: D2 });
    let nps: NodePull[] = [];
    let out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW });
    nps = apply(nps, out);
    assert.deepEqual(busy(nps), ['n1', 'n2']);
    assert.equal(nps.length, 5, 'the waiting nodes have empty NodePulls');
    assert.deepEqual(imagesOn(nps, 'n1'), [`${A}@${D1}`, `${B}@${D2}`]);

    // Nothing reported: the same two stay active and no third starts (the plan is idempotent).
    out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 2, succeeded: 0, failed: 0 });

    nps = report(nps, ['n1'], 'Succeeded');
    out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n3'],
    );
    nps = apply(nps, out);
    nps = report(nps, ['n2', 'n3'], 'Succeeded');
    nps = apply(nps, plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW }));
    nps = report(nps, ['n4', 'n5'], 'Succeeded');
    out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(out.nodePulls, []);
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 5, pulling: 0, succeeded: 5, failed: 0 });
    assert.equal(st.conditions!.find((c) => c.type === 'Ready')!.status, 'True');
  });

  it('frees the slot of a node whose agent stopped reporting, and lists it as AgentUnavailable', () => {
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 });
    const runs = resolved({ [A]: D1 });
    const timeout = { agentTimeoutMs: 300_000 };
    let nps = apply([], plan({ prePulls: [p], nodes, nodePulls: [], runs, now: NOW, ...timeout }));
    assert.deepEqual(busy(nps), ['n1']);
    const at = (iso: string) => new Date(iso);
    // The controller wrote n1's spec at 10:00; its agent said it had seen it at 10:00:01.
    nps = nps.map((np) =>
      np.metadata.name !== 'n1'
        ? np
        : {
            ...np,
            metadata: { ...np.metadata, annotations: { [SPEC_TIME_ANNOTATION]: '2026-12-01T10:00:00Z' } },
            status: {
              heartbeatTime: '2026-12-01T10:00:01Z',
              images: [{ image: A, phase: 'Pulling' as const }],
            },
          },
    );

    // Within the timeout: still its slot, and a wake-up for when it would run out.
    let out = plan({
      prePulls: [p],
      nodes,
      nodePulls: nps,
      runs,
      now: at('2026-12-01T10:04:00Z'),
      ...timeout,
    });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 1, succeeded: 0, failed: 0 });
    assert.deepEqual(out.wakeAt, at('2026-12-01T10:05:02Z'));

    // A heartbeat renews it: a slow pull is not a dead agent.
    const renewed = nps.map((np) => ({
      ...np,
      status: { ...np.status, heartbeatTime: '2026-12-01T10:04:30Z' },
    }));
    out = plan({
      prePulls: [p],
      nodes,
      nodePulls: renewed,
      runs,
      now: at('2026-12-01T10:06:00Z'),
      ...timeout,
    });
    assert.deepEqual(out.nodePulls, []);

    // Silent past the timeout: n1 counts as failed, and n2 starts.
    out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: at('2026-12-01T10:06:00Z'), ...timeout });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n2'],
    );
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 5, pulling: 1, succeeded: 0, failed: 1 });
    assert.equal(st.images![0]!.failures![0]!.node, 'n1');
    assert.equal(st.images![0]!.failures![0]!.reason, 'AgentUnavailable');
    assert.match(st.images![0]!.failures![0]!.message!, /no report from the node's agent for 359 s/);
    // Its entry stays, so the agent finds its work when it comes back.
    assert.deepEqual(imagesOn(apply(nps, out), 'n1'), [`${A}@${D1}`]);
    // Without a timeout the planner never gives up on a node.
    out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: at('2026-12-02T10:00:00Z') });
    assert.deepEqual(out.nodePulls, []);
  });

  it('resolves a percentage against the number of targets, rounding up', () => {
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: '30%' });
    const out = plan({ prePulls: [p], nodes, nodePulls: [], now: NOW });
    assert.equal(withWork(out).length, 2); // ceil(0.3 * 5)
  });

  it('keeps a waiting node on its old digest until its turn, so an update is staggered too', () => {
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 });
    let nps = nodes.map((n) =>
      nodePull({
        nodeName: n.metadata.name,
        maxConcurrentPulls: 2,
        images: [
          {
            image: A,
            digest: D1,
            pin: false,
            retryLimit: 5,
            retryBackoffSeconds: 10,
            progressTimeoutSeconds: 300,
            sources: ['ns/p'],
          },
        ],
      }),
    );
    nps = report(nps, ['n1', 'n2', 'n3', 'n4', 'n5'], 'Succeeded');
    // A scheduled run resolved the tag to a new digest.
    const runs = resolved({ [A]: D2 });
    const out = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW });
    assert.deepEqual(
      out.nodePulls.map((a) => a.name),
      ['n1'],
    );
    nps = apply(nps, out);
    assert.deepEqual(imagesOn(nps, 'n1'), [`${A}@${D2}`]);
    assert.deepEqual(imagesOn(nps, 'n2'), [`${A}@${D1}`]);
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 5, pulling: 1, succeeded: 0, failed: 0 });
    assert.equal(st.images![0]!.digest, D2);
    assert.equal(st.lastScheduleTime, '2026-12-01T10:00:00Z');
  });

  it('starts no node while suspended, but leaves active ones alone', () => {
    const spec = { images: ['a:1'], maxConcurrentNodes: 2 };
    let nps = apply([], plan({ prePulls: [prePull('p', spec)], nodes, nodePulls: [], now: NOW }));
    nps = report(nps, ['n1'], 'Succeeded');
    const out = plan({
      prePulls: [prePull('p', { ...spec, suspend: true })],
      nodes,
      nodePulls: nps,
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, []);
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 5, pulling: 1, succeeded: 1, failed: 0 });
    nps = report(nps, ['n2'], 'Succeeded');
    const later = plan({
      prePulls: [prePull('p', { ...spec, suspend: true })],
      nodes,
      nodePulls: nps,
      now: NOW,
    });
    const ready = later.statuses[0]!.status.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.reason, 'Suspended');
  });
});

describe('plan: edits', () => {
  const nodes = [node('n1', { pool: 'a' }), node('n2', { pool: 'a' })];

  it('removes an image edited out from every node at once', () => {
    let nps = apply(
      [],
      plan({
        prePulls: [prePull('p', { images: ['a:1', 'b:1'], maxConcurrentNodes: 2 })],
        nodes,
        nodePulls: [],
        now: NOW,
      }),
    );
    nps = report(nps, ['n1'], 'Succeeded');
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 }, {}, 2)],
      nodes,
      nodePulls: nps,
      now: NOW,
    });
    nps = apply(nps, out);
    assert.deepEqual(imagesOn(nps, 'n1'), [`${A}@`]);
    assert.deepEqual(imagesOn(nps, 'n2'), [`${A}@`]);
  });

  it('drops a node that stops matching, and empties its NodePull rather than delete it', () => {
    let nps = apply(
      [],
      plan({
        prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 2, nodeSelector: { pool: 'a' } })],
        nodes,
        nodePulls: [],
        now: NOW,
      }),
    );
    assert.equal(nps.length, 2);
    const relabelled = [node('n1', { pool: 'a' }), node('n2', { pool: 'b' })];
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 2, nodeSelector: { pool: 'a' } })],
      nodes: relabelled,
      nodePulls: nps,
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, [
      { action: 'update', name: 'n2', spec: { nodeName: 'n2', maxConcurrentPulls: 2, images: [] } },
    ]);
    nps = apply(nps, out);
    // Emptied once: the next plan leaves it alone.
    assert.deepEqual(
      plan({
        prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 2, nodeSelector: { pool: 'a' } })],
        nodes: relabelled,
        nodePulls: nps,
        now: NOW,
      }).nodePulls,
      [],
    );
    assert.equal(out.statuses[0]!.status.nodes!.desired, 1);
  });

  it('empties NodePulls when the PrePull goes, and deletes those of vanished nodes', () => {
    const nps = apply(
      [],
      plan({
        prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 2 })],
        nodes,
        nodePulls: [],
        now: NOW,
      }),
    );
    const out = plan({ prePulls: [], nodes: [node('n1')], nodePulls: nps, now: NOW });
    assert.deepEqual(out.nodePulls, [
      { action: 'update', name: 'n1', spec: { nodeName: 'n1', maxConcurrentPulls: 2, images: [] } },
      { action: 'delete', name: 'n2' },
    ]);
  });

  it('leaves the nodes as they are when a stored spec is invalid, and says why', () => {
    const nps = apply(
      [],
      plan({
        prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 2 })],
        nodes,
        nodePulls: [],
        now: NOW,
      }),
    );
    const bad = prePull('p', { images: [] }, {}, 2);
    const out = plan({ prePulls: [bad], nodes, nodePulls: nps, now: NOW });
    assert.deepEqual(out.nodePulls, []);
    const ready = out.statuses[0]!.status.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.reason, 'InvalidSpec');
    assert.match(ready.message, /spec\.images/);
    assert.equal(out.statuses[0]!.status.observedGeneration, 2);
  });
});

describe('plan: merge and failures', () => {
  const nodes = [node('n1'), node('n2')];

  it('gives one entry per image with every source, pin if any pins, the smallest limits', () => {
    const p = prePull('p', {
      images: ['a:1'],
      maxConcurrentNodes: 2,
      maxConcurrentPullsPerNode: 4,
      retry: { limit: 3 },
    });
    const q = prePull('q', {
      images: ['a:1', 'b:1'],
      maxConcurrentNodes: 2,
      pin: true,
      progressTimeoutSeconds: 60,
    });
    p.pullSecret = 'hoist-pull-p';
    q.pullSecret = 'hoist-pull-q';
    const out = plan({ prePulls: [q, p], nodes, nodePulls: [], now: NOW });
    const n1 = out.nodePulls.find((a) => a.name === 'n1');
    assert.ok(n1 && n1.action === 'create');
    assert.equal(n1.spec.maxConcurrentPulls, 2);
    assert.deepEqual(n1.spec.images[0], {
      image: A,
      pin: true,
      pullSecrets: ['hoist-pull-p', 'hoist-pull-q'],
      retryLimit: 3,
      retryBackoffSeconds: 10,
      progressTimeoutSeconds: 60,
      sources: ['ns/p', 'ns/q'],
    });
    assert.deepEqual(n1.spec.images[1]!.sources, ['ns/q']);
  });

  it('a failed image holds nothing back: the node counts as done, failures are listed with reasons', () => {
    const p = prePull('p', { images: ['a:1', 'b:1'], maxConcurrentNodes: 1 });
    let nps = apply([], plan({ prePulls: [p], nodes, nodePulls: [], now: NOW }));
    // n1's agent reports; n2 (waiting, its NodePull empty) has nothing to report.
    nps = nps.map((np) => ({
      ...np,
      status:
        np.metadata.name !== 'n1'
          ? {}
          : {
              images: [
                { image: A, phase: 'Succeeded', digest: D1 },
                { image: B, phase: 'Failed', reason: 'DiskMark', message: 'disk at 91%' },
              ],
            },
    }));
    const out = plan({ prePulls: [p], nodes, nodePulls: nps, now: NOW });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n2'],
    );
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 2, pulling: 1, succeeded: 0, failed: 1 });
    assert.deepEqual(st.images![1]!.failures, [{ node: 'n1', reason: 'DiskMark', message: 'disk at 91%' }]);
    assert.equal(st.images![0]!.succeeded, 1);
  });

  it('caps the failures list at 20, sorted by node', () => {
    const many = Array.from({ length: 25 }, (_, i) => node(`n${String(i).padStart(2, '0')}`));
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: '100%' });
    let nps = apply([], plan({ prePulls: [p], nodes: many, nodePulls: [], now: NOW }));
    nps = report(
      nps,
      many.map((n) => n.metadata.name),
      'Failed',
    );
    const img = plan({ prePulls: [p], nodes: many, nodePulls: nps, now: NOW }).statuses[0]!.status
      .images![0]!;
    assert.equal(img.failed, 25);
    assert.equal(img.failures!.length, 20);
    assert.equal(img.failures![0]!.node, 'n00');
    assert.equal(img.failures![19]!.node, 'n19');
  });
});

describe('plan: failures retried at the next run', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4', 'n5'].map((n) => node(n));
  const R1 = new Date('2026-12-01T03:00:00Z');
  const R2 = new Date('2026-12-02T03:00:00Z');
  const stored = (lastScheduleTime: Date, generation = 1, spec: PrePullSpecInput = scheduled) =>
    prePull(
      'p',
      spec,
      {
        status: {
          observedGeneration: generation,
          lastScheduleTime: lastScheduleTime.toISOString().replace('.000Z', 'Z'),
          images: [{ image: A, digest: D1, desired: 5, pulling: 0, succeeded: 3, failed: 2 }],
        },
      },
      generation,
    );
  const scheduled: PrePullSpecInput = { images: ['a:1'], maxConcurrentNodes: 1, schedule: '0 3 * * *' };

  /** Last night's run settled: every node has A@D1 from run R1; n2 and n4 failed it. */
  function lastNight(spec: PrePullSpecInput = scheduled): NodePull[] {
    const p = prePull('p', { ...spec, maxConcurrentNodes: '100%' });
    let nps = apply(
      [],
      plan({ prePulls: [p], nodes, nodePulls: [], runs: resolved({ [A]: D1 }, R1), now: R1 }),
    );
    assert.deepEqual(runsOn(nps, 'n1'), ['2026-12-01T03:00:00Z']);
    nps = report(nps, ['n1', 'n3', 'n5'], 'Succeeded');
    return report(nps, ['n2', 'n4'], 'Failed');
  }

  it('gives a failed node a new try at the next run, through the stagger', () => {
    let nps = lastNight();
    // Between runs the failed nodes are done: nothing is retried and nothing is written.
    let out = plan({ prePulls: [stored(R1)], nodes, nodePulls: nps, now: R1 });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 0, succeeded: 3, failed: 2 });

    // Tonight's run resolves the same digest: the first failed node gets the new run, one at a time.
    const runs = resolved({ [A]: D1 }, R2);
    out = plan({ prePulls: [stored(R1)], nodes, nodePulls: nps, runs, now: R2 });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n2'],
    );
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 1, succeeded: 3, failed: 0 });
    nps = apply(nps, out);
    assert.deepEqual(runsOn(nps, 'n2'), ['2026-12-02T03:00:00Z']);
    assert.deepEqual(runsOn(nps, 'n4'), ['2026-12-01T03:00:00Z'], 'waits for its turn');
    // Until the agent answers the new run, n2 holds the slot (its old failure is not an answer).
    out = plan({ prePulls: [stored(R2)], nodes, nodePulls: nps, now: R2 });
    assert.deepEqual(out.nodePulls, []);

    // n2 succeeds this time; n4 starts and fails again: then the run is over.
    nps = report(nps, ['n2'], 'Succeeded');
    out = plan({ prePulls: [stored(R2)], nodes, nodePulls: nps, now: R2 });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n4'],
    );
    nps = report(apply(nps, out), ['n4'], 'Failed');
    out = plan({ prePulls: [stored(R2)], nodes, nodePulls: nps, now: R2 });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 0, succeeded: 4, failed: 1 });
    assert.deepEqual(out.statuses[0]!.status.images![0]!.failures, [
      { node: 'n4', reason: 'NotFound', message: 'manifest unknown' },
    ]);
  });

  it('writes nothing at a run where every node succeeded at the wanted digest', () => {
    const nps = report(lastNight(), ['n2', 'n4'], 'Succeeded');
    const cache = new PlanCache();
    for (const now of [R2, new Date('2026-12-03T03:00:00Z')]) {
      const out = plan({
        prePulls: [stored(R1)],
        nodes,
        nodePulls: nps,
        runs: resolved({ [A]: D1 }, now),
        now,
        cache,
      });
      assert.deepEqual(out.nodePulls, []);
      assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 5, pulling: 0, succeeded: 5, failed: 0 });
    }
  });

  it('judges a status without a run (an older agent) by finishedAt', () => {
    const nps = lastNight().map((np) => ({
      ...np,
      status: {
        images: np.status!.images!.map(({ run: _, ...s }) =>
          s.phase === 'Failed' ? { ...s, finishedAt: '2026-12-01T03:05:00Z' } : s,
        ),
      },
    }));
    let out = plan({ prePulls: [stored(R1)], nodes, nodePulls: nps, now: R1 });
    assert.deepEqual(out.nodePulls, []);
    out = plan({ prePulls: [stored(R1)], nodes, nodePulls: nps, runs: resolved({ [A]: D1 }, R2), now: R2 });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n2'],
    );
  });

  it("retries an unscheduled PrePull's failures when its spec is edited", () => {
    const once: PrePullSpecInput = { images: ['a:1'], maxConcurrentNodes: 2 };
    let nps = lastNight(once);
    // The edit (generation 2) is a run: the controller resolves again and stamps a new run time.
    const edited: PrePullSpecInput = { ...once, retry: { limit: 3 } };
    const now = new Date('2026-12-01T12:00:00Z');
    const out = plan({
      prePulls: [stored(R1, 2, edited)],
      nodes,
      nodePulls: nps,
      runs: resolved({ [A]: D1 }, now),
      now,
    });
    nps = apply(nps, out);
    // The succeeded nodes change only for the edited limit; the failed ones also get the new run.
    assert.deepEqual(runsOn(nps, 'n2'), ['2026-12-01T12:00:00Z']);
    assert.deepEqual(runsOn(nps, 'n4'), ['2026-12-01T12:00:00Z']);
    assert.deepEqual(runsOn(nps, 'n1'), ['2026-12-01T03:00:00Z']);
    assert.equal(specOf(nps, 'n1')!.images[0]!.retryLimit, 3);
  });
});

describe('plan: status', () => {
  const nodes = [node('n1')];

  it('keeps lastTransitionTime while a condition keeps its status, and reports no change when nothing changed', () => {
    const input: PlanInput = {
      prePulls: [prePull('p', { images: ['a:1'] })],
      nodes,
      nodePulls: [],
      now: NOW,
    };
    const first = plan(input);
    const stored = prePull('p', { images: ['a:1'] }, { status: first.statuses[0]!.status });
    const nps = apply([], first);
    const later = new Date(NOW.getTime() + 60_000);
    const second = plan({ prePulls: [stored], nodes, nodePulls: nps, now: later });
    assert.equal(second.statuses[0]!.changed, false);
    const done = plan({
      prePulls: [stored],
      nodes,
      nodePulls: report(nps, ['n1'], 'Succeeded', D1),
      now: later,
    });
    const ready = done.statuses[0]!.status.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.status, 'True');
    assert.equal(ready.lastTransitionTime, '2026-12-01T10:01:00Z');
    assert.equal(ready.observedGeneration, 1);
    assert.equal(done.statuses[0]!.changed, true);
  });

  it('keeps the previous digest when a new resolution fails, with the error', () => {
    const stored = prePull(
      'p',
      { images: ['a:1'] },
      { status: { images: [{ image: A, digest: D1, desired: 1, pulling: 0, succeeded: 1, failed: 0 }] } },
    );
    const runs = new Map([
      ['ns/p', { runTime: NOW, images: new Map([[A, { resolveError: 'registry unreachable' }]]) }],
    ]);
    const st = plan({ prePulls: [stored], nodes, nodePulls: [], runs, now: NOW }).statuses[0]!.status;
    assert.equal(st.images![0]!.digest, D1);
    assert.equal(st.images![0]!.resolveError, 'registry unreachable');
  });

  it('wakes at the next scheduled run', () => {
    const p = prePull('p', { images: ['a:1'], schedule: '0 3 * * *', timeZone: 'Europe/Paris' });
    const out = plan({ prePulls: [p], nodes, nodePulls: [], now: NOW });
    assert.equal(out.wakeAt?.toISOString(), '2026-12-02T02:00:00.000Z');
    assert.equal(out.statuses[0]!.status.nextScheduleTime, '2026-12-02T02:00:00Z');
  });

  it('says Ready with no targets', () => {
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], nodeSelector: { none: 'x' } })],
      nodes,
      nodePulls: [],
      now: NOW,
    });
    const ready = out.statuses[0]!.status.conditions!.find((c) => c.type === 'Ready')!;
    assert.deepEqual([ready.status, ready.reason], ['True', 'NoTargets']);
  });
});

describe('plan: order and per-image status details', () => {
  it('staggers by node name whatever order the nodes are listed in', () => {
    const nodes = ['n3', 'n1', 'n4', 'n2'].map((n) => node(n));
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 2 });
    const out = plan({ prePulls: [p], nodes, nodePulls: [], runs: resolved({ [A]: D1 }), now: NOW });
    assert.deepEqual(
      withWork(out)
        .map((a) => a.name)
        .sort(),
      ['n1', 'n2'],
    );
  });

  it('counts pulling nodes per image, lists failures only when there are some, and caps their messages', () => {
    const nodes = ['n1', 'n2', 'n3'].map((n) => node(n));
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 2 });
    const runs = resolved({ [A]: D1 });
    let nps = apply([], plan({ prePulls: [p], nodes, nodePulls: [], runs, now: NOW }));
    let st = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW }).statuses[0]!.status;
    assert.equal(st.images![0]!.pulling, 2);
    assert.equal('failures' in st.images![0]!, false);

    nps = report(nps, ['n1'], 'Failed').map((np) =>
      np.metadata.name === 'n1'
        ? {
            ...np,
            status: { images: np.status!.images!.map((s) => ({ ...s, message: 'x'.repeat(5000) })) },
          }
        : np,
    );
    st = plan({ prePulls: [p], nodes, nodePulls: nps, runs, now: NOW }).statuses[0]!.status;
    const failures = st.images![0]!.failures!;
    assert.deepEqual(
      failures.map((f) => [f.node, f.reason, f.message?.length]),
      [['n1', 'NotFound', 1024]],
    );
    assert.equal(st.images![0]!.failed, 1);
  });
});

describe('plan: agent timeout edges', () => {
  const nodes = ['n1', 'n2'].map((n) => node(n));
  const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 });
  const runs = resolved({ [A]: D1 });
  /** n1 holds the spec; its agent last reported at 10:00:01. */
  const held = (): NodePull[] =>
    apply([], plan({ prePulls: [p], nodes, nodePulls: [], runs, now: NOW })).map((np) => ({
      ...np,
      metadata: { ...np.metadata, annotations: { [SPEC_TIME_ANNOTATION]: '2026-12-01T10:00:00Z' } },
      status: { heartbeatTime: '2026-12-01T10:00:01Z', images: [{ image: A, phase: 'Pulling' as const }] },
    }));

  it('still counts a node silent for exactly the timeout as pulling', () => {
    const out = plan({
      prePulls: [p],
      nodes,
      nodePulls: held(),
      runs,
      now: new Date('2026-12-01T10:05:01Z'),
      agentTimeoutMs: 300_000,
    });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 2, pulling: 1, succeeded: 0, failed: 0 });
  });

  it('never frees a slot nor schedules a wake-up for it without a timeout', () => {
    const out = plan({
      prePulls: [p],
      nodes,
      nodePulls: held(),
      runs,
      now: new Date('2026-12-02T10:00:00Z'),
    });
    assert.deepEqual(out.nodePulls, []);
    assert.equal(out.wakeAt, undefined);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 2, pulling: 1, succeeded: 0, failed: 0 });
  });
});

describe('plan: invalid spec edges', () => {
  it('keeps a pinned entry pinned, and the stored counts, while the spec is invalid', () => {
    const nodes = [node('n1')];
    const good = prePull('p', { images: ['a:1'], pin: true });
    const runs = resolved({ [A]: D1 });
    const nps = apply([], plan({ prePulls: [good], nodes, nodePulls: [], runs, now: NOW }));
    assert.equal(specOf(nps, 'n1')?.images[0]?.pin, true);
    const counts = { desired: 1, pulling: 1, succeeded: 0, failed: 0 };
    const bad = prePull('p', { images: [] }, { status: { nodes: counts } }, 2);
    const out = plan({ prePulls: [bad], nodes, nodePulls: nps, now: NOW });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, counts);
  });
});
