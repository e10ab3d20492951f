import { pino, type Logger } from 'pino';
import { sleep as defaultSleep } from './backoff.js';
import type { KubeClient } from './client.js';
import { KubeError } from './errors.js';
import { decideLease, releasedSpec, type Lease } from './lease-decision.js';
import type { ResourceRef } from './types.js';

/** The part of KubeClient leader election uses (tests pass a fake). */
export type LeaseClient = Pick<KubeClient, 'get' | 'create' | 'replace'>;

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  /** Unique per replica (pod name, or hostname plus a random suffix). */
  identity: string;
  /** How long a lease stays valid after its last renewal; default 15. */
  leaseDurationSeconds?: number;
  /** How long a leader keeps trying to renew before it steps down; default 10 (< leaseDuration). */
  renewDeadlineSeconds?: number;
  /** Between attempts to acquire or renew; default 2. */
  retryPeriodSeconds?: number;
  logger?: Logger;
  now?: () => Date;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

export interface LeaderCallbacks {
  /**
   * Called on becoming leader. Work must stop when `leaderSignal` aborts; a returned promise is
   * awaited before the lease is released or sought again, never before renewing.
   */
  onStartedLeading(leaderSignal: AbortSignal): void | Promise<void>;
  /** Called once leadership ends, before any other replica can hold the lease. */
  onStoppedLeading?(): void;
  /** Called when the observed leader changes (this replica included). */
  onNewLeader?(identity: string): void;
}

type Attempt = 'held' | 'other' | 'conflict';

/**
 * Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics: a candidate takes
 * the lease when it is absent, free or expired; the leader renews every retry period with
 * optimistic concurrency (a replace at the resourceVersion it read; 409 means someone else
 * wrote); a leader that cannot renew within renewDeadline steps down while its lease is still
 * valid (renewDeadline < leaseDuration), so no other replica can hold it yet; on shutdown the
 * leader clears the lease so a successor takes over at once. After losing the lease, run() goes
 * back to being a candidate until its signal aborts.
 */
export class LeaderElector {
  private readonly ref: ResourceRef;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly log: Logger;
  private readonly now: () => Date;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private leading = false;
  /** The lease as this replica last wrote it: renewals replace it without reading first. */
  private written: Lease | undefined;
  /** When the renewTime of our last successful write was taken. */
  private renewedAt = 0;
  /** The last lease record seen, and when (locally) it last changed. */
  private observed: { key: string; changedAt?: Date } | undefined;
  private reportedLeader: string | undefined;

  constructor(
    private readonly client: LeaseClient,
    private readonly opts: LeaderElectorOptions,
  ) {
    const lease = opts.leaseDurationSeconds ?? 15;
    const renew = opts.renewDeadlineSeconds ?? 10;
    const retry = opts.retryPeriodSeconds ?? 2;
    if (!(retry > 0 && renew > retry && lease > renew)) {
      throw new RangeError(
        `leader election needs 0 < retryPeriod < renewDeadline < leaseDuration (got ${retry}, ${renew}, ${lease} s)`,
      );
    }
    if (!opts.identity) throw new RangeError('leader election needs a non-empty identity');
    this.leaseMs = lease * 1000;
    this.renewDeadlineMs = renew * 1000;
    this.retryMs = retry * 1000;
    this.ref = {
      group: 'coordination.k8s.io',
      version: 'v1',
      plural: 'leases',
      namespace: opts.namespace,
      name: opts.name,
    };
    this.log = (opts.logger ?? pino({ enabled: false })).child({
      module: 'leader-election',
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
    this.now = opts.now ?? (() => new Date());
    this.sleep = opts.sleep ?? defaultSleep;
    this.random = opts.random ?? Math.random;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Seeks the lease, leads while it holds it, and returns once `signal` aborts (lease released). */
  async run(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.acquire(signal, callbacks))) return;
      await this.lead(signal, callbacks);
    }
  }

  private async acquire(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<boolean> {
    this.log.info('seeking the lease');
    while (!signal.aborted) {
      try {
        if ((await this.attempt(signal, callbacks)) === 'held') return true;
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn({ err }, 'cannot read or write the lease; retrying');
      }
      // Up to 20% jitter, so candidates that failed together do not retry in step.
      await this.sleep(Math.round(this.retryMs * (1 + 0.2 * this.random())), signal);
    }
    return false;
  }

  private async lead(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<void> {
    this.leading = true;
    this.log.info('became leader');
    const leader = new AbortController();
    const work = Promise.resolve()
      .then(() => callbacks.onStartedLeading(leader.signal))
      .catch((err: unknown) => this.log.error({ err }, 'onStartedLeading failed'));
    let why = '';
    while (!signal.aborted) {
      const untilDeadline = this.renewedAt + this.renewDeadlineMs - this.now().getTime();
      if (untilDeadline <= 0) {
        why = 'could not renew the lease within renewDeadline';
        break;
      }
      await this.sleep(Math.min(this.retryMs, untilDeadline), signal);
      if (signal.aborted) break;
      const remaining = this.renewedAt + this.renewDeadlineMs - this.now().getTime();
      if (remaining <= 0) {
        why = 'could not renew the lease within renewDeadline';
        break;
      }
      try {
        // A renewal that hangs must not outlive the deadline.
        const result = await this.attempt(
          AbortSignal.any([signal, AbortSignal.timeout(remaining)]),
          callbacks,
        );
        if (result === 'other') {
          why = 'another replica holds the lease';
          break;
        }
        if (result === 'conflict') this.log.warn('lease changed under us (409); reading it again');
      } catch (err) {
        if (signal.aborted) break;
        this.log.warn({ err }, 'cannot renew the lease; retrying until renewDeadline');
      }
    }
    this.leading = false;
    if (signal.aborted) {
      leader.abort(signal.reason);
      await work;
      this.stopped(callbacks);
      await this.release();
    } else {
      this.log.error({ reason: why }, 'lost leadership');
      leader.abort(new Error(`leadership lost: ${why}`));
      this.written = undefined;
      this.stopped(callbacks);
      await work;
    }
  }

  private stopped(callbacks: LeaderCallbacks): void {
    try {
      callbacks.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading threw');
    }
  }

  /** One read-decide-write round; renewals skip the read and replace our last write. */
  private async attempt(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<Attempt> {
    const now = this.now();
    const lease =
      this.leading && this.written ? this.written : await this.client.get<Lease>(this.ref, { signal });
    this.observe(lease, now);
    const decision = decideLease(lease, {
      identity: this.opts.identity,
      now,
      leaseDurationSeconds: this.leaseMs / 1000,
      ...(this.observed?.changedAt ? { observedChangeAt: this.observed.changedAt } : {}),
    });
    if (decision.action === 'wait') {
      this.newLeader(decision.holder, callbacks);
      return 'other';
    }
    let result: Lease;
    try {
      if (decision.action === 'create') {
        const fresh: Lease = {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: decision.spec,
        };
        result = await this.client.create(this.ref, fresh, { signal });
      } else {
        result = await this.client.replace(
          this.ref,
          { ...(lease as Lease), spec: decision.spec },
          { signal },
        );
      }
    } catch (err) {
      // 409: someone else created or wrote the lease first (AlreadyExists or Conflict).
      if (err instanceof KubeError && err.status === 409) {
        this.written = undefined;
        return 'conflict';
      }
      throw err;
    }
    this.written = result;
    this.renewedAt = now.getTime();
    this.observe(result, now);
    if (decision.action === 'create' || decision.acquired) {
      this.log.info({ transitions: result.spec?.leaseTransitions }, 'acquired the lease');
    }
    this.newLeader(this.opts.identity, callbacks);
    return 'held';
  }

  private observe(lease: Lease | undefined, now: Date): void {
    const key = lease ? `${lease.metadata.resourceVersion ?? ''}|${lease.spec?.renewTime ?? ''}` : '';
    if (this.observed === undefined) this.observed = { key };
    else if (this.observed.key !== key) this.observed = { key, changedAt: now };
  }

  private newLeader(identity: string, callbacks: LeaderCallbacks): void {
    if (identity === this.reportedLeader) return;
    this.reportedLeader = identity;
    this.log.info({ leader: identity }, 'new leader');
    try {
      callbacks.onNewLeader?.(identity);
    } catch (err) {
      this.log.error({ err }, 'onNewLeader threw');
    }
  }

  /** Clears the lease (holder none, duration 1 s) so a successor need not wait for it to expire. */
  private async release(): Promise<void> {
    const written = this.written;
    this.written = undefined;
    if (!written?.spec) return;
    try {
      await this.client.replace(
        this.ref,
        { ...written, spec: releasedSpec(written.spec, this.now()) },
        { signal: AbortSignal.timeout(this.renewDeadlineMs) },
      );
      this.log.info('released the lease');
    } catch (err) {
      // 409: someone else wrote it since; nothing of ours to release. Otherwise it just expires.
      this.log.warn({ err }, 'could not release the lease; it will expire');
    }
  }
}
