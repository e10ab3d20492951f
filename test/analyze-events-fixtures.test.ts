// `hoist analyze events` over event streams in the shapes kubelets produce (test/fixtures/events,
// described in its NOTES.md): what a failure is, which cause it has, when lazy pulling is advised,
// and the JSON the CLI prints.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildEventsReport, parseEventsJson } from '../src/analyze/index.js';
import { hoist } from './analyze-helpers.js';

const TIMEOUT = { timeout: 60_000 };
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/events/${name}`, import.meta.url));
const RATE_LIMIT = fixture('rate-limit-backoff-1.29.json');
const CANCELED = fixture('canceled-large-images-1.30.json');
const LEGACY = fixture('legacy-docker-1.24.json');

async function report(path: string) {
  return buildEventsReport(parseEventsJson(await readFile(path, 'utf8'), path));
}

describe('analyze events on kubelet event streams', () => {
  it('counts one failure per failed pull attempt, and each back-off once', async () => {
    const r = await report(RATE_LIMIT);
    assert.deepEqual(
      r.failures.map((f) => [f.node, f.cause, f.errImagePull, f.imagePullBackOff, f.count]),
      [
        ['node-a', 'rate-limit', 4, 10, 4],
        ['node-b', 'rate-limit', 2, 5, 2],
        // Its Failed events aged out: the back-offs prove at least one failed attempt.
        ['node-c', 'other', 0, 3, 1],
      ],
    );
    assert.equal(r.failuresByCause['rate-limit'], 6);
    assert.equal(r.failuresByCause.other, 1);
    assert.match(r.advice.find((a) => a.topic === 'rate-limit')?.message ?? '', /^6 failed pull attempts/);
  });

  it("counts containerd's no-progress cancel (code = Canceled, context canceled) as a timeout", async () => {
    const r = await report(CANCELED);
    assert.deepEqual(
      r.failures.map((f) => [f.image, f.node, f.cause, f.errImagePull, f.imagePullBackOff, f.count]),
      [['registry.example.com/ml/trainer:v3', 'gpu-1', 'timeout', 2, 4, 2]],
    );
    assert.equal(r.failuresByCause.timeout, 2);
    assert.equal(r.failuresByCause.other, 0);
  });

  it('advises lazy pulling for big images whose pulls are slow, not for one that pulled in 2.4 s', async () => {
    const r = await report(CANCELED);
    const lazy = r.advice.filter((a) => a.topic === 'lazy-pull');
    assert.equal(lazy.length, 1);
    assert.match(lazy[0]?.message ?? '', /trainer:v3/);
    assert.doesNotMatch(lazy[0]?.message ?? '', /notebook/);
    const notebook = r.images.find((i) => i.image.endsWith('notebook:2025.05'));
    assert.equal(notebook?.bytes, 6_200_000_000);
  });

  it('reads all three kubelet message formats', async () => {
    const formats = new Set<string>();
    for (const path of [RATE_LIMIT, CANCELED, LEGACY])
      for (const p of (await report(path)).pulls) formats.add(p.format);
    assert.deepEqual([...formats].sort(), ['current', 'legacy', 'waiting']);
    const legacy = await report(LEGACY);
    assert.equal(legacy.pullsWithoutDuration, 1);
    assert.deepEqual(
      legacy.failures.map((f) => [f.image, f.cause, f.count, f.imagePullBackOff]),
      [['grafana/grafana:9.4.3', 'timeout', 1, 2]],
    );
  });

  it('prints JSON with durations rounded to milliseconds', TIMEOUT, async () => {
    const res = await hoist(['analyze', 'events', RATE_LIMIT, CANCELED, LEGACY, '--output', 'json']);
    assert.equal(res.code, 0, res.stderr);
    assert.doesNotMatch(res.stdout, /\d\.\d{4,}/, 'no float noise');
    const doc = JSON.parse(res.stdout) as {
      pulls: Array<{ image: string; seconds: number; secondsIncludingWaiting: number | null }>;
      failuresByCause: Record<string, number>;
      images: Array<{ image: string; seconds: { mean: number } }>;
    };
    const seconds = Object.fromEntries(doc.pulls.map((p) => [p.image, p.seconds]));
    assert.equal(seconds['quay.io/prometheus/prometheus:v2.45.0'], 115.516);
    assert.equal(seconds['busybox:1.36'], 0.85);
    assert.equal(seconds['registry.example.com/ml/trainer:v3'], 432.48);
    const trainer = doc.images.find((i) => i.image === 'registry.example.com/ml/trainer:v3');
    assert.equal(trainer?.seconds.mean, 367.299); // (432.48 + 302.117) / 2 = 367.2985
    assert.deepEqual(doc.failuresByCause, {
      'rate-limit': 6,
      'not-found': 0,
      unauthorized: 0,
      timeout: 3,
      'disk-pressure': 0,
      other: 1,
    });
  });
});
