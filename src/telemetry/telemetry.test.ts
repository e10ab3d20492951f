import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  KubeError,
  type KubeObject,
  type ListWatchClient,
  type ResourceRef,
  type WatchEvent,
} from '../kube/index.js';
import {
  formatMirroredRegistries,
  imageRegistry,
  parseMirroredRegistries,
  PullTelemetry,
  registryLabel,
  Ring,
  slimEvent,
  summarise,
  viaFor,
  type PullRecord,
} from './index.js';

type ListStep = { items: KubeObject[]; resourceVersion: string };
type WatchStep = { events: WatchEvent<KubeObject>[]; end?: Error };

/** Scripted list/watch per field selector (one per event reason); unscripted watches hang. */
class FakeClient implements ListWatchClient {
  readonly hung = new EventEmitter();
  constructor(private readonly script: Map<string, { lists: ListStep[]; watches: WatchStep[] }>) {}

  private steps(opts: { fieldSelector?: string }) {
    const key = opts.fieldSelector ?? '';
    const s = this.script.get(key) ?? { lists: [], watches: [] };
    this.script.set(key, s);
    return { key, s };
  }

  async list<T extends KubeObject>(
    _ref: ResourceRef,
    opts: { fieldSelector?: string } = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const step = this.steps(opts).s.lists.shift() ?? { items: [], resourceVersion: '1' };
    return step as { items: T[]; resourceVersion: string };
  }

  watch<T extends KubeObject>(
    _ref: ResourceRef,
    opts: { fieldSelector?: string; signal: AbortSignal },
  ): AsyncIterable<WatchEvent<T>> {
    const { key, s } = this.steps(opts);
    const step = s.watches.shift();
    const hung = this.hung;
    return (async function* () {
      for (const ev of step?.events ?? []) yield ev as WatchEvent<T>;
      if (step?.end) throw step.end;
      hung.emit(key);
      if (!opts.signal.aborted) await once(opts.signal, 'abort');
    })();
  }
}

let rv = 100;
function pulled(
  name: string,
  count: number,
  message: string,
  node = 'node-a',
  uid = `uid-${name}`,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'team', uid, resourceVersion: String(rv++) },
    involvedObject: { kind: 'Pod', namespace: 'team', name: 'web-1', fieldPath: 'spec.containers{app}' },
    reason: 'Pulled',
    message,
    source: { component: 'kubelet', host: node },
    count,
    lastTimestamp: `2026-12-01T10:00:${String(count).padStart(2, '0')}Z`,
    managedFields: [{ manager: 'kubelet', operation: 'Update' }],
  };
}

const PULLED_SEL = 'involvedObject.kind=Pod,source=kubelet,reason=Pulled';
const MSG =
  'Successfully pulled image "ghcr.io/acme/app:1" in 3.5s (3.6s including waiting). Image size: 1000 bytes.';

async function value(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} registered`);
  const got = await metric.get();
  return got.values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((n, v) => n + v.value, 0);
}

describe('pull telemetry, pure parts', () => {
  it('the Node annotation: parse, format, via', () => {
    assert.deepEqual([...parseMirroredRegistries(' docker.io, GHCR.io,,')], ['docker.io', 'ghcr.io']);
    assert.equal(parseMirroredRegistries(undefined).size, 0);
    assert.equal(formatMirroredRegistries(['quay.io', 'docker.io', 'quay.io']), 'docker.io,quay.io');
    assert.equal(viaFor(new Set(['docker.io']), 'docker.io'), 'hoist');
    assert.equal(viaFor(new Set(['docker.io']), 'ghcr.io'), 'direct');
    assert.equal(viaFor(undefined, 'docker.io'), 'direct');
  });

  it('registries as containerd names them, and the bounded label', () => {
    assert.equal(imageRegistry('nginx:1.27'), 'docker.io');
    assert.equal(imageRegistry('index.docker.io/library/nginx'), 'docker.io');
    assert.equal(imageRegistry('127.0.0.1:5000/app@sha256:' + 'a'.repeat(64)), '127.0.0.1:5000');
    assert.equal(imageRegistry('not a reference'), undefined);
    const known = new Set(['docker.io']);
    assert.equal(registryLabel(known, 'docker.io'), 'docker.io');
    assert.equal(registryLabel(known, 'registry.example.com'), 'other');
    assert.equal(registryLabel(known, undefined), 'other');
  });

  it('the ring keeps the newest items, oldest first', () => {
    const ring = new Ring<number>(3);
    for (let i = 1; i <= 5; i++) ring.push(i);
    assert.deepEqual(ring.toArray(), [3, 4, 5]);
    assert.equal(ring.size, 3);
    ring.clear();
    assert.deepEqual(ring.toArray(), []);
  });

  it('summaries per image and via: count, median, p90 (nearest rank)', () => {
    const r = (image: string, via: 'hoist' | 'direct', seconds: number): PullRecord => ({
      namespace: 'n',
      pod: 'p',
      node: 'x',
      image,
      registry: 'docker.io',
      via,
      outcome: 'pulled',
      seconds,
      at: '2026-12-01T00:00:00Z',
    });
    const records = [
      ...[10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((s) => r('app', 'direct', s)),
      r('app', 'hoist', 2),
      r('app', 'hoist', 4),
      { ...r('app', 'hoist', 1), outcome: 'failed' as const },
    ];
    assert.deepEqual(summarise(records), [
      { image: 'app', via: 'direct', count: 10, medianSeconds: 50, p90Seconds: 90 },
      { image: 'app', via: 'hoist', count: 2, medianSeconds: 2, p90Seconds: 4 },
    ]);
  });

  it('slimEvent keeps what the parser and the cache read, and drops the rest', () => {
    const slim = slimEvent(pulled('e', 1, MSG));
    assert.equal(slim.managedFields, undefined);
    assert.equal(slim.metadata.uid, 'uid-e');
    assert.equal(slim.message, MSG);
    assert.deepEqual(slim.source, { component: 'kubelet', host: 'node-a' });
  });
});

describe('PullTelemetry with a scripted API', () => {
  it('counts growth of an event once: updates, a re-list after 410 Gone, events missed meanwhile', async () => {
    const first = pulled('old', 4, MSG); // history from before the start: records only
    const e1 = pulled('e1', 1, MSG);
    const e1b = { ...pulled('e1', 2, MSG), metadata: { ...e1.metadata, resourceVersion: String(rv++) } };
    const e1c = { ...pulled('e1', 3, MSG), metadata: { ...e1.metadata, resourceVersion: String(rv++) } };
    const e2 = pulled('e2', 2, MSG.replace('3.5s', '45s'));
    const client = new FakeClient(
      new Map([
        [
          PULLED_SEL,
          {
            lists: [
              { items: [first], resourceVersion: '10' },
              // After 410: e1 as already seen (count 2) would add nothing; it grew to 3 meanwhile,
              // and e2 is new.
              { items: [first, e1c, e2], resourceVersion: '20' },
            ],
            watches: [
              {
                events: [
                  { type: 'ADDED', object: e1 },
                  { type: 'MODIFIED', object: e1b },
                ],
                end: new KubeError(410, 'Gone', 'too old resource version'),
              },
            ],
          },
        ],
      ]),
    );
    const registry = new Registry();
    const telemetry = new PullTelemetry({
      client,
      registry,
      logger: pino({ enabled: false }),
      registries: ['ghcr.io'],
      via: (node) => (node === 'node-a' ? 'hoist' : 'direct'),
      maxRecords: 3,
    });
    const stop = new AbortController();
    const watchedAgain = new Promise<void>((resolve) => {
      let n = 0;
      client.hung.on(PULLED_SEL, () => {
        if (++n === 1) resolve();
      });
    });
    const seen: PullRecord[] = [];
    const off = telemetry.onRecord((r) => seen.push(r));
    await telemetry.start(stop.signal);
    await watchedAgain;
    stop.abort();
    off();
    // e1: 1 + 1 (watch) + 1 (re-list) = 3, e2: 2. The listed "old" (4) is not counted.
    assert.equal(await value(registry, 'hoist_image_pulls_total', { via: 'hoist', outcome: 'pulled' }), 5);
    assert.equal(await value(registry, 'hoist_image_pull_bytes_total', { via: 'hoist' }), 5000);
    const h = await registry.getSingleMetric('hoist_image_pull_duration_seconds')!.get();
    const bucket = (le: number) =>
      h.values.find(
        (v) =>
          (v as { metricName?: string }).metricName === 'hoist_image_pull_duration_seconds_bucket' &&
          v.labels.le === le &&
          v.labels.registry === 'ghcr.io',
      )?.value;
    assert.equal(bucket(2), 0);
    assert.equal(bucket(5), 3);
    assert.equal(bucket(30), 3);
    assert.equal(bucket(60), 5);
    // Records: one per event growth seen, including the listed history; the ring keeps 3.
    assert.equal(seen.length, 5);
    assert.equal(telemetry.recordCount, 3);
    assert.equal(telemetry.recent(10).length, 3);
    assert.equal(telemetry.slowest(1)[0]?.seconds, 45);
  });
});
