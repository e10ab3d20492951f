import type { KubeObject } from './types.js';

/** coordination.k8s.io/v1 LeaseSpec. Times are MicroTime: RFC 3339 with microseconds. */
export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number | null;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number | null;
}

export interface Lease extends KubeObject {
  spec?: LeaseSpec;
}

export interface LeaseDecisionInput {
  identity: string;
  now: Date;
  /** The duration this candidate writes when it takes or renews the lease. */
  leaseDurationSeconds: number;
  /**
   * Local time at which this candidate saw the lease record change (another holder renewing),
   * undefined until it has seen a change. A holder whose renewals we watch is alive whatever its
   * clock says, so its lease is not taken over on a skewed renewTime (client-go trusts only this
   * observation; we also accept an old renewTime on first sight, so a new replica need not wait a
   * whole lease duration after a crash that happened long ago).
   */
  observedChangeAt?: Date;
}

export type LeaseDecision =
  /** No lease yet: create it with this spec. */
  | { action: 'create'; spec: LeaseSpec }
  /** Take over (or renew) with this spec, replacing the lease at the resourceVersion read. */
  | { action: 'update'; spec: LeaseSpec; acquired: boolean }
  /** Someone else holds it and it is still valid until `expiresAt` (as far as we know). */
  | { action: 'wait'; holder: string; expiresAt: Date };

/** Kubernetes MicroTime: "2006-01-02T15:04:05.000000Z". */
export function formatMicroTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function parseTime(s: string | null | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * What a candidate should do with the lease it just read (client-go's tryAcquireOrRenew, pure):
 * create it when absent; renew it when it holds it; take it when nobody holds it or the holder's
 * lease expired (its last renewal + its leaseDurationSeconds is past, and we have not seen it
 * renew within that long); otherwise wait.
 */
export function decideLease(lease: Lease | undefined, input: LeaseDecisionInput): LeaseDecision {
  const now = formatMicroTime(input.now);
  if (lease === undefined) {
    return {
      action: 'create',
      spec: {
        holderIdentity: input.identity,
        leaseDurationSeconds: input.leaseDurationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    };
  }
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const transitions = spec.leaseTransitions ?? 0;
  if (holder === input.identity) {
    return {
      action: 'update',
      acquired: false,
      spec: {
        holderIdentity: input.identity,
        leaseDurationSeconds: input.leaseDurationSeconds,
        acquireTime: spec.acquireTime ?? now,
        renewTime: now,
        leaseTransitions: transitions,
      },
    };
  }
  if (holder !== '') {
    const durationMs = (spec.leaseDurationSeconds ?? input.leaseDurationSeconds) * 1000;
    const renewed = parseTime(spec.renewTime) ?? parseTime(spec.acquireTime);
    const byRecord = renewed === undefined ? 0 : renewed + durationMs;
    const byObservation =
      input.observedChangeAt === undefined ? 0 : input.observedChangeAt.getTime() + durationMs;
    const expiresAt = Math.max(byRecord, byObservation);
    if (expiresAt > input.now.getTime()) return { action: 'wait', holder, expiresAt: new Date(expiresAt) };
  }
  return {
    action: 'update',
    acquired: true,
    spec: {
      holderIdentity: input.identity,
      leaseDurationSeconds: input.leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: transitions + 1,
    },
  };
}

/** The lease a leader writes when it steps down: no holder, so a successor takes it at once. */
export function releasedSpec(spec: LeaseSpec, now: Date): LeaseSpec {
  const t = formatMicroTime(now);
  return {
    holderIdentity: null,
    leaseDurationSeconds: 1,
    acquireTime: t,
    renewTime: t,
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}
