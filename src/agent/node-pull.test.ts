// Cluster mode's logic without a cluster: the queue's retries and progress timeout on a manual
// clock, the coalescing status writer, the pin budget, pull secrets, and the NodePull sync
// driving a queue with a scripted runtime, fake pins and a recorded status.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { IngestStatus, PinOutcome } from '../cri/index.js';
import { NodePullSync, type PinPort } from './node-pull-sync.js';
import { imageStatusOf, wantedImages, type NodePull, type NodePullStatus } from './node-pull.js';
import { PinBudget } from './pin-budget.js';
import { ingestsMoved, ProgressWatchdog } from './progress-watchdog.js';
import { PullQueue, type ImageRuntime } from './pull-queue.js';
import { PullSecrets, secretCredentials, type KubeSecret } from './pull-secrets.js';
import { retryDelayMs } from './retry-backoff.js';
import { StatusWriter } from './status-writer.js';
import { ManualClock, settle } from '../../test/helpers/manual-clock.js';

const NOT_FOUND =
  'PullImage: failed to pull and unpack image "r.example/team/missing:v1": failed to resolve reference "r.example/team/missing:v1": r.example/team/missing:v1: not found';

/** A runtime whose pulls succeed or fail as scripted, and that honours the abort signal. */
class ScriptedRuntime implements ImageRuntime {
  readonly present = new Map<string, { id: string; size: number; repoDigests: string[] }>();
  readonly pulls: string[] = [];
  readonly auth: Array<string | undefined> = [];
  /** Per image: the errors of its next pulls (then success). */
  readonly failures = new Map<string, Array<Error & { code?: string }>>();
  /** Images whose pulls hang until aborted. */
  readonly hang = new Set<string>();
  /** The manifest digest a pull of the image brings (default sha256:dd...). */
  readonly digestOf = new Map<string, string>();

  async status(image: string) {
    return this.present.get(image);
  }

  pull(image: string, signal: AbortSignal): Promise<string> {
    this.pulls.push(image);
    const next = this.failures.get(image)?.shift();
    if (next) return Promise.reject(next);
    if (this.hang.has(image)) {
      return new Promise((_, reject) =>
        signal.addEventListener('abort', () =>
          reject(Object.assign(new Error('PullImage: Cancelled on client'), { code: 'CANCELLED' })),
        ),
      );
    }
    const id = `sha256:${image.length.toString(16).padStart(64, '0')}`;
    const repo = image.replace(/:[^/:]+$/, '');
    this.present.set(image, {
      id,
      size: 1000 + image.length,
      repoDigests: [`${repo}@${this.digestOf.get(image) ?? `sha256:${'d'.repeat(64)}`}`],
    });
    return Promise.resolve(id);
  }
}

const notFound = () => Object.assign(new Error(NOT_FOUND), { code: 'NOT_FOUND' });

describe('retries and progress timeout', () => {
  it('retries with doubling backoff, keeps the reason while waiting, fails after the limit', async () => {
    const clock = new ManualClock();
    const runtime = new ScriptedRuntime();
    runtime.failures.set('r.example/team/missing:v1', [notFound(), notFound(), notFound()]);
    runtime.failures.set('r.example/team/flaky:v1', [notFound()]);
    const queue = new PullQueue({ runtime, concurrency: 2, timers: clock, now: clock.date });
    queue.assign(['r.example/team/missing:v1', 'r.example/team/flaky:v1'], 't', {
      retryLimit: 2,
      retryBackoffSeconds: 10,
    });
    await settle();
    const waiting = queue.get('r.example/team/missing:v1');
    assert.equal(waiting?.state, 'pending');
    assert.equal(waiting?.attempts, 1);
    assert.equal(waiting?.code, 'PULL_FAILED');
    assert.equal(waiting?.runtimeCode, 'NOT_FOUND');
    assert.match(waiting?.reason ?? '', /not found$/);
    assert.equal(waiting?.retryAt, new Date(clock.date().getTime() + 10_000).toISOString());
    assert.deepEqual(clock.delays(), [10_000, 10_000]);

    await clock.advance(10_000);
    assert.equal(queue.get('r.example/team/flaky:v1')?.state, 'present', 'the retry succeeded');
    assert.equal(queue.get('r.example/team/flaky:v1')?.attempts, 2);
    assert.equal(queue.get('r.example/team/flaky:v1')?.code, undefined);
    assert.deepEqual(clock.delays(), [20_000], 'the second wait doubles');
    await clock.advance(20_000);
    const failed = queue.get('r.example/team/missing:v1');
    assert.equal(failed?.state, 'failed');
    assert.equal(failed?.attempts, 3, '1 + retryLimit attempts');
    assert.deepEqual(clock.delays(), []);
    assert.equal(runtime.pulls.filter((p) => p.includes('missing')).length, 3);
  });

  it('caps the backoff at 10 minutes', () => {
    assert.equal(retryDelayMs(10, 1), 10_000);
    assert.equal(retryDelayMs(10, 3), 40_000);
    assert.equal(retryDelayMs(10, 20), 600_000);
  });

  it('cancels a pull whose ingests stop moving and reports PULL_TIMEOUT', async () => {
    const clock = new ManualClock();
    const runtime = new ScriptedRuntime();
    runtime.hang.add('r.example/big:v1');
    let ingests: IngestStatus[] = [];
    const watchdog = new ProgressWatchdog({
      sample: async () => ingests,
      intervalMs: 1000,
      now: clock.now,
      timers: clock,
    });
    const queue = new PullQueue({
      runtime,
      concurrency: 1,
      stallWatch: watchdog,
      timers: clock,
      now: clock.date,
    });
    queue.assign(['r.example/big:v1'], 't', { progressTimeoutSeconds: 5 });
    await settle();
    // Bytes arrive for 8 s: longer than the timeout, but never 5 s without progress.
    for (let s = 1; s <= 8; s++) {
      ingests = [{ ref: 'layer-sha256:a', offset: s * 1000, total: 10_000, expected: '' }];
      await clock.advance(1000);
    }
    assert.equal(queue.get('r.example/big:v1')?.state, 'pulling');
    await clock.advance(4000);
    assert.equal(queue.get('r.example/big:v1')?.state, 'pulling', '4 s without progress');
    await clock.advance(1000);
    const s = queue.get('r.example/big:v1');
    assert.equal(s?.state, 'failed');
    assert.equal(s?.code, 'PULL_TIMEOUT');
    assert.equal(s?.reason, 'no download progress for 5 s: pull cancelled');
    assert.deepEqual(clock.delays(), [], 'the watchdog stops sampling once nothing is watched');
  });

  it('counts a new or finished ingest as progress, an unchanged one not', () => {
    const m = (entries: Array<[string, number]>) => new Map(entries);
    assert.equal(ingestsMoved(m([['a', 5]]), m([['a', 5]])), false);
    assert.equal(ingestsMoved(m([['a', 5]]), m([['a', 6]])), true);
    assert.equal(ingestsMoved(m([['a', 5]]), m([])), true);
    assert.equal(ingestsMoved(m([['a', 5]]), m([['b', 0]])), true);
  });
});

describe('status writer', () => {
  it('writes the first value at once, then at most once a second with the latest value', async () => {
    const clock = new ManualClock();
    const written: number[] = [];
    const writer = new StatusWriter<{ n: number }>({
      write: async (v) => {
        written.push(v.n);
      },
      now: clock.now,
      timers: clock,
    });
    writer.set({ n: 1 });
    await clock.advance(0);
    for (let n = 2; n <= 50; n++) writer.set({ n });
    await clock.advance(999);
    assert.deepEqual(written, [1]);
    await clock.advance(1);
    assert.deepEqual(written, [1, 50]);
    writer.set({ n: 50 });
    await clock.advance(5000);
    assert.deepEqual(written, [1, 50], 'an unchanged value is not written again');
  });

  it('retries a failed write with a growing wait', async () => {
    const clock = new ManualClock();
    let fail = 2;
    const attempts: number[] = [];
    const writer = new StatusWriter<string>({
      write: async () => {
        attempts.push(clock.nowMs);
        if (fail-- > 0) throw new Error('503');
      },
      now: clock.now,
      timers: clock,
    });
    writer.set('x');
    await clock.advance(10_000);
    assert.deepEqual(attempts, [0, 2000, 6000]);
  });
});

describe('pin budget', () => {
  it('grants in order until the limit, keeps a granted pin, frees on release', () => {
    const budget = new PinBudget(100);
    assert.equal(budget.grant('a', 60), undefined);
    assert.match(
      budget.grant('b', 50) ?? '',
      /^not pinned: its 50 bytes would take .* past --pin-budget-bytes 100 \(60 bytes pinned\)$/,
    );
    assert.equal(budget.grant('a', 60), undefined, 'a granted pin stays granted');
    budget.release('a');
    assert.equal(budget.grant('b', 50), undefined);
    assert.equal(new PinBudget(undefined).grant('huge', 1e15), undefined);
  });
});

const dockerConfigSecret = (name: string, auths: Record<string, unknown>): KubeSecret => ({
  metadata: { name, namespace: 'hoist-system' },
  type: 'kubernetes.io/dockerconfigjson',
  data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
});

describe('pull secrets', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  it('matches the image registry like the auth file does', async () => {
    const secrets: Record<string, KubeSecret> = {
      other: dockerConfigSecret('other', { 'ghcr.io': { auth: b64('g:1') } }),
      mine: dockerConfigSecret('mine', {
        'https://index.docker.io/v1/': { username: 'u', password: 's3cret' },
      }),
    };
    const ps = new PullSecrets({ namespace: 'hoist-system', read: async (n) => secrets[n] });
    assert.deepEqual(await ps.credentialsFor('docker.io/library/nginx:1', ['other', 'mine']), {
      username: 'u',
      password: 's3cret',
    });
    assert.equal(await ps.credentialsFor('quay.io/x/y:1', ['other', 'mine']), undefined, 'anonymous');
    assert.deepEqual(ps.cached('ghcr.io'), { username: 'g', password: '1' });
  });

  it('fails with the secret named, never its contents, when none is usable', async () => {
    const bad: KubeSecret = {
      metadata: { name: 'opaque' },
      type: 'Opaque',
      data: { password: b64('s3cret') },
    };
    const ps = new PullSecrets({ namespace: 'ns', read: async (n) => (n === 'opaque' ? bad : undefined) });
    await assert.rejects(
      ps.credentialsFor('r.example/a:1', ['gone', 'opaque']),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'PULL_SECRET');
        assert.match(err.message, /pull secret ns\/gone not found; .*opaque is of type Opaque/);
        assert.doesNotMatch(err.message, /s3cret/);
        return true;
      },
    );
    assert.throws(
      () => secretCredentials(dockerConfigSecret('x', { 'r.example': { auth: b64('no-colon-s3cret') } })),
      (err: Error) => !err.message.includes('s3cret') && /auth is not base64/.test(err.message),
    );
  });
});

describe('NodePull spec and status (pure)', () => {
  it('applies defaults, keeps the first of repeated images, flags invalid references', () => {
    const wanted = wantedImages({
      metadata: { name: 'n' },
      spec: {
        images: [
          { image: 'r.example/a:v1', pin: true, pullSecrets: ['s'], retryLimit: 1 },
          { image: 'r.example/a:v1', pin: false },
          { image: 'Bad Ref' },
        ],
      },
    });
    assert.equal(wanted.length, 2);
    assert.deepEqual(wanted[0], {
      image: 'r.example/a:v1',
      key: 'r.example/a:v1',
      pin: true,
      pullSecrets: ['s'],
      retryLimit: 1,
      retryBackoffSeconds: 10,
      progressTimeoutSeconds: 300,
    });
    assert.match(wanted[1]?.invalid ?? '', /^invalid image reference/);
    assert.deepEqual(imageStatusOf(wanted[1]!, undefined, undefined), {
      image: 'Bad Ref',
      phase: 'Failed',
      reason: 'PullError',
      message: wanted[1]!.invalid,
      attempts: 0,
    });
  });
});

class FakePins implements PinPort {
  /** image -> pinned by Hoist */
  readonly pinned = new Set<string>();
  readonly calls: string[] = [];
  async pin(image: string): Promise<PinOutcome> {
    this.calls.push(`pin ${image}`);
    this.pinned.add(image);
    return { records: [image], changed: [image], foreign: [] };
  }
  async unpin(image: string): Promise<PinOutcome> {
    this.calls.push(`unpin ${image}`);
    const had = this.pinned.delete(image);
    return { records: [image], changed: had ? [image] : [], foreign: [] };
  }
  async records(image: string) {
    return [{ target: { digest: `t-${image}` } }];
  }
  async unpinAllExcept(keep: ReadonlySet<string>): Promise<PinOutcome> {
    const gone = [...this.pinned].filter((i) => !keep.has(`t-${i}`));
    for (const i of gone) this.pinned.delete(i);
    this.calls.push(`sweep keep=${[...keep].join(',')}`);
    return { records: gone, changed: gone, foreign: [] };
  }
}

function nodePull(
  generation: number,
  images: NonNullable<NodePull['spec']>['images'],
  maxConcurrentPulls = 2,
): NodePull {
  return {
    metadata: { name: 'node-a', generation },
    spec: { nodeName: 'node-a', maxConcurrentPulls, images },
  };
}

function setup(opts: { pinBudgetBytes?: number; wallClock?: () => Date } = {}, clock = new ManualClock()) {
  const runtime = new ScriptedRuntime();
  const queue = new PullQueue({ runtime, concurrency: 1, timers: clock, now: clock.date });
  const pins = new FakePins();
  const statuses: NodePullStatus[] = [];
  const sync = new NodePullSync({
    nodeName: 'node-a',
    queue,
    defaultConcurrency: 1,
    writeStatus: async (s) => {
      statuses.push(structuredClone(s));
    },
    pins,
    criPinned: async (image) => pins.pinned.has(image),
    pinCheck: { attempts: 1, intervalMs: 0 },
    timers: clock,
    now: clock.now,
    ...opts,
  });
  const last = () => statuses.at(-1);
  const byImage = () => new Map((last()?.images ?? []).map((i) => [i.image, i]));
  return { clock, runtime, queue, pins, statuses, sync, last, byImage };
}

describe('NodePull sync', () => {
  const good = 'r.example/team/good:v1';
  const bad = 'r.example/team/missing:v1';

  it('pulls each entry on its own: one succeeds, one fails NotFound after its retries', async () => {
    const { clock, runtime, queue, sync, last, byImage, statuses } = setup();
    runtime.failures.set(bad, [notFound(), notFound()]);
    sync.apply(
      nodePull(3, [
        { image: bad, retryLimit: 1, retryBackoffSeconds: 5 },
        { image: good, pin: false },
      ]),
    );
    assert.equal(queue.getConcurrency(), 2, 'spec.maxConcurrentPulls');
    await clock.advance(0);
    assert.equal(statuses.length, 1, 'one write for the first burst of changes');
    assert.equal(last()?.observedGeneration, 3);
    await clock.advance(1000);
    let s = byImage();
    assert.equal(s.get(good)?.phase, 'Succeeded');
    assert.equal(s.get(good)?.imageId, runtime.present.get(good)?.id);
    assert.equal(s.get(good)?.digest, `sha256:${'d'.repeat(64)}`);
    assert.equal(s.get(good)?.pinned, false);
    assert.equal(s.get(bad)?.phase, 'Pending', 'waiting for its retry');
    assert.equal(s.get(bad)?.reason, 'NotFound', 'the reason stays while waiting');
    assert.equal(s.get(bad)?.attempts, 1);
    await clock.advance(5000);
    s = byImage();
    assert.equal(s.get(bad)?.phase, 'Failed');
    assert.equal(s.get(bad)?.reason, 'NotFound');
    assert.equal(s.get(bad)?.attempts, 2);
    assert.match(s.get(bad)?.message ?? '', /not found$/);
    assert.ok(s.get(bad)?.finishedAt);
    assert.equal(s.get(good)?.phase, 'Succeeded', 'unaffected');
    assert.deepEqual(last()?.summary, { images: 2, pending: 0, pulling: 0, succeeded: 1, failed: 1 });
  });

  it('a new run gives a failed image fresh attempts, and leaves a present one alone', async () => {
    const { clock, runtime, sync, byImage } = setup();
    const R1 = '2026-12-01T03:00:00Z';
    const R2 = '2026-12-02T03:00:00Z';
    const spec = (run: string) => [
      { image: bad, retryLimit: 1, retryBackoffSeconds: 5, run },
      { image: good, run },
    ];
    runtime.failures.set(bad, [notFound(), notFound()]);
    sync.apply(nodePull(1, spec(R1)));
    await clock.advance(10_000);
    assert.equal(byImage().get(bad)?.phase, 'Failed');
    assert.equal(byImage().get(bad)?.attempts, 2);
    assert.equal(byImage().get(bad)?.run, R1, 'the status says which run it answers');
    assert.equal(byImage().get(good)?.phase, 'Succeeded');
    assert.deepEqual(runtime.pulls, [bad, good, bad]);

    // The same spec again (a resync): nothing is retried.
    sync.apply(nodePull(1, spec(R1)));
    await clock.advance(10_000);
    assert.equal(runtime.pulls.length, 3);

    // The next run: the failed image is tried again from attempt 1, the present one is not.
    runtime.failures.set(bad, [notFound()]);
    sync.apply(nodePull(2, spec(R2)));
    await clock.advance(0);
    assert.equal(byImage().get(bad)?.run, R2);
    assert.equal(byImage().get(bad)?.attempts, 1, 'attempts start again');
    assert.equal(byImage().get(bad)?.phase, 'Pending', 'waiting for its retry');
    await clock.advance(10_000);
    assert.equal(byImage().get(bad)?.phase, 'Succeeded', 'the registry is back');
    assert.equal(byImage().get(bad)?.attempts, 2);
    assert.deepEqual(runtime.pulls, [bad, good, bad, bad, bad], 'good was not pulled again');
    assert.equal(byImage().get(good)?.phase, 'Succeeded');
    assert.equal(byImage().get(good)?.run, R2);
  });

  it('renews status.heartbeatTime on a new spec and every minute while pulling, not while idle', async () => {
    const clock = new ManualClock();
    const { runtime, sync, statuses } = setup(
      { wallClock: () => new Date(Date.UTC(2026, 0, 1) + clock.nowMs) },
      clock,
    );
    const heartbeat = () => statuses.at(-1)?.heartbeatTime;
    runtime.hang.add(good);
    sync.apply(nodePull(1, [{ image: good }]));
    await clock.advance(0);
    assert.equal(heartbeat(), '2026-01-01T00:00:00Z', 'the new spec is reported at once');
    await clock.advance(59_000);
    assert.equal(heartbeat(), '2026-01-01T00:00:00Z');
    await clock.advance(2_000);
    assert.equal(heartbeat(), '2026-01-01T00:01:00Z', 'renewed while pulling');
    await clock.advance(60_000);
    assert.equal(heartbeat(), '2026-01-01T00:02:00Z');
    // A new spec renews it; once nothing is left to pull, an idle node writes no heartbeats.
    runtime.hang.delete(good);
    sync.apply(nodePull(2, [{ image: bad }]));
    await clock.advance(1000);
    assert.equal(statuses.at(-1)?.summary?.pending, 0);
    assert.equal(heartbeat(), '2026-01-01T00:02:01Z', 'renewed for the new spec');
    const writes = statuses.length;
    await clock.advance(600_000);
    assert.equal(statuses.length, writes, 'idle: nothing written');
    await sync.close();
  });

  it('a pull that brings another digest than expected is retried until the tag catches up', async () => {
    const { clock, runtime, sync, byImage } = setup();
    const want = `sha256:${'e'.repeat(64)}`;
    sync.apply(nodePull(1, [{ image: good, digest: want, retryLimit: 3, retryBackoffSeconds: 5 }]));
    await clock.advance(1000);
    let s = byImage().get(good);
    assert.equal(s?.phase, 'Pending', 'a stale tag is not success');
    assert.equal(s?.reason, 'PullError');
    assert.match(s?.message ?? '', /tag cache may lag/);
    runtime.digestOf.set(good, want); // the mirror's tag cache expired
    await clock.advance(5000);
    s = byImage().get(good);
    assert.equal(s?.phase, 'Succeeded');
    assert.equal(s?.digest, want);
    assert.equal(s?.attempts, 2);
  });

  it('an image present at the expected digest succeeds without a pull; another digest is pulled again', async () => {
    const { clock, runtime, sync, byImage } = setup();
    runtime.present.set(good, {
      id: 'sha256:old',
      size: 5,
      repoDigests: [`r.example/team/good@sha256:${'a'.repeat(64)}`],
    });
    sync.apply(nodePull(1, [{ image: good, digest: `sha256:${'a'.repeat(64)}` }]));
    await clock.advance(1000);
    assert.equal(byImage().get(good)?.phase, 'Succeeded');
    assert.equal(byImage().get(good)?.imageId, 'sha256:old');
    assert.deepEqual(runtime.pulls, []);
    sync.apply(nodePull(2, [{ image: good, digest: `sha256:${'d'.repeat(64)}` }]));
    await clock.advance(1000);
    assert.deepEqual(runtime.pulls, [good], 'a changed digest is a new pull');
    assert.equal(byImage().get(good)?.digest, `sha256:${'d'.repeat(64)}`);
  });

  it('pins within the budget, reports CRI pinned, unpins when the entry goes', async () => {
    const { clock, pins, sync, byImage, queue } = setup({ pinBudgetBytes: 1030 });
    const other = 'r.example/team/other:v1';
    sync.apply(
      nodePull(1, [
        { image: good, pin: true },
        { image: other, pin: true },
      ]),
    );
    await clock.advance(1000);
    await sync.pinsSettled();
    await clock.advance(1000);
    assert.equal(byImage().get(good)?.pinned, true);
    assert.equal(byImage().get(other)?.pinned, false);
    assert.match(byImage().get(other)?.message ?? '', /^not pinned: .*--pin-budget-bytes 1030/);
    assert.deepEqual([...pins.pinned], [good]);

    // The pinned entry leaves: unpinned, gone from status; the queue forgets it.
    sync.apply(nodePull(2, [{ image: other, pin: true }]));
    await sync.pinsSettled();
    await clock.advance(1000);
    assert.deepEqual([...byImage().keys()], [other]);
    assert.equal(queue.get(good), undefined);
    assert.ok(!pins.pinned.has(good), 'unpinned');
    // The freed budget goes to the image that was waiting for it.
    await sync.pinsSettled();
    await clock.advance(1000);
    assert.equal(byImage().get(other)?.pinned, true);
    assert.equal(byImage().get(other)?.message, undefined);
    // Turning pin off unpins; on again pins.
    sync.apply(nodePull(3, [{ image: other, pin: false }]));
    await sync.pinsSettled();
    await clock.advance(1000);
    assert.equal(byImage().get(other)?.pinned, false);
    assert.ok(!pins.pinned.has(other));
    sync.apply(nodePull(4, [{ image: other, pin: true }]));
    await sync.pinsSettled();
    await clock.advance(1000);
    assert.equal(byImage().get(other)?.pinned, true);
  });

  it('sweeps pins an earlier run left on images no entry pins', async () => {
    const { sync, pins } = setup();
    pins.pinned.add('r.example/left/over:v1');
    pins.pinned.add(good);
    sync.apply(nodePull(1, [{ image: good, pin: true }]));
    await sync.pinsSettled();
    assert.ok(pins.pinned.has(good));
    assert.ok(!pins.pinned.has('r.example/left/over:v1'));
    assert.equal(pins.calls[0], `sweep keep=t-${good}`);
  });

  it('hands the entry pull secrets to the runtime, and withdraws everything when the NodePull goes', async () => {
    const { clock, sync, queue, statuses, pins } = setup();
    sync.apply(nodePull(1, [{ image: good, pin: true, pullSecrets: ['hoist-pull-1'] }]));
    assert.deepEqual(sync.pullSecretsFor(good), ['hoist-pull-1']);
    assert.equal(sync.pullSecretsFor('r.example/else:v1'), undefined);
    await clock.advance(1000);
    await sync.pinsSettled();
    const writes = statuses.length;
    sync.apply(undefined);
    await sync.pinsSettled();
    await clock.advance(5000);
    assert.equal(queue.get(good), undefined);
    assert.equal(pins.pinned.size, 0);
    assert.equal(statuses.length, writes, 'no status for an object that is gone');
  });
});

describe('NodePull sync: an emptied spec (the controller keeps one NodePull per node)', () => {
  const good = 'r.example/team/good:v1';
  const other = 'r.example/team/other:v1';
  const mirror = {
    storeBytes: 10,
    blobHits: 1,
    blobLookups: 2,
    servedBytes: 30,
    upstreamBytes: 20,
    observedAt: '2026-01-01T00:00:00Z',
  };

  /** Two entries pulled (one pinned), a pin left behind by a failed unpin, then withdrawn. */
  async function withdraw(how: 'deleted' | 'emptied') {
    const t = setup();
    t.sync.apply(
      nodePull(
        1,
        [
          { image: good, pin: true },
          { image: other, pin: false },
        ],
        3,
      ),
    );
    await t.clock.advance(1000);
    await t.sync.pinsSettled();
    assert.deepEqual([...t.pins.pinned], [good]);
    t.pins.pinned.add('r.example/left/over:v1');
    t.sync.setMirror(mirror);
    await t.clock.advance(1000);
    const writes = t.statuses.length;
    const sweeps = t.pins.calls.filter((c) => c.startsWith('sweep')).length;
    t.sync.apply(how === 'deleted' ? undefined : nodePull(2, [], 2));
    await t.sync.pinsSettled();
    await t.clock.advance(1000);
    return { ...t, writes, sweeps };
  }

  it('withdraws and unpins exactly as a deleted NodePull did, and keeps the concurrency', async () => {
    const deleted = await withdraw('deleted');
    const emptied = await withdraw('emptied');
    for (const r of [deleted, emptied]) {
      assert.equal(r.queue.get(good), undefined, 'withdrawn from the queue');
      assert.equal(r.queue.get(other), undefined);
      assert.deepEqual([...r.pins.pinned], [], 'its pin and the leftover one removed');
      assert.ok(r.runtime.present.has(good), 'images stay on the node: only kubelet GC removes them');
    }
    assert.deepEqual(
      emptied.pins.calls.filter((c) => !c.startsWith('sweep')),
      deleted.pins.calls.filter((c) => !c.startsWith('sweep')),
    );
    assert.equal(emptied.pins.calls.filter((c) => c.startsWith('sweep')).length, emptied.sweeps + 1);
    assert.equal(deleted.queue.getConcurrency(), 3);
    assert.equal(emptied.queue.getConcurrency(), 3, 'an empty list limits nothing');
  });

  it('reports the empty spec with the mirror figures, sweeps once, and takes work again', async () => {
    const { sync, statuses, writes, pins, clock, queue, runtime, last } = await withdraw('emptied');
    assert.ok(statuses.length > writes, 'the emptied NodePull gets a status, a deleted one none');
    assert.deepEqual(
      { ...last(), heartbeatTime: undefined },
      {
        observedGeneration: 2,
        heartbeatTime: undefined,
        summary: { images: 0, pending: 0, pulling: 0, succeeded: 0, failed: 0 },
        images: [],
        mirror,
      },
    );
    // The same empty spec again (the watch echoes the agent's own status writes): no new sweep.
    const sweeps = pins.calls.filter((c) => c.startsWith('sweep')).length;
    sync.apply(nodePull(2, [], 2));
    sync.apply(nodePull(2, [], 2));
    await sync.pinsSettled();
    assert.equal(pins.calls.filter((c) => c.startsWith('sweep')).length, sweeps);
    // Work comes back: pulled again (as after a re-created NodePull), its concurrency applies.
    runtime.present.delete(other);
    sync.apply(nodePull(3, [{ image: other }], 1));
    await clock.advance(2000);
    assert.equal(queue.getConcurrency(), 1);
    assert.equal(queue.get(other)?.state, 'present');
    assert.equal(runtime.pulls.filter((i) => i === other).length, 2);
    assert.deepEqual(last()?.summary, { images: 1, pending: 0, pulling: 0, succeeded: 1, failed: 0 });
  });
});
