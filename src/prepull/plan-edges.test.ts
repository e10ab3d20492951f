// Edges of the planning rules (docs/prepull.md) that plan.test.ts does not reach: where an
// agent's last sign of life comes from and which nodes can time out at all, the earliest wake-up
// among several, several PrePulls at once, an invalid spec next to a valid one, and how failed
// nodes are counted.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plan, type PlanInput, type PrePullInput, type RunResult } from './plan.js';
import { parsePrePullSpec } from './spec.js';
import type {
  Node,
  NodePull,
  NodePullImage,
  NodePullImageStatus,
  PrePull,
  PrePullSpecInput,
} from './types.js';
import { SPEC_TIME_ANNOTATION } from './types.js';

const NOW = new Date('2026-12-01T10:00:00Z');
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const A = 'docker.io/library/a:1';
const B = 'docker.io/library/b:1';
const TIMEOUT_MS = 300_000;

const node = (name: string): Node => ({ metadata: { name, uid: `uid-${name}` } });

function prePull(
  name: string,
  spec: PrePullSpecInput,
  extra: Partial<PrePull> = {},
  namespace: string | null = 'ns',
): PrePullInput {
  const object: PrePull = {
    metadata: { name, ...(namespace === null ? {} : { namespace }), uid: `uid-${name}`, generation: 1 },
    spec,
    ...extra,
  };
  return { object, parsed: parsePrePullSpec(spec) };
}

/** Digests resolved for `key` outside a run (no runTime), so entries carry no run. */
function resolved(key: string, images: Record<string, string>): Map<string, RunResult> {
  return new Map([[key, { images: new Map(Object.entries(images).map(([i, d]) => [i, { digest: d }])) }]]);
}

interface Held {
  /** Images the spec holds for ns/p, at these digests. */
  images: Record<string, string>;
  status?: NodePullImageStatus[];
  heartbeatTime?: string;
  specTime?: string;
  creationTimestamp?: string;
  sources?: string[];
}

/** A NodePull as the API server holds it (run-less entries, as before any schedule). */
function nodePull(name: string, h: Held): NodePull {
  return {
    metadata: {
      name,
      ...(h.creationTimestamp ? { creationTimestamp: h.creationTimestamp } : {}),
      ...(h.specTime ? { annotations: { [SPEC_TIME_ANNOTATION]: h.specTime } } : {}),
    },
    spec: {
      nodeName: name,
      maxConcurrentPulls: 2,
      images: Object.entries(h.images).map(([image, digest]) => ({
        image,
        digest,
        pin: false,
        retryLimit: 5,
        retryBackoffSeconds: 10,
        progressTimeoutSeconds: 300,
        sources: h.sources ?? ['ns/p'],
      })),
    },
    status: { ...(h.heartbeatTime ? { heartbeatTime: h.heartbeatTime } : {}), images: h.status ?? [] },
  };
}

const at = (iso: string) => new Date(iso);
const pulling = (image: string): NodePullImageStatus => ({ image, phase: 'Pulling' });

describe("plan: an agent's last sign of life", () => {
  const nodes = [node('n1'), node('n2')];
  const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 });
  const runs = resolved('ns/p', { [A]: D1 });
  const input = (n1: Held, now: string): PlanInput => ({
    prePulls: [p],
    nodes,
    // n2 waits: its NodePull is there, empty.
    nodePulls: [
      nodePull('n1', { status: [pulling(A)], ...n1, images: { [A]: D1 } }),
      nodePull('n2', { images: {} }),
    ],
    runs,
    now: at(now),
    agentTimeoutMs: TIMEOUT_MS,
  });
  const silent = (n1: Held, now: string) =>
    plan(input(n1, now))
      .nodePulls.map((a) => `${a.action}:${a.name}`)
      .join() === 'update:n2';

  it('without a heartbeat, is the spec-time annotation, else the NodePull creation', () => {
    const annotated: Held = { images: {}, specTime: '2026-12-01T10:00:00Z' };
    assert.equal(silent(annotated, '2026-12-01T10:05:00Z'), false);
    assert.equal(silent(annotated, '2026-12-01T10:05:01Z'), true);
    assert.deepEqual(plan(input(annotated, '2026-12-01T10:02:00Z')).wakeAt, at('2026-12-01T10:05:01Z'));
    const created: Held = { images: {}, creationTimestamp: '2026-12-01T10:01:00Z' };
    assert.equal(silent(created, '2026-12-01T10:06:00Z'), false);
    assert.equal(silent(created, '2026-12-01T10:06:01Z'), true);
  });

  it('is the latest of the three, and a time that does not parse is skipped', () => {
    const all: Held = {
      images: {},
      heartbeatTime: '2026-12-01T09:00:00Z',
      specTime: '2026-12-01T10:01:00Z',
      creationTimestamp: '2026-12-01T08:00:00Z',
    };
    assert.equal(silent(all, '2026-12-01T10:06:00Z'), false);
    assert.equal(silent(all, '2026-12-01T10:06:01Z'), true);
    const garbled: Held = { images: {}, heartbeatTime: 'yesterday', specTime: '2026-12-01T10:00:00Z' };
    assert.equal(silent(garbled, '2026-12-01T10:04:00Z'), false);
    assert.equal(silent(garbled, '2026-12-01T10:06:00Z'), true);
  });

  it('unknown (no time at all): the node is never given up on, and no wake-up is set for it', () => {
    const out = plan(input({ images: {} }, '2026-12-09T10:00:00Z'));
    assert.deepEqual(out.nodePulls, []);
    assert.equal(out.wakeAt, undefined);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 2, pulling: 1, succeeded: 0, failed: 0 });
  });

  it('matters only for a node that holds the wanted set and has images left to pull', () => {
    const quiet = { heartbeatTime: '2026-11-01T00:00:00Z', creationTimestamp: '2026-11-01T00:00:00Z' };
    // n1 finished long ago; n2 waits with an old digest it pulled long ago: neither is silent.
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 })],
      nodes: [node('n1'), node('n2'), node('n3')],
      nodePulls: [
        nodePull('n1', {
          ...quiet,
          images: { [A]: D1 },
          status: [{ image: A, phase: 'Succeeded', digest: D1 }],
        }),
        nodePull('n2', {
          ...quiet,
          images: { [A]: D2 },
          status: [{ image: A, phase: 'Succeeded', digest: D2 }],
        }),
        nodePull('n3', { images: { [A]: D1 }, heartbeatTime: '2026-12-01T09:59:00Z', status: [pulling(A)] }),
      ],
      runs,
      now: NOW,
      agentTimeoutMs: TIMEOUT_MS,
    });
    assert.deepEqual(out.nodePulls, []);
    assert.deepEqual(out.statuses[0]!.status.nodes, { desired: 3, pulling: 1, succeeded: 1, failed: 0 });
    assert.deepEqual(out.wakeAt, at('2026-12-01T10:04:01Z'), "only n3's timeout is watched");
  });
});

describe('plan: the earliest wake-up wins', () => {
  it('among nodes that may time out, whichever comes first in name order', () => {
    const p = prePull('p', { images: ['a:1'], maxConcurrentNodes: 2 });
    const wakeAt = (n1: string, n2: string) =>
      plan({
        prePulls: [p],
        nodes: [node('n1'), node('n2')],
        nodePulls: [
          nodePull('n1', { images: { [A]: D1 }, heartbeatTime: n1, status: [pulling(A)] }),
          nodePull('n2', { images: { [A]: D1 }, heartbeatTime: n2, status: [pulling(A)] }),
        ],
        runs: resolved('ns/p', { [A]: D1 }),
        now: NOW,
        agentTimeoutMs: TIMEOUT_MS,
      }).wakeAt?.toISOString();
    assert.equal(wakeAt('2026-12-01T09:58:00Z', '2026-12-01T09:59:00Z'), '2026-12-01T10:03:01.000Z');
    assert.equal(wakeAt('2026-12-01T09:59:00Z', '2026-12-01T09:58:00Z'), '2026-12-01T10:03:01.000Z');
  });

  it('among scheduled PrePulls, and between a schedule and a timeout', () => {
    // PrePulls are planned in name order: the first ("a") has the later run, the last none.
    const out = plan({
      prePulls: [
        prePull('a', { images: ['a:1'], schedule: '0 11 * * *' }),
        prePull('b', { images: ['b:1'], schedule: '30 10 * * *' }),
        prePull('c', { images: ['b:1'], schedule: '45 10 * * *' }),
        prePull('d', { images: ['b:1'] }),
      ],
      nodes: [],
      nodePulls: [],
      now: NOW,
    });
    assert.equal(out.wakeAt?.toISOString(), '2026-12-01T10:30:00.000Z');
    // n1 would time out at 10:04:01: after a run at 10:02, before one at 10:30.
    const withNode = (schedule: string) =>
      plan({
        prePulls: [prePull('p', { images: ['a:1'], schedule })],
        nodes: [node('n1')],
        nodePulls: [
          nodePull('n1', {
            images: { [A]: D1 },
            heartbeatTime: '2026-12-01T09:59:00Z',
            status: [pulling(A)],
          }),
        ],
        runs: resolved('ns/p', { [A]: D1 }),
        now: NOW,
        agentTimeoutMs: TIMEOUT_MS,
      }).wakeAt?.toISOString();
    assert.equal(withNode('30 10 * * *'), '2026-12-01T10:04:01.000Z');
    assert.equal(withNode('2 10 * * *'), '2026-12-01T10:02:00.000Z');
  });
});

describe('plan: several PrePulls', () => {
  it('lists statuses in namespace/name order, and a PrePull without namespace under ""', () => {
    const out = plan({
      prePulls: [
        prePull('a', { images: ['a:1'] }),
        prePull('z', { images: ['a:1'] }, {}, null),
        prePull('b', { images: ['a:1'] }),
      ],
      nodes: [],
      nodePulls: [],
      now: NOW,
    });
    assert.deepEqual(
      out.statuses.map((s) => [s.key, s.namespace, s.name]),
      [
        ['/z', '', 'z'],
        ['ns/a', 'ns', 'a'],
        ['ns/b', 'ns', 'b'],
      ],
    );
  });

  it('an invalid PrePull keeps its entry as kept: a valid one that wants the image wins it', () => {
    // n1 holds a:1@D1 for both; p's spec turns invalid, q now wants the tag unresolved.
    const held = nodePull('n1', {
      images: { [A]: D1 },
      sources: ['ns/p', 'ns/q'],
      status: [{ image: A, phase: 'Succeeded', digest: D1 }],
    });
    const out = plan({
      prePulls: [prePull('p', { images: [] }), prePull('q', { images: ['a:1'] })],
      nodes: [node('n1')],
      nodePulls: [held],
      now: NOW,
    });
    const n1 = out.nodePulls.find((a) => a.name === 'n1');
    assert.ok(n1 && n1.action === 'update');
    assert.deepEqual(
      n1.spec.images.map((e) => [e.image, e.digest, e.sources]),
      [[A, undefined, ['ns/p', 'ns/q']]],
    );
  });
});

describe('plan: counting failed nodes', () => {
  const p = prePull('p', { images: ['a:1', 'b:1'], maxConcurrentNodes: 1 });
  const runs = resolved('ns/p', { [A]: D1, [B]: D2 });
  const failedA: NodePullImageStatus = { image: A, phase: 'Failed', digest: D1, reason: 'NotFound' };

  it('a node still pulling after one image failed counts as failed, not pulling', () => {
    const out = plan({
      prePulls: [p],
      nodes: [node('n1'), node('n2')],
      nodePulls: [
        nodePull('n1', { images: { [A]: D1, [B]: D2 }, status: [failedA, pulling(B)] }),
        nodePull('n2', { images: {} }),
      ],
      runs,
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, []);
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 2, pulling: 0, succeeded: 0, failed: 1 });
    assert.deepEqual(
      st.images!.map((i) => [i.pulling, i.failed]),
      [
        [0, 1],
        [1, 0],
      ],
    );
    const progressing = st.conditions!.find((c) => c.type === 'Progressing')!;
    assert.equal(progressing.message, '1/2 nodes done, 0 pulling, 1 waiting');
  });

  it('a node waiting its turn after one image failed counts as failed, not waiting', () => {
    // n1 failed a:1 under the old spec, which lacks b:1; n2 holds the slot.
    const out = plan({
      prePulls: [p],
      nodes: [node('n1'), node('n2')],
      nodePulls: [
        nodePull('n1', { images: { [A]: D1 }, status: [failedA] }),
        nodePull('n2', { images: { [A]: D1, [B]: D2 }, status: [pulling(A), pulling(B)] }),
      ],
      runs,
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, []);
    const st = out.statuses[0]!.status;
    assert.deepEqual(st.nodes, { desired: 2, pulling: 1, succeeded: 0, failed: 1 });
    const progressing = st.conditions!.find((c) => c.type === 'Progressing')!;
    assert.equal(progressing.message, '1/2 nodes done, 1 pulling, 0 waiting');
  });
});

describe('plan: more edges', () => {
  it('acts on nodes in name order, whatever order they are listed in', () => {
    const names = ['n5', 'n2', 'n8', 'n1', 'n7', 'n3', 'n6', 'n4'];
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: '100%' })],
      nodes: names.map(node),
      nodePulls: [],
      now: NOW,
    });
    assert.deepEqual(
      out.nodePulls.map((a) => a.name),
      [...names].sort(),
    );
  });

  it('ignores a PrePull being deleted: no status, and its entries go (the NodePull stays, empty)', () => {
    const gone = prePull(
      'p',
      { images: ['a:1'] },
      { metadata: { name: 'p', namespace: 'ns', deletionTimestamp: '2026-12-01T09:00:00Z' } },
    );
    const out = plan({
      prePulls: [gone],
      nodes: [node('n1')],
      nodePulls: [nodePull('n1', { images: { [A]: D1 } })],
      now: NOW,
    });
    assert.deepEqual(out.statuses, []);
    assert.deepEqual(out.nodePulls, [
      { action: 'update', name: 'n1', spec: { nodeName: 'n1', maxConcurrentPulls: 2, images: [] } },
    ]);
  });

  it('an invalid PrePull keeps an entry stored without pin as not pinned', () => {
    const held = nodePull('n1', { images: { [A]: D1 } });
    // The CRD requires only `image`: an entry written by hand or by an older controller may lack pin.
    const { pin: _, ...rest } = held.spec.images[0]!;
    const withoutPin = rest as NodePullImage;
    const out = plan({
      prePulls: [prePull('p', { images: [] })],
      nodes: [node('n1')],
      nodePulls: [{ ...held, spec: { ...held.spec, images: [withoutPin] } }],
      now: NOW,
    });
    assert.deepEqual(out.nodePulls, []);
  });

  it('lists a failure the agent gave no reason for as PullError', () => {
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'] })],
      nodes: [node('n1')],
      nodePulls: [
        nodePull('n1', { images: { [A]: D1 }, status: [{ image: A, phase: 'Failed', digest: D1 }] }),
      ],
      runs: resolved('ns/p', { [A]: D1 }),
      now: NOW,
    });
    assert.deepEqual(out.statuses[0]!.status.images![0]!.failures, [{ node: 'n1', reason: 'PullError' }]);
  });

  it('reads the sign of life of a NodePull with no status and no annotations from its creation', () => {
    const bare: NodePull = {
      ...nodePull('n1', { images: { [A]: D1 } }),
      metadata: { name: 'n1', creationTimestamp: '2026-12-01T09:00:00Z' },
    };
    delete bare.status;
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1'], maxConcurrentNodes: 1 })],
      nodes: [node('n1'), node('n2')],
      nodePulls: [bare],
      runs: resolved('ns/p', { [A]: D1 }),
      now: NOW,
      agentTimeoutMs: TIMEOUT_MS,
    });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['create:n2'],
    );
    assert.equal(out.statuses[0]!.status.images![0]!.failures![0]!.reason, 'AgentUnavailable');
  });

  it('counts as pulling only the images a newly started node has yet to pull', () => {
    // n1 has a:1 from before; b:1 is new, so n1 waits for its turn, gets it, and pulls b:1 only.
    const out = plan({
      prePulls: [prePull('p', { images: ['a:1', 'b:1'] })],
      nodes: [node('n1')],
      nodePulls: [
        nodePull('n1', { images: { [A]: D1 }, status: [{ image: A, phase: 'Succeeded', digest: D1 }] }),
      ],
      runs: resolved('ns/p', { [A]: D1, [B]: D2 }),
      now: NOW,
    });
    assert.deepEqual(
      out.nodePulls.map((a) => `${a.action}:${a.name}`),
      ['update:n1'],
    );
    assert.deepEqual(
      out.statuses[0]!.status.images!.map((i) => [i.image, i.pulling, i.succeeded]),
      [
        [A, 0, 1],
        [B, 1, 0],
      ],
    );
  });

  it("a PrePull's wanted digest wins over what another keeps on a waiting node, even one run later", () => {
    // q ran at 09:00 (its new digest D3 goes to n0 first; n1 waits on D1); p, new, ran at 08:00.
    const q = prePull(
      'q',
      { images: ['a:1'], maxConcurrentNodes: 1 },
      {
        status: {
          lastScheduleTime: '2026-12-01T09:00:00Z',
          images: [
            { image: A, digest: `sha256:${'3'.repeat(64)}`, desired: 2, pulling: 1, succeeded: 0, failed: 0 },
          ],
        },
      },
    );
    const p = prePull('p', { images: ['a:1'], nodeSelector: { pool: 'p' } });
    const out = plan({
      prePulls: [p, q],
      nodes: [node('n0'), { metadata: { name: 'n1', uid: 'uid-n1', labels: { pool: 'p' } } }],
      nodePulls: [
        nodePull('n0', {
          images: { [A]: `sha256:${'3'.repeat(64)}` },
          sources: ['ns/q'],
          status: [pulling(A)],
        }),
        nodePull('n1', {
          images: { [A]: D1 },
          sources: ['ns/q'],
          status: [{ image: A, phase: 'Succeeded', digest: D1 }],
        }),
      ],
      runs: new Map([
        ['ns/p', { runTime: new Date('2026-12-01T08:00:00Z'), images: new Map([[A, { digest: D2 }]]) }],
      ]),
      now: NOW,
    });
    const n1 = out.nodePulls.find((a) => a.name === 'n1');
    assert.ok(n1 && n1.action === 'update');
    assert.deepEqual(
      n1.spec.images.map((e) => [e.digest, e.sources]),
      [[D2, ['ns/p', 'ns/q']]],
    );
  });

  it('shows no resolve error for a pinned image, even one a stored status carries', () => {
    const image = `docker.io/library/a:1@${D1}`;
    const out = plan({
      prePulls: [
        prePull(
          'p',
          { images: [image] },
          {
            status: {
              images: [
                { image, digest: D1, resolveError: 'old', desired: 0, pulling: 0, succeeded: 0, failed: 0 },
              ],
            },
          },
        ),
      ],
      nodes: [],
      nodePulls: [],
      now: NOW,
    });
    assert.deepEqual(out.statuses[0]!.status.images![0], {
      image,
      digest: D1,
      desired: 0,
      pulling: 0,
      succeeded: 0,
      failed: 0,
    });
  });
});
