// The pull queue's scheduling, with a runtime whose pulls the test finishes by hand: at most
// `concurrency` pulls at once, present images skipped, refusals and failures with reasons.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentMetrics } from './metrics.js';
import { PullQueue, type ImageRuntime } from './pull-queue.js';

class ManualRuntime implements ImageRuntime {
  readonly present = new Map<string, number>();
  readonly started: string[] = [];
  active = 0;
  maxActive = 0;
  private readonly pending = new Map<string, { resolve: (id: string) => void; reject: (e: Error) => void }>();
  private readonly waiters: Array<() => void> = [];

  async status(image: string) {
    const size = this.present.get(image);
    return size === undefined ? undefined : { id: `sha256:${image.length}`, size };
  }

  pull(image: string, _signal?: AbortSignal): Promise<string> {
    this.started.push(image);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (const w of this.waiters.splice(0)) w();
    return new Promise((resolve, reject) => this.pending.set(image, { resolve, reject }));
  }

  /** Resolves once `n` pulls have started. */
  async startedCount(n: number): Promise<void> {
    while (this.started.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }

  finish(image: string, error?: Error): void {
    const p = this.pending.get(image);
    assert.ok(p, `${image} is being pulled`);
    this.pending.delete(image);
    this.active--;
    if (error) p.reject(error);
    else {
      this.present.set(image, 1000);
      p.resolve(`sha256:${image.length}`);
    }
  }
}

describe('pull queue', () => {
  it('pulls at most `concurrency` images at a time and reports each state', async () => {
    const runtime = new ManualRuntime();
    const metrics = new AgentMetrics();
    const queue = new PullQueue({ runtime, concurrency: 2, metrics });
    queue.assign(['a', 'b', 'c', 'd'], 'test');
    await runtime.startedCount(2);
    assert.deepEqual(runtime.started, ['a', 'b']);
    assert.deepEqual(
      queue.list().map((s) => [s.image, s.state]),
      [
        ['a', 'pulling'],
        ['b', 'pulling'],
        ['c', 'pending'],
        ['d', 'pending'],
      ],
    );
    runtime.finish('a');
    await runtime.startedCount(3);
    runtime.finish('b', new Error('failed to resolve reference "b": not found'));
    await runtime.startedCount(4);
    runtime.finish('c');
    runtime.finish('d');
    await queue.idle();
    assert.equal(runtime.maxActive, 2);
    const states = Object.fromEntries(queue.list().map((s) => [s.image, s]));
    assert.equal(states.a?.state, 'present');
    assert.equal(states.b?.state, 'failed');
    assert.equal(states.b?.code, 'PULL_FAILED');
    assert.match(states.b?.reason ?? '', /not found/);
    const gauge = await metrics.images.get();
    const byState = Object.fromEntries(gauge.values.map((v) => [v.labels.state, v.value]));
    assert.deepEqual(byState, { pending: 0, pulling: 0, present: 3, failed: 1 });
  });

  it('skips present images, re-queues failed ones, refuses when the guard says so, releases after', async () => {
    const runtime = new ManualRuntime();
    runtime.present.set('here', 5);
    let refuse = true;
    const released: Array<[string, boolean]> = [];
    const disk = {
      mark: '1000 bytes',
      mountpoint: '/var/lib',
      imageFsUsedBytes: 10,
      reservedBytes: 0,
    };
    const guarded: string[] = [];
    const queue = new PullQueue({
      runtime,
      concurrency: 1,
      guard: async (image) => {
        guarded.push(image);
        return refuse
          ? { refuse: { code: 'DISK_HIGH_WATER', reason: 'disk full' }, disk }
          : { disk, release: (ok) => released.push([image, ok]) };
      },
    });
    queue.assign(['here', 'new'], 'test');
    await queue.idle();
    assert.equal(queue.get('here')?.state, 'present');
    assert.equal(queue.get('here')?.alreadyPresent, true);
    assert.deepEqual(guarded, ['new'], 'present images are not checked against the disk');
    assert.deepEqual(
      [queue.get('new')?.state, queue.get('new')?.code, queue.get('new')?.reason],
      ['failed', 'DISK_HIGH_WATER', 'disk full'],
    );
    assert.deepEqual(queue.get('new')?.disk, disk, 'what the check saw is in the status');
    assert.deepEqual(runtime.started, [], 'nothing pulled');

    refuse = false;
    queue.assign(['new', 'new', 'broken'], 'again');
    await runtime.startedCount(1);
    assert.deepEqual(released, [], 'reserved while pulling');
    runtime.finish('new');
    await runtime.startedCount(2);
    runtime.finish('broken', new Error('connection reset'));
    await queue.idle();
    assert.equal(queue.get('new')?.state, 'present');
    assert.equal(queue.get('new')?.reason, undefined, 'the old reason is gone');
    assert.deepEqual(queue.get('new')?.disk, disk);
    assert.deepEqual(runtime.started, ['new', 'broken'], 'assigned twice while pending: pulled once');
    assert.deepEqual(released, [
      ['new', true],
      ['broken', false],
    ]);
    assert.equal(queue.get('broken')?.code, 'PULL_FAILED');
  });

  it('rejects a concurrency below 1', () => {
    assert.throws(() => new PullQueue({ runtime: new ManualRuntime(), concurrency: 0 }), /concurrency/);
  });
});

describe('pull queue changes', () => {
  it('raises and lowers its concurrency while running', async () => {
    const runtime = new ManualRuntime();
    const queue = new PullQueue({ runtime, concurrency: 1 });
    queue.assign(['a', 'b', 'c', 'd'], 'test');
    await runtime.startedCount(1);
    queue.setConcurrency(3);
    await runtime.startedCount(3);
    assert.deepEqual(runtime.started, ['a', 'b', 'c']);
    queue.setConcurrency(1);
    runtime.finish('a');
    runtime.finish('b');
    await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(runtime.started, ['a', 'b', 'c'], 'no new pull while 1 is still running');
    runtime.finish('c');
    await runtime.startedCount(4);
    runtime.finish('d');
    await queue.idle();
    assert.equal(queue.getConcurrency(), 1);
    assert.throws(() => queue.setConcurrency(0), /concurrency/);
  });

  it('drops an entry: a waiting one never starts, a running pull is cancelled, the list forgets both', async () => {
    const runtime = new ManualRuntime();
    const signals = new Map<string, AbortSignal>();
    const pull = runtime.pull.bind(runtime);
    runtime.pull = (image: string, signal?: AbortSignal) => {
      if (signal) signals.set(image, signal);
      return pull(image);
    };
    const metrics = new AgentMetrics();
    const queue = new PullQueue({ runtime, concurrency: 1, metrics });
    queue.assign(['running', 'waiting', 'kept'], 'test');
    await runtime.startedCount(1);
    assert.equal(queue.drop('waiting'), true);
    assert.equal(queue.drop('running'), true);
    assert.equal(queue.drop('nothing'), false);
    assert.equal(signals.get('running')?.aborted, true, 'the running pull was cancelled');
    runtime.finish('running', new Error('PullImage: Cancelled on client'));
    await runtime.startedCount(2);
    assert.deepEqual(runtime.started, ['running', 'kept']);
    runtime.finish('kept');
    await queue.idle();
    assert.deepEqual(
      queue.list().map((s) => [s.image, s.state]),
      [['kept', 'present']],
      'the cancelled pull wrote nothing back',
    );
    const gauge = await metrics.images.get();
    const byState = Object.fromEntries(gauge.values.map((v) => [v.labels.state, v.value]));
    assert.deepEqual(byState, { pending: 0, pulling: 0, present: 1, failed: 0 });
  });

  it('pulls a present image again when it holds another digest than expected', async () => {
    const runtime = new ManualRuntime();
    const digests = new Map<string, string[]>([['r/app:v1', ['r/app@sha256:old']]]);
    runtime.present.set('r/app:v1', 10);
    runtime.status = async (image: string) => {
      const size = runtime.present.get(image);
      return size === undefined
        ? undefined
        : { id: 'sha256:id', size, repoDigests: digests.get(image) ?? [] };
    };
    const queue = new PullQueue({ runtime, concurrency: 1 });
    queue.assign(['r/app:v1'], 'test', { digest: 'sha256:old' });
    await queue.idle();
    assert.equal(queue.get('r/app:v1')?.alreadyPresent, true);
    assert.equal(queue.get('r/app:v1')?.digest, 'sha256:old');
    assert.deepEqual(runtime.started, []);

    queue.assign(['r/app:v1'], 'test', { digest: 'sha256:new' });
    await runtime.startedCount(1);
    digests.set('r/app:v1', ['r/app@sha256:new', 'r/app@sha256:old']);
    runtime.finish('r/app:v1');
    await queue.idle();
    assert.equal(queue.get('r/app:v1')?.alreadyPresent, false);
    assert.equal(queue.get('r/app:v1')?.digest, 'sha256:new');
  });
});
