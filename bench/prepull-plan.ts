// The PrePull planner at scale: 5,000 nodes × 50 images across four PrePulls with selectors and
// tolerations, nodes in mixed states (done, pulling, failed, waiting on an old digest after a
// scheduled update). Prints the time of one plan (median of several) and the memory used, and
// the same as JSON (`--output json` prints only the JSON). Pure CPU: no servers.
//
//   node --import tsx bench/prepull-plan.ts [--nodes 5000] [--runs 9] [--output json] [--only steady]
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  plan,
  PlanCache,
  type NodePullAction,
  type PlanInput,
  type PrePullInput,
  type RunResult,
} from '../src/prepull/plan.js';
import { parsePrePullSpec } from '../src/prepull/spec.js';
import type { Node, NodePull, NodePullImageStatus, PrePull, PrePullSpecInput } from '../src/prepull/types.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5000' },
    runs: { type: 'string', default: '9' },
    output: { type: 'string', default: 'text' },
    // Only this scenario (first, steady, update), for profiling one; the others report zeros.
    only: { type: 'string' },
  },
});
const NODES = Number(values.nodes);
const RUNS = Number(values.runs);
const NOW = new Date('2026-12-01T03:00:00Z');

/** mulberry32: a seeded PRNG, so every run plans the same cluster. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(42);
const digest = (s: string) => `sha256:${Buffer.from(s).toString('hex').padEnd(64, '0').slice(0, 64)}`;

function buildNodes(): Node[] {
  const nodes: Node[] = [];
  for (let i = 0; i < NODES; i++) {
    const gpu = i % 5 === 0;
    const name = `${gpu ? 'gpu' : 'cpu'}-${String(i).padStart(5, '0')}`;
    const taints: NonNullable<Node['spec']>['taints'] = [];
    if (gpu) taints.push({ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' });
    if (random() < 0.01) taints.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' });
    if (random() < 0.05) taints.push({ key: 'spot', effect: 'PreferNoSchedule' });
    nodes.push({
      metadata: {
        name,
        uid: `uid-${i}`,
        labels: {
          'kubernetes.io/hostname': name,
          'topology.kubernetes.io/zone': `zone-${'abc'[i % 3]}`,
          'node.kubernetes.io/instance-type': gpu ? 'p5.48xlarge' : 'm7i.8xlarge',
          ...(gpu ? { 'nvidia.com/gpu.present': 'true' } : {}),
        },
      },
      spec: { taints },
    });
  }
  return nodes;
}

const images = (prefix: string, n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => `registry.example/${prefix}/img-${i + from}:v1`);

function prePull(name: string, spec: PrePullSpecInput): PrePullInput {
  const object: PrePull = {
    metadata: { name, namespace: 'ml', uid: `uid-${name}`, generation: 3 },
    spec,
    status: { observedGeneration: 3, lastScheduleTime: '2026-11-30T03:00:00Z' },
  };
  return { object, parsed: parsePrePullSpec(spec), pullSecret: `hoist-pull-${name}` };
}

// 50 distinct images: 20 everywhere, 20 on GPU nodes, 10 in one zone, and a fourth PrePull that
// pins 5 of the base images on every node whatever its taints (a merge on every node).
const prePulls = [
  prePull('base', { images: images('base', 20), maxConcurrentNodes: '10%', schedule: '0 3 * * *' }),
  prePull('gpu', {
    images: images('gpu', 20),
    nodeSelector: { 'nvidia.com/gpu.present': 'true' },
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    maxConcurrentNodes: 50,
    maxConcurrentPullsPerNode: 4,
  }),
  prePull('zone-a', {
    images: images('zone', 10),
    nodeSelector: { 'topology.kubernetes.io/zone': 'zone-a' },
    maxConcurrentNodes: '25%',
  }),
  prePull('pinned', {
    images: images('base', 5),
    tolerations: [{ operator: 'Exists' }],
    pin: true,
    maxConcurrentNodes: '100%',
  }),
];

/** Old digests for everything (the last run), new ones for `base` (today's scheduled run). */
function resolutions(generation: 'old' | 'new'): Map<string, RunResult> {
  const runs = new Map<string, RunResult>();
  for (const p of prePulls) {
    if (!p.parsed.ok) throw new Error(p.parsed.error);
    const fresh = generation === 'new' && p.object.metadata.name === 'base';
    runs.set(`ml/${p.object.metadata.name}`, {
      ...(fresh ? { runTime: NOW } : {}),
      images: new Map(
        p.parsed.spec.images.map((i) => [i, { digest: digest(`${fresh ? 'new' : 'old'}:${i}`) }]),
      ),
    });
  }
  return runs;
}

/** The cluster after the last run settled: every node's NodePull, most done, some not. */
function settledNodePulls(nodes: Node[]): NodePull[] {
  const everywhere = prePulls.map((p) => ({
    ...p,
    parsed: parsePrePullSpec({ ...p.object.spec, maxConcurrentNodes: '100%' }),
  }));
  const first = plan({ prePulls: everywhere, nodes, nodePulls: [], runs: resolutions('old'), now: NOW });
  return first.nodePulls.map((a: NodePullAction) => {
    if (a.action === 'delete') throw new Error('no deletes on a fresh cluster');
    const roll = random();
    const status: NodePullImageStatus[] = a.spec.images.map((e, i) => {
      const base = { image: e.image, ...(e.digest ? { digest: e.digest } : {}) };
      if (roll < 0.85) return { ...base, phase: 'Succeeded' };
      if (roll < 0.9 && i === 0)
        return { ...base, phase: 'Failed', reason: 'DiskMark', message: 'image filesystem at 91%' };
      if (roll < 0.97) return { ...base, phase: i % 3 === 0 ? 'Pulling' : 'Succeeded' };
      return { ...base, phase: 'Pending' };
    });
    return { metadata: { name: a.name }, spec: a.spec, status: { images: status } };
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Measurement {
  /** Wall-clock time of one plan(). */
  medianMs: number;
  minMs: number;
  maxMs: number;
  /** CPU time (user + system) of one plan(): its cost whatever else runs on the machine. */
  medianCpuMs: number;
  actions: number;
  heapDeltaBytes: number;
}

function measure(scenario: string, input: PlanInput): Measurement {
  if (values.only !== undefined && values.only !== scenario) {
    return { medianMs: 0, minMs: 0, maxMs: 0, medianCpuMs: 0, actions: 0, heapDeltaBytes: 0 };
  }
  const times: number[] = [];
  const cpu: number[] = [];
  let actions = 0;
  let heapDelta = 0;
  plan(input); // warm-up (JIT)
  for (let i = 0; i < RUNS; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    const heap = process.memoryUsage().heapUsed;
    const t = performance.now();
    const c = process.cpuUsage();
    const out = plan(input);
    const used = process.cpuUsage(c);
    times.push(performance.now() - t);
    cpu.push((used.user + used.system) / 1000);
    heapDelta = Math.max(heapDelta, process.memoryUsage().heapUsed - heap);
    actions = out.nodePulls.length;
  }
  return {
    medianMs: median(times),
    minMs: Math.min(...times),
    maxMs: Math.max(...times),
    medianCpuMs: median(cpu),
    actions,
    heapDeltaBytes: heapDelta,
  };
}

const nodes = buildNodes();
const nodePulls = settledNodePulls(nodes);
const memBefore = process.memoryUsage();
// A new leader's first reconcile: nothing memoised.
const cold = measure('first', { prePulls, nodes, nodePulls, runs: resolutions('old'), now: NOW });
// Every later reconcile, with the controller's PlanCache: nothing changed, or a scheduled run
// moved one PrePull's digests (the update starts on 10% of its nodes).
const cache = new PlanCache();
const steady = measure('steady', { prePulls, nodes, nodePulls, runs: resolutions('old'), now: NOW, cache });
const update = measure('update', { prePulls, nodes, nodePulls, runs: resolutions('new'), now: NOW, cache });
const mem = process.memoryUsage();
const entries = nodePulls.reduce((n, np) => n + np.spec.images.length, 0);

const result = {
  benchmark: 'prepull-plan',
  nodes: NODES,
  images: 50,
  prePulls: prePulls.length,
  nodePullEntries: entries,
  runs: RUNS,
  firstReconcile: cold,
  steadyState: steady,
  scheduledUpdate: update,
  memory: {
    heapUsedBytes: mem.heapUsed,
    rssBytes: mem.rss,
    inputHeapBytes: memBefore.heapUsed,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  },
  node: process.version,
};

const MiB = 1024 * 1024;
await mkdir(join('bench', 'out'), { recursive: true });
await writeFile(join('bench', 'out', 'prepull-plan.json'), `${JSON.stringify(result, null, 2)}\n`);
if (values.output === 'json') {
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const line = (label: string, m: Measurement) =>
    `${label.padEnd(18)} median ${m.medianMs.toFixed(1)} ms wall (min ${m.minMs.toFixed(1)}, max ${m.maxMs.toFixed(1)}), ` +
    `${m.medianCpuMs.toFixed(1)} ms CPU, ` +
    `${m.actions} NodePull writes, ~${(m.heapDeltaBytes / MiB).toFixed(0)} MiB allocated`;
  process.stdout.write(
    [
      `plan(): ${NODES} nodes × 50 images, ${prePulls.length} PrePulls, ${entries} NodePull entries, ${RUNS} runs each`,
      line('first reconcile', cold),
      line('steady state', steady),
      line('scheduled update', update),
      `memory: heap ${(mem.heapUsed / MiB).toFixed(0)} MiB, rss ${(mem.rss / MiB).toFixed(0)} MiB`,
      JSON.stringify(result),
      '',
    ].join('\n'),
  );
}
