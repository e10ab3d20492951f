import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KubeConnectionError, KubeError } from './errors.js';
import { LeaderElector, type LeaseClient } from './leader-elector.js';
import type { Lease } from './lease-decision.js';
import type { KubeObject, ResourceRef } from './types.js';

/** One Lease in memory with the API server's optimistic concurrency, and a fake clock. */
class FakeLeases implements LeaseClient {
  lease: Lease | undefined;
  private rv = 0;
  nowMs = Date.parse('2026-12-01T10:00:00Z');
  /** Set to make every write fail as if the API server were unreachable. */
  down = false;
  writes: Array<{ at: number; holder: string | null | undefined }> = [];

  now = () => new Date(this.nowMs);
  sleep = async (ms: number) => {
    this.nowMs += ms;
    await new Promise((r) => setImmediate(r));
  };

  async get<T extends KubeObject>(): Promise<T | undefined> {
    if (this.down) throw new KubeConnectionError('KUBE_UNREACHABLE', 'down');
    return this.lease === undefined ? undefined : (structuredClone(this.lease) as unknown as T);
  }

  async create<T extends KubeObject>(_ref: ResourceRef, obj: T): Promise<T> {
    if (this.down) throw new KubeConnectionError('KUBE_UNREACHABLE', 'down');
    if (this.lease) throw new KubeError(409, 'AlreadyExists', 'exists');
    return this.store(obj);
  }

  async replace<T extends KubeObject>(_ref: ResourceRef, obj: T): Promise<T> {
    if (this.down) throw new KubeConnectionError('KUBE_UNREACHABLE', 'down');
    if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) {
      throw new KubeError(409, 'Conflict', 'stale');
    }
    return this.store(obj);
  }

  private store<T extends KubeObject>(obj: T): T {
    const lease = structuredClone(obj) as unknown as Lease;
    lease.metadata.resourceVersion = String(++this.rv);
    this.lease = lease;
    this.writes.push({ at: this.nowMs, holder: lease.spec?.holderIdentity });
    return structuredClone(lease) as unknown as T;
  }
}

const OPTS = {
  namespace: 'ns',
  name: 'hoist',
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
};

describe('LeaderElector', () => {
  it('creates the lease, renews it every retry period, and releases it on abort', async () => {
    const fake = new FakeLeases();
    const ac = new AbortController();
    const events: string[] = [];
    const elector = new LeaderElector(fake, { ...OPTS, identity: 'a', now: fake.now, sleep: fake.sleep });
    let leaderSignal: AbortSignal | undefined;
    const done = elector.run(ac.signal, {
      onStartedLeading: (s) => {
        leaderSignal = s;
        events.push(`started leader=${elector.isLeader()}`);
      },
      onStoppedLeading: () => events.push(`stopped aborted=${leaderSignal?.aborted}`),
      onNewLeader: (id) => events.push(`leader ${id}`),
    });
    while (fake.writes.length < 4) await new Promise((r) => setImmediate(r));
    ac.abort();
    await done;
    assert.deepEqual(events, ['leader a', 'started leader=true', 'stopped aborted=true']);
    assert.equal(elector.isLeader(), false);
    const renewGaps = fake.writes.slice(1, 4).map((w, i) => w.at - fake.writes[i]!.at);
    assert.deepEqual(renewGaps, [2000, 2000, 2000]);
    assert.equal(fake.lease?.spec?.holderIdentity, null, 'released');
    assert.equal(fake.lease?.spec?.leaseDurationSeconds, 1);
    assert.equal(fake.lease?.spec?.leaseTransitions, 0);
  });

  it("waits for another holder's lease to expire, then takes it with one more transition", async () => {
    const fake = new FakeLeases();
    const renewed = new Date(fake.nowMs).toISOString();
    fake.lease = {
      metadata: { name: 'hoist', namespace: 'ns', resourceVersion: '100' },
      spec: { holderIdentity: 'dead', renewTime: renewed, leaseDurationSeconds: 15, leaseTransitions: 2 },
    };
    const ac = new AbortController();
    const leaders: string[] = [];
    let startedAt = 0;
    const elector = new LeaderElector(fake, {
      ...OPTS,
      identity: 'b',
      now: fake.now,
      sleep: fake.sleep,
      random: () => 0,
    });
    const done = elector.run(ac.signal, {
      onStartedLeading: () => {
        startedAt = fake.nowMs;
        ac.abort();
      },
      onNewLeader: (id) => leaders.push(id),
    });
    await done;
    assert.deepEqual(leaders, ['dead', 'b']);
    assert.ok(startedAt - Date.parse(renewed) > 15_000, 'not before the lease expired');
    assert.equal(fake.writes[0]?.holder, 'b');
    assert.equal(fake.writes[0] && fake.lease?.spec?.leaseTransitions, 3);
  });

  it('steps down when it cannot renew, before its lease expires for others', async () => {
    const fake = new FakeLeases();
    const ac = new AbortController();
    let lastRenew = 0;
    let stoppedAt = 0;
    let leaderSignal: AbortSignal | undefined;
    const elector = new LeaderElector(fake, { ...OPTS, identity: 'a', now: fake.now, sleep: fake.sleep });
    const done = elector.run(ac.signal, {
      onStartedLeading: (s) => {
        leaderSignal = s;
      },
      onStoppedLeading: () => {
        stoppedAt = fake.nowMs;
        assert.equal(leaderSignal?.aborted, true, 'work is told to stop first');
        ac.abort();
      },
    });
    while (fake.writes.length < 2) await new Promise((r) => setImmediate(r));
    lastRenew = fake.writes[1]!.at;
    fake.down = true;
    await done;
    assert.ok(stoppedAt > lastRenew, 'kept trying for a while');
    assert.ok(stoppedAt <= lastRenew + 10_000, 'stepped down by renewDeadline');
    assert.ok(stoppedAt < lastRenew + 15_000, 'before another replica could take the lease');
    assert.equal(elector.isLeader(), false);
  });

  it('two electors on one lease: one leads, the other takes over when it steps down', async () => {
    const fake = new FakeLeases();
    const acA = new AbortController();
    const acB = new AbortController();
    const order: string[] = [];
    const a = new LeaderElector(fake, {
      ...OPTS,
      identity: 'a',
      now: fake.now,
      sleep: fake.sleep,
      random: () => 0,
    });
    const b = new LeaderElector(fake, {
      ...OPTS,
      identity: 'b',
      now: fake.now,
      sleep: fake.sleep,
      random: () => 0,
    });
    const runA = a.run(acA.signal, {
      onStartedLeading: () => {
        order.push('a leads');
      },
      onStoppedLeading: () => order.push('a stopped'),
    });
    while (!a.isLeader()) await new Promise((r) => setImmediate(r));
    const runB = b.run(acB.signal, {
      onStartedLeading: () => {
        order.push(`b leads (a leader=${a.isLeader()})`);
        acB.abort();
      },
    });
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    assert.equal(b.isLeader(), false);
    acA.abort();
    await runA;
    await runB;
    assert.deepEqual(order, ['a leads', 'a stopped', 'b leads (a leader=false)']);
    assert.equal(
      fake.lease?.spec?.leaseTransitions,
      1,
      'a created it (0); b took it over (1); releases keep the count',
    );
  });

  it('refuses timings that cannot be safe', () => {
    const fake = new FakeLeases();
    assert.throws(
      () =>
        new LeaderElector(fake, {
          ...OPTS,
          identity: 'a',
          leaseDurationSeconds: 10,
          renewDeadlineSeconds: 10,
        }),
      RangeError,
    );
    assert.throws(() => new LeaderElector(fake, { ...OPTS, identity: '' }), RangeError);
  });
});
