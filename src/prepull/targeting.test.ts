// Node targeting with a Pod's toleration semantics, maxConcurrentNodes, and schedules.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runDue } from './runs.js';
import { scheduleState } from './schedule.js';
import { parsePrePullSpec } from './spec.js';
import { isTarget, resolveMaxConcurrentNodes, toleratesAll, toleratesTaint } from './targeting.js';
import type { PrePull, Taint } from './types.js';

describe('tolerations', () => {
  const taint: Taint = { key: 'gpu', value: 'a100', effect: 'NoSchedule' };

  it('follows core/v1 ToleratesTaint', () => {
    assert.ok(toleratesTaint({ key: 'gpu', value: 'a100', effect: 'NoSchedule' }, taint));
    assert.ok(toleratesTaint({ key: 'gpu', value: 'a100' }, taint), 'empty effect matches any effect');
    assert.ok(toleratesTaint({ key: 'gpu', operator: 'Equal', value: 'a100' }, taint));
    assert.ok(!toleratesTaint({ key: 'gpu', value: 'h100' }, taint), 'Equal (default) compares values');
    assert.ok(!toleratesTaint({ key: 'gpu' }, taint), 'Equal with no value is the empty value');
    assert.ok(toleratesTaint({ key: 'gpu', operator: 'Exists' }, taint));
    assert.ok(toleratesTaint({ operator: 'Exists' }, taint), 'Exists with an empty key tolerates everything');
    assert.ok(!toleratesTaint({ key: 'gpu', operator: 'Exists', effect: 'NoExecute' }, taint));
    assert.ok(!toleratesTaint({ key: 'other', operator: 'Exists' }, taint));
  });

  it('needs every NoSchedule and NoExecute taint tolerated, ignores PreferNoSchedule', () => {
    const taints: Taint[] = [
      { key: 'a', effect: 'NoSchedule' },
      { key: 'b', effect: 'NoExecute' },
      { key: 'c', effect: 'PreferNoSchedule' },
    ];
    assert.ok(!toleratesAll([{ key: 'a', operator: 'Exists' }], taints));
    assert.ok(
      toleratesAll(
        [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'Exists' },
        ],
        taints,
      ),
    );
    assert.ok(toleratesAll([], [{ key: 'c', effect: 'PreferNoSchedule' }]));
    assert.ok(toleratesAll([], undefined));
  });

  it('selects by every label pair', () => {
    const spec = { nodeSelector: { a: '1', b: '2' }, tolerations: [] };
    assert.ok(isTarget(spec, { metadata: { name: 'n', labels: { a: '1', b: '2', c: '3' } } }));
    assert.ok(!isTarget(spec, { metadata: { name: 'n', labels: { a: '1' } } }));
    assert.ok(!isTarget(spec, { metadata: { name: 'n', labels: { a: '1', b: '3' } } }));
    assert.ok(isTarget({ nodeSelector: {}, tolerations: [] }, { metadata: { name: 'n' } }));
  });
});

describe('maxConcurrentNodes', () => {
  it('rounds percentages up and never goes below 1', () => {
    assert.equal(resolveMaxConcurrentNodes({ kind: 'percent', value: 10 }, 12), 2);
    assert.equal(resolveMaxConcurrentNodes({ kind: 'percent', value: 10 }, 10), 1);
    assert.equal(resolveMaxConcurrentNodes({ kind: 'percent', value: 1 }, 3), 1);
    assert.equal(resolveMaxConcurrentNodes({ kind: 'percent', value: 50 }, 0), 1);
    assert.equal(resolveMaxConcurrentNodes({ kind: 'percent', value: 100 }, 5000), 5000);
    assert.equal(resolveMaxConcurrentNodes({ kind: 'count', value: 3 }, 2), 3);
  });
});

describe('schedule', () => {
  const daily = { schedule: '0 3 * * *', timeZone: 'Europe/Paris', suspend: false };

  it('runs a new PrePull at once and gives the next time in its zone', () => {
    const s = scheduleState(daily, undefined, new Date('2026-12-01T10:00:30.500Z'));
    assert.equal(s.due?.toISOString(), '2026-12-01T10:00:30.000Z');
    assert.equal(s.next?.toISOString(), '2026-12-02T02:00:00.000Z');
  });

  it('runs a missed run once, however many were missed', () => {
    const s = scheduleState(daily, '2026-11-20T02:00:00Z', new Date('2026-12-01T10:00:00Z'));
    assert.equal(s.due?.toISOString(), '2026-12-01T02:00:00.000Z');
    const after = scheduleState(daily, '2026-12-01T02:00:00Z', new Date('2026-12-01T10:00:00Z'));
    assert.equal(after.due, undefined);
  });

  it('is due exactly at the scheduled time', () => {
    const s = scheduleState(daily, '2026-11-30T02:00:00Z', new Date('2026-12-01T02:00:00Z'));
    assert.equal(s.due?.toISOString(), '2026-12-01T02:00:00.000Z');
  });

  it('has no run and no next time while suspended', () => {
    assert.deepEqual(
      scheduleState({ ...daily, suspend: true }, '2026-11-20T02:00:00Z', new Date('2026-12-01T10:00:00Z')),
      {},
    );
  });
});

describe('runDue', () => {
  const now = new Date('2026-12-01T10:00:00Z');
  const pp = (
    spec: PrePull['spec'],
    status?: PrePull['status'],
    generation = 1,
  ): [PrePull, ReturnType<typeof parsePrePullSpec>] => [
    { metadata: { name: 'p', namespace: 'ns', uid: 'u', generation }, spec, ...(status ? { status } : {}) },
    parsePrePullSpec(spec),
  ];

  it('resolves a new PrePull, again on a new generation, and not otherwise (no schedule)', () => {
    const spec = { images: ['a', `b@sha256:${'b'.repeat(64)}`] };
    assert.deepEqual(runDue(...pp(spec), now)?.images, ['docker.io/library/a:latest']);
    assert.equal(runDue(...pp(spec), now)?.reason, 'new');
    const seen = {
      observedGeneration: 1,
      images: [{ image: 'docker.io/library/a:latest', desired: 0, pulling: 0, succeeded: 0, failed: 0 }],
    };
    assert.equal(runDue(...pp(spec, seen), now), undefined);
    assert.equal(runDue(...pp(spec, seen, 2), now)?.reason, 'generation');
    assert.equal(runDue(...pp({ ...spec, suspend: true }), now), undefined);
  });

  it('resolves at scheduled runs, and only added images on an edit in between', () => {
    const spec = { images: ['a', 'c'], schedule: '0 3 * * *' };
    const status = {
      observedGeneration: 1,
      lastScheduleTime: '2026-12-01T03:00:00Z',
      images: [{ image: 'docker.io/library/a:latest', desired: 0, pulling: 0, succeeded: 0, failed: 0 }],
    };
    const added = runDue(...pp(spec, status, 2), now);
    assert.deepEqual(
      [added?.reason, added?.images, added?.runTime],
      ['added', ['docker.io/library/c:latest'], undefined],
    );
    const next = runDue(...pp(spec, status, 2), new Date('2026-12-02T03:00:00Z'));
    assert.deepEqual([next?.reason, next?.images.length], ['schedule', 2]);
  });
});
