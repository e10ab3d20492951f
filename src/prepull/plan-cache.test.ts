// A PlanCache kept between plans (the controller keeps one per leadership term) must change no
// result: every memo key names everything its value depends on. Each case plans a sequence of
// cluster states over one cache and checks every result against a plan with a fresh cache.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { plan, PlanCache, type PlanInput, type PrePullInput, type RunResult } from './plan.js';
import { parsePrePullSpec } from './spec.js';
import type { Node, NodePull, PrePull, PrePullSpecInput } from './types.js';
import { applyNodePullActions } from '../../test/helpers/node-pull-actions.js';

const NOW = new Date('2026-12-01T10:00:00Z');
const LATER = new Date('2026-12-02T10:00:00Z');
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const A = 'docker.io/library/a:1';

const node = (name: string): Node => ({ metadata: { name, uid: `uid-${name}` } });

function prePull(name: string, spec: PrePullSpecInput, generation = 1): PrePullInput {
  const object: PrePull = { metadata: { name, namespace: 'ns', uid: `uid-${name}`, generation }, spec };
  return { object, parsed: parsePrePullSpec(spec) };
}

function runs(byKey: Record<string, { at: Date; images: Record<string, string> }>): Map<string, RunResult> {
  return new Map(
    Object.entries(byKey).map(([key, r]) => [
      key,
      { runTime: r.at, images: new Map(Object.entries(r.images).map(([i, d]) => [i, { digest: d }])) },
    ]),
  );
}

const apply = applyNodePullActions;

/** The agent: every spec image of the named nodes reported Succeeded at the spec's digest and run. */
function succeeded(nodePulls: NodePull[], names: string[]): NodePull[] {
  return nodePulls.map((np) =>
    names.includes(np.metadata.name)
      ? {
          ...np,
          status: {
            images: np.spec.images.map((e) => ({
              image: e.image,
              phase: 'Succeeded' as const,
              ...(e.digest ? { digest: e.digest } : {}),
              ...(e.run ? { run: e.run } : {}),
            })),
          },
        }
      : np,
  );
}

/** Plans each input in turn over one cache; each result must equal a fresh cache's. */
function plansAlike(inputs: PlanInput[]): void {
  const cache = new PlanCache();
  inputs.forEach((input, i) => {
    const fresh = plan(input);
    assert.deepEqual(plan({ ...input, cache }), fresh, `plan ${i + 1} of ${inputs.length}`);
  });
}

describe('plan: a kept PlanCache changes no result', () => {
  const nodes = [node('n1'), node('n2')];
  const base: PrePullSpecInput = { images: ['a:1'], maxConcurrentNodes: '100%' };

  it('keeps the specs of two configs apart, whichever field differs', () => {
    const variants: PrePullSpecInput[] = [
      base,
      { ...base, pin: true },
      { ...base, retry: { limit: 3 } },
      { ...base, retry: { backoffSeconds: 30 } },
      { ...base, retry: { limit: 1, backoffSeconds: 23 } },
      // Same digits as the one before, split differently: a key must separate its fields.
      { ...base, retry: { limit: 12, backoffSeconds: 3 } },
      { ...base, progressTimeoutSeconds: 60 },
      { ...base, maxConcurrentPullsPerNode: 1 },
    ];
    plansAlike(variants.map((spec) => ({ prePulls: [prePull('p', spec)], nodes, nodePulls: [], now: NOW })));
  });

  it('keeps the pull Secrets of two configs apart', () => {
    const withSecret = (pullSecret?: string): PrePullInput => ({
      ...prePull('p', base),
      ...(pullSecret ? { pullSecret } : {}),
    });
    plansAlike(
      [undefined, 'hoist-pull-p', 'hoist-pull-q'].map((s) => ({
        prePulls: [withSecret(s)],
        nodes,
        nodePulls: [],
        now: NOW,
      })),
    );
  });

  it('keeps two PrePulls of the same config apart', () => {
    plansAlike(
      ['p', 'q'].map((name) => ({ prePulls: [prePull(name, base)], nodes, nodePulls: [], now: NOW })),
    );
  });

  it('keeps two wanted sets of one run apart', () => {
    const p = prePull('p', base);
    plansAlike(
      [D1, D2].map((digest) => ({
        prePulls: [p],
        nodes,
        nodePulls: [],
        runs: runs({ 'ns/p': { at: NOW, images: { [A]: digest } } }),
        now: NOW,
      })),
    );
  });

  it('classifies one NodePull object again when the wanted digest, image or run changes', () => {
    const p = prePull('p', base);
    const first: PlanInput = {
      prePulls: [p],
      nodes,
      nodePulls: [],
      runs: runs({ 'ns/p': { at: NOW, images: { [A]: D1 } } }),
      now: NOW,
    };
    // The same NodePull objects all along: only the wanted set changes.
    const nps = succeeded(apply([], plan(first)), ['n1', 'n2']);
    const at = (input: Omit<PlanInput, 'nodes' | 'nodePulls'>): PlanInput => ({
      ...input,
      nodes,
      nodePulls: nps,
    });
    plansAlike([
      at({ prePulls: [p], now: NOW }),
      at({ prePulls: [p], runs: runs({ 'ns/p': { at: NOW, images: { [A]: D1 } } }), now: NOW }),
      at({ prePulls: [p], runs: runs({ 'ns/p': { at: LATER, images: { [A]: D1 } } }), now: LATER }),
      at({ prePulls: [p], runs: runs({ 'ns/p': { at: NOW, images: { [A]: D2 } } }), now: NOW }),
      at({ prePulls: [p], runs: runs({ 'ns/p': { at: LATER, images: { [A]: D1 } } }), now: LATER }),
      at({ prePulls: [prePull('p', { ...base, images: ['b:1'] }, 2)], now: NOW }),
    ]);
  });

  /** A NodePull holding `a:1` for ns/p at `digest` from `run`, reported Succeeded when `done`. */
  function holding(name: string, digest: string, run: string, done: boolean): NodePull {
    return {
      metadata: { name },
      spec: {
        nodeName: name,
        maxConcurrentPulls: 2,
        images: [
          {
            image: A,
            digest,
            run,
            pin: false,
            retryLimit: 5,
            retryBackoffSeconds: 10,
            progressTimeoutSeconds: 300,
            sources: ['ns/p'],
          },
        ],
      },
      status: { images: done ? [{ image: A, phase: 'Succeeded', digest, run }] : [] },
    };
  }
  const R0 = '2026-11-29T10:00:00Z';
  const R1 = '2026-11-30T10:00:00Z';
  const D3 = `sha256:${'3'.repeat(64)}`;

  it('keeps the entries of done nodes apart when their digest or stored run differs', () => {
    // A new run finds each node done at the digest it resolves: the node keeps its entry as is.
    const p = prePull('p', base);
    const at = (digest: string, run: string): PlanInput => ({
      prePulls: [p],
      nodes: [node('n1')],
      nodePulls: [holding('n1', digest, run, true)],
      runs: runs({ 'ns/p': { at: NOW, images: { [A]: digest } } }),
      now: NOW,
    });
    plansAlike([at(D1, R1), at(D2, R1), at(D1, R0)]);
    assert.deepEqual(plan(at(D2, R1)).nodePulls, []);
  });

  it('keeps the old entries of waiting nodes apart when their digest or run differs', () => {
    // One node at a time: n1 pulls the new digest, n2 waits on what it held.
    const p = prePull('p', { ...base, maxConcurrentNodes: 1 });
    const at = (digest: string, run: string): PlanInput => ({
      prePulls: [p],
      nodes,
      nodePulls: [holding('n1', D3, '2026-12-01T10:00:00Z', false), holding('n2', digest, run, true)],
      runs: runs({ 'ns/p': { at: NOW, images: { [A]: D3 } } }),
      now: NOW,
    });
    plansAlike([at(D1, R1), at(D2, R1), at(D1, R0)]);
    assert.deepEqual(plan(at(D2, R1)).nodePulls, []);
  });
});
