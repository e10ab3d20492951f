import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideLease, formatMicroTime, releasedSpec, type Lease, type LeaseSpec } from './lease-decision.js';

const T0 = new Date('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const lease = (spec: LeaseSpec): Lease => ({
  metadata: { name: 'l', namespace: 'ns', resourceVersion: '7' },
  spec,
});
const me = { identity: 'me', leaseDurationSeconds: 15 };

describe('formatMicroTime', () => {
  it('writes six fractional digits, as MicroTime requires', () => {
    assert.equal(formatMicroTime(new Date('2026-12-01T10:00:00.123Z')), '2026-12-01T10:00:00.123000Z');
  });
});

describe('decideLease', () => {
  it('creates an absent lease with no transitions', () => {
    assert.deepEqual(decideLease(undefined, { ...me, now: T0 }), {
      action: 'create',
      spec: {
        holderIdentity: 'me',
        leaseDurationSeconds: 15,
        acquireTime: formatMicroTime(T0),
        renewTime: formatMicroTime(T0),
        leaseTransitions: 0,
      },
    });
  });

  it('renews its own lease: keeps acquireTime and transitions', () => {
    const d = decideLease(
      lease({
        holderIdentity: 'me',
        acquireTime: 'A',
        renewTime: formatMicroTime(T0),
        leaseTransitions: 3,
        leaseDurationSeconds: 15,
      }),
      { ...me, now: at(2) },
    );
    assert.deepEqual(d, {
      action: 'update',
      acquired: false,
      spec: {
        holderIdentity: 'me',
        leaseDurationSeconds: 15,
        acquireTime: 'A',
        renewTime: formatMicroTime(at(2)),
        leaseTransitions: 3,
      },
    });
  });

  it("waits while another holder's lease is valid, takes it once expired (transitions + 1)", () => {
    const other = lease({
      holderIdentity: 'other',
      renewTime: formatMicroTime(T0),
      leaseDurationSeconds: 10,
      leaseTransitions: 4,
    });
    assert.deepEqual(decideLease(other, { ...me, now: at(9.999) }), {
      action: 'wait',
      holder: 'other',
      expiresAt: at(10),
    });
    // Exactly at renewTime + duration it is still held (strictly-after rule).
    assert.equal(decideLease(other, { ...me, now: at(10) }).action, 'update');
    const d = decideLease(other, { ...me, now: at(10.5) });
    assert.equal(d.action, 'update');
    assert.ok(d.action === 'update' && d.acquired);
    assert.equal(d.action === 'update' && d.spec.leaseTransitions, 5);
    assert.equal(d.action === 'update' && d.spec.acquireTime, formatMicroTime(at(10.5)));
  });

  it("uses the holder's leaseDurationSeconds, not ours", () => {
    const other = lease({
      holderIdentity: 'other',
      renewTime: formatMicroTime(T0),
      leaseDurationSeconds: 60,
    });
    assert.equal(decideLease(other, { ...me, now: at(30) }).action, 'wait');
  });

  it('does not take a lease whose holder it saw renew recently, whatever renewTime says (clock skew)', () => {
    // The holder's clock is 1 h behind: its renewTime looks long expired.
    const skewed = lease({
      holderIdentity: 'other',
      renewTime: formatMicroTime(at(-3600)),
      leaseDurationSeconds: 15,
    });
    assert.equal(
      decideLease(skewed, { ...me, now: T0 }).action,
      'update',
      'first sight: the record is all we know',
    );
    assert.deepEqual(decideLease(skewed, { ...me, now: at(14), observedChangeAt: at(1) }), {
      action: 'wait',
      holder: 'other',
      expiresAt: at(16),
    });
    assert.equal(decideLease(skewed, { ...me, now: at(17), observedChangeAt: at(1) }).action, 'update');
  });

  it('takes a released lease (no holder) at once', () => {
    const released = lease(releasedSpec({ holderIdentity: 'other', leaseTransitions: 2 }, T0));
    assert.equal(released.spec?.holderIdentity, null);
    assert.equal(released.spec?.leaseDurationSeconds, 1);
    const d = decideLease(released, { ...me, now: T0, observedChangeAt: T0 });
    assert.ok(d.action === 'update' && d.acquired);
    assert.equal(d.action === 'update' && d.spec.leaseTransitions, 3);
  });

  it('treats a holder with no times as expired, and a missing spec as free', () => {
    assert.equal(decideLease(lease({ holderIdentity: 'other' }), { ...me, now: T0 }).action, 'update');
    assert.equal(decideLease({ metadata: { name: 'l' } }, { ...me, now: T0 }).action, 'update');
  });
});
