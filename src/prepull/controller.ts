import type { Logger } from 'pino';
import {
  Backoff,
  Informer,
  LeaderElector,
  sleep,
  type KubeClient,
  type KubeObject,
  type ResourceRef,
} from '../kube/index.js';
import { DigestResolver } from './digest-resolver.js';
import type { ControllerMetrics } from './metrics.js';
import { Reconciler, type ClusterView } from './reconciler.js';
import {
  GROUP,
  NODEPULL_PLURAL,
  PREPULL_PLURAL,
  VERSION,
  type Node,
  type NodePull,
  type PrePull,
} from './types.js';

/**
 * The PrePull controller (docs/prepull.md "Who does what"): one active replica through a Lease;
 * the leader watches PrePulls, Nodes and NodePulls and runs a debounced, level-triggered
 * reconcile on any change, at the planner's wake-up time and at every resync. A failed pass is
 * retried after an exponential backoff; nothing in a pass can end the process.
 */

export interface ControllerOptions {
  client: KubeClient;
  /** The controller's namespace: its Lease and the mirrored pull secrets. */
  namespace: string;
  leaseName: string;
  identity: string;
  resyncSeconds: number;
  /** A node whose agent is silent this long while it has work stops holding a stagger slot. */
  agentTimeoutSeconds?: number;
  logger: Logger;
  metrics?: ControllerMetrics;
  resolver?: Pick<DigestResolver, 'resolve'>;
  /** Quiet time after a change before reconciling, so a burst of events makes one pass. */
  debounceMs?: number;
  lease?: { leaseDurationSeconds?: number; renewDeadlineSeconds?: number; retryPeriodSeconds?: number };
  /**
   * Work only the leader does beside reconciling (pull telemetry: counted once, not once per
   * replica); each runs until the signal aborts, when the lead is lost or on shutdown.
   */
  whileLeading?: Array<(signal: AbortSignal) => Promise<void>>;
}

export const DEFAULT_DEBOUNCE_MS = 200;
/** Backoff of a failed reconcile pass (API unreachable, writes refused). */
const RETRY_BACKOFF = { initialMs: 1_000, maxMs: 60_000 };

type Obj<T> = T & KubeObject;

const ref = (plural: string, group = GROUP, version = VERSION): ResourceRef => ({ group, version, plural });

/** A level: set by any change, cleared when a pass starts; waiters wake when it is set. */
class Wakeup {
  private dirty = true;
  private waiter: (() => void) | undefined;

  poke(): void {
    this.dirty = true;
    this.waiter?.();
  }

  /** Resolves when poked (or already dirty), after `ms`, or on abort. */
  async wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.dirty || signal.aborted) return;
    const inner = new AbortController();
    const onAbort = () => inner.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.waiter = () => inner.abort();
    try {
      await sleep(ms, inner.signal);
    } finally {
      this.waiter = undefined;
      signal.removeEventListener('abort', onAbort);
    }
  }

  clear(): void {
    this.dirty = false;
  }
}

/** Whether a Node change can change targeting (labels, taints, deletion); heartbeats cannot. */
function targetingChanged(a: Node, b: Node | undefined): boolean {
  if (b === undefined) return true;
  return (
    a.metadata.deletionTimestamp !== b.metadata.deletionTimestamp ||
    a.metadata.uid !== b.metadata.uid ||
    JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(b.metadata.labels ?? {}) ||
    JSON.stringify(a.spec?.taints ?? []) !== JSON.stringify(b.spec?.taints ?? [])
  );
}

export class PrePullController {
  private readonly log: Logger;
  private leading: Promise<void> | undefined;
  private leader = false;
  private synced = false;
  private started = false;

  constructor(private readonly opts: ControllerOptions) {
    this.log = opts.logger.child({ module: 'prepull-controller' });
  }

  /** Ready: campaigning as a standby, or leading with its caches synced. */
  get ready(): boolean {
    return this.started && (!this.leader || this.synced);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Campaigns for the Lease and leads while it holds it; resolves once `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { lease = {} } = this.opts;
    const elector = new LeaderElector(this.opts.client, {
      namespace: this.opts.namespace,
      name: this.opts.leaseName,
      identity: this.opts.identity,
      ...lease,
      logger: this.log,
    });
    this.started = true;
    await elector.run(signal, {
      onStartedLeading: (leaderSignal: AbortSignal) => {
        this.log.info({ identity: this.opts.identity }, 'leading');
        // Not awaited: the elector keeps renewing while this runs until leaderSignal aborts.
        this.leading = this.lead(leaderSignal).catch((err: unknown) =>
          this.log.error({ err }, 'leader loop failed'),
        );
      },
      onStoppedLeading: () => {
        this.log.info({ identity: this.opts.identity }, 'stopped leading');
      },
      onNewLeader: (id: string) => {
        if (id !== this.opts.identity) this.log.info({ leader: id }, 'another replica leads');
      },
    });
    await this.leading;
  }

  private async lead(signal: AbortSignal): Promise<void> {
    this.leader = true;
    this.synced = false;
    this.opts.metrics?.leader.set(1);
    for (const task of this.opts.whileLeading ?? []) {
      task(signal).catch((err: unknown) => {
        if (!signal.aborted) this.log.error({ err }, 'leader task failed');
      });
    }
    try {
      await this.leadUntilAborted(signal);
    } finally {
      this.leader = false;
      this.synced = false;
      this.opts.metrics?.leader.set(0);
    }
  }

  private async leadUntilAborted(signal: AbortSignal): Promise<void> {
    const { client } = this.opts;
    const logger = this.log;
    const prePulls = new Informer<Obj<PrePull>>(client, ref(PREPULL_PLURAL), { logger });
    const nodes = new Informer<Obj<Node>>(client, ref('nodes', '', 'v1'), { logger });
    const nodePulls = new Informer<Obj<NodePull>>(client, ref(NODEPULL_PLURAL), { logger });
    const wake = new Wakeup();
    prePulls.on('change', () => wake.poke());
    nodePulls.on('change', () => wake.poke());
    nodes.on('change', (type, obj, old) => {
      if (type !== 'MODIFIED' || targetingChanged(obj, old)) wake.poke();
    });
    for (const informer of [prePulls, nodes, nodePulls]) informer.start(signal);
    try {
      await Promise.all([prePulls.synced(), nodes.synced(), nodePulls.synced()]);
    } catch {
      return; // lost the lead (or shutting down) before the caches filled
    }
    this.synced = true;
    this.log.info(
      { prePulls: prePulls.list().length, nodes: nodes.list().length, nodePulls: nodePulls.list().length },
      'caches synced',
    );

    const reconciler = new Reconciler({
      api: client,
      namespace: this.opts.namespace,
      resolver: this.opts.resolver ?? new DigestResolver(),
      logger: this.log,
      resyncMs: this.opts.resyncSeconds * 1000,
      ...(this.opts.agentTimeoutSeconds !== undefined
        ? { agentTimeoutSeconds: this.opts.agentTimeoutSeconds }
        : {}),
      ...(this.opts.metrics ? { metrics: this.opts.metrics } : {}),
    });
    const backoff = new Backoff(RETRY_BACKOFF);
    const resyncMs = this.opts.resyncSeconds * 1000;
    let waitMs = 0;
    let failed = false;
    while (!signal.aborted) {
      // After a failure, wait out the backoff whatever changes; else wake on a change too.
      if (failed) await sleep(waitMs, signal);
      else await wake.wait(waitMs, signal);
      await sleep(this.opts.debounceMs ?? DEFAULT_DEBOUNCE_MS, signal);
      if (signal.aborted) break;
      wake.clear();
      const view: ClusterView = {
        prePulls: prePulls.list(),
        nodes: nodes.list(),
        nodePulls: nodePulls.list(),
      };
      const started = performance.now();
      try {
        const result = await reconciler.reconcile(view, signal);
        failed = result.errors > 0;
        this.opts.metrics?.reconciles.inc({ result: failed ? 'error' : 'ok' });
        if (failed) {
          waitMs = backoff.next();
        } else {
          backoff.reset();
          // 10 ms past the wake-up time: a scheduled run is due at, not before, its time.
          const untilWake = result.wakeAt ? result.wakeAt.getTime() - Date.now() + 10 : Infinity;
          waitMs = Math.max(0, Math.min(resyncMs, untilWake));
        }
      } catch (err) {
        // A bug or an unexpected answer: log it, back off, try again from the API's state.
        failed = true;
        waitMs = backoff.next();
        this.opts.metrics?.reconciles.inc({ result: 'error' });
        this.log.error({ err }, 'reconcile failed; retrying');
      } finally {
        this.opts.metrics?.reconcileSeconds.observe((performance.now() - started) / 1000);
      }
      if (signal.aborted) break;
    }
  }
}
