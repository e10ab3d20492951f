import type { Logger } from 'pino';
import { KubeError, type KubeClient, type ResourceRef } from '../kube/index.js';
import { deepEqual } from './deep-equal.js';
import type { DigestResolver } from './digest-resolver.js';
import { describeError, type Tally } from './errors.js';
import type { ControllerMetrics } from './metrics.js';
import { sameNodePullSpec } from './node-pull-spec.js';
import { plan, PlanCache, type NodePullAction, type PrePullInput } from './plan.js';
import { MANAGED_BY, MANAGED_BY_LABEL } from './pull-secrets.js';
import { RecentWrites } from './recent-writes.js';
import { PullSecretMirror } from './secret-mirror.js';
import { parsePrePullSpec, type SpecParseResult } from './spec.js';
import { TagRuns } from './tag-runs.js';
import {
  API_VERSION,
  GROUP,
  NODEPULL_KIND,
  NODEPULL_PLURAL,
  PREPULL_PLURAL,
  SPEC_TIME_ANNOTATION,
  VERSION,
  prePullKey,
  type Node,
  type NodePull,
  type NodePullSpec,
  type PrePull,
  type PrePullStatus,
} from './types.js';

/**
 * One reconcile pass (level-triggered, idempotent): read the informers' state, mirror pull
 * secrets, resolve tags where a run is due, plan, then write only what differs. Keeps what it
 * must across passes (its own recent writes, resolution results, mirror state); a new leader
 * starts with a fresh Reconciler and rebuilds everything from the API.
 */

export type KubeApi = Pick<KubeClient, 'get' | 'list' | 'create' | 'replace' | 'patch' | 'delete'>;

export interface ClusterView {
  prePulls: readonly PrePull[];
  nodes: readonly Node[];
  nodePulls: readonly NodePull[];
}

export interface ReconcilerOptions {
  api: KubeApi;
  /** The controller's own namespace: mirrored pull secrets. */
  namespace: string;
  resolver: Pick<DigestResolver, 'resolve'>;
  logger: Logger;
  metrics?: ControllerMetrics;
  /** Pull secrets are mirrored again this often even when nothing changed (rotated credentials). */
  resyncMs: number;
  now?: () => number;
  /** See PlanInput.agentTimeoutMs; default 300 s. */
  agentTimeoutSeconds?: number;
  /** API writes in flight at once. */
  writeConcurrency?: number;
  /** Registry requests in flight at once. */
  resolveConcurrency?: number;
}

/** `errors`: writes or reads that failed; the caller retries the pass after a backoff. */
export interface ReconcileResult extends Tally {
  wakeAt?: Date;
}

const RECENT_WRITE_TTL_MS = 30_000;
export const DEFAULT_AGENT_TIMEOUT_SECONDS = 300;
const STATUS_KEYS: ReadonlyArray<keyof PrePullStatus> = [
  'observedGeneration',
  'imageCount',
  'lastScheduleTime',
  'nextScheduleTime',
  'nodes',
  'images',
  'conditions',
];

const nodePullRef = (name?: string): ResourceRef => ({
  group: GROUP,
  version: VERSION,
  plural: NODEPULL_PLURAL,
  ...(name ? { name } : {}),
});
/** Runs `fn` over `items`, `limit` at a time. */
async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Reconciler {
  private readonly api: KubeApi;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly nodePullWrites: RecentWrites<NodePullSpec>;
  private readonly statusWrites: RecentWrites<PrePullStatus>;
  private readonly specs = new Map<string, { token: string; parsed: SpecParseResult }>();
  private readonly mirror: PullSecretMirror;
  private readonly tagRuns: TagRuns;
  /** Memo of unchanged NodePulls between passes (plan.ts PlanCache). */
  private readonly planCache = new PlanCache();
  /** NodePulls created here that the informer may not have yet. */
  private readonly pendingCreates = new Set<string>();

  constructor(private readonly opts: ReconcilerOptions) {
    this.api = opts.api;
    this.log = opts.logger;
    this.now = opts.now ?? Date.now;
    this.nodePullWrites = new RecentWrites(RECENT_WRITE_TTL_MS, this.now);
    this.statusWrites = new RecentWrites(RECENT_WRITE_TTL_MS, this.now);
    this.mirror = new PullSecretMirror({
      api: opts.api,
      namespace: opts.namespace,
      log: opts.logger,
      resyncMs: opts.resyncMs,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
    });
    this.tagRuns = new TagRuns({
      resolver: opts.resolver,
      log: opts.logger,
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      ...(opts.resolveConcurrency ? { concurrency: opts.resolveConcurrency } : {}),
    });
  }

  async reconcile(view: ClusterView, signal: AbortSignal): Promise<ReconcileResult> {
    const result: ReconcileResult = { errors: 0, writes: 0 };
    const now = this.now();
    const prePulls = view.prePulls
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => this.withOwnStatus(p));
    const nodePulls = this.withOwnNodePulls(view.nodePulls);
    const inputs: PrePullInput[] = prePulls.map((object) => ({ object, parsed: this.parse(object) }));
    this.forget(new Set(prePulls.map((p) => prePullKey(p.metadata))));

    for (const input of inputs) {
      if (signal.aborted) return result;
      const secret = await this.mirror.mirror(input, now, result);
      if (secret !== undefined) input.pullSecret = secret;
    }
    await this.mirror.collect(prePulls, now, result);

    const runs = await this.tagRuns.resolveDue(inputs, this.mirror, now, result, signal);
    if (signal.aborted) return result;

    const started = performance.now();
    const out = plan({
      prePulls: inputs,
      nodes: view.nodes,
      nodePulls,
      runs,
      now: new Date(now),
      cache: this.planCache,
      agentTimeoutMs: (this.opts.agentTimeoutSeconds ?? DEFAULT_AGENT_TIMEOUT_SECONDS) * 1000,
    });
    this.opts.metrics?.planSeconds.observe((performance.now() - started) / 1000);
    this.opts.metrics?.recordStatuses(out.statuses);

    await eachLimited(out.nodePulls, this.opts.writeConcurrency ?? 16, (a) =>
      this.applyNodePull(a, result, signal),
    );
    const changed = out.statuses.filter((s) => s.changed);
    await eachLimited(changed, this.opts.writeConcurrency ?? 16, async (s) => {
      if (signal.aborted) return;
      const ref: ResourceRef = {
        group: GROUP,
        version: VERSION,
        plural: PREPULL_PLURAL,
        namespace: s.namespace,
        name: s.name,
        subresource: 'status',
      };
      // A merge patch: keys the new status leaves out are removed with null.
      const body: Record<string, unknown> = { ...s.status };
      for (const k of STATUS_KEYS) if (body[k] === undefined) body[k] = null;
      try {
        await this.api.patch(ref, { status: body }, 'merge', { signal });
        this.statusWrites.set(s.key, s.status);
        result.writes++;
        this.opts.metrics?.writes.inc({ kind: 'status', action: 'patch', result: 'ok' });
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof KubeError && err.status === 404) return; // deleted meanwhile
        result.errors++;
        this.opts.metrics?.writes.inc({ kind: 'status', action: 'patch', result: 'error' });
        this.log.warn({ err: describeError(err), prepull: s.key }, 'status write failed; retrying');
      }
    });
    if (result.writes > 0 || result.errors > 0) {
      this.log.info(
        { nodePulls: out.nodePulls.length, statuses: changed.length, errors: result.errors },
        'reconciled',
      );
    }
    return { ...result, ...(out.wakeAt ? { wakeAt: out.wakeAt } : {}) };
  }

  private withOwnStatus(p: PrePull): PrePull {
    const key = prePullKey(p.metadata);
    const status = this.statusWrites.read(key, p.status, (written, cached) => deepEqual(written, cached));
    return status === p.status ? p : { ...p, ...(status ? { status } : {}) };
  }

  private withOwnNodePulls(nodePulls: readonly NodePull[]): NodePull[] {
    const out: NodePull[] = [];
    const seen = new Set<string>();
    for (const np of nodePulls) {
      seen.add(np.metadata.name);
      const spec = this.nodePullWrites.read(np.metadata.name, np.spec, (w, c) => sameNodePullSpec(w, c));
      if (spec === undefined) continue; // we deleted it; the cache has not heard
      out.push(spec === np.spec ? np : { ...np, spec });
    }
    // Created by us, not in the cache yet.
    for (const name of this.pendingCreates) {
      if (seen.has(name)) continue;
      const spec = this.nodePullWrites.read(name, undefined, () => false);
      if (spec === undefined) this.pendingCreates.delete(name);
      else out.push({ metadata: { name }, spec });
    }
    return out;
  }

  private parse(p: PrePull): SpecParseResult {
    const key = prePullKey(p.metadata);
    // The generation moves with every spec change; the resourceVersion stands in without one.
    const { uid = '', generation, resourceVersion = '' } = p.metadata;
    const token = generation !== undefined ? `${uid}:${generation}` : `${uid}:rv:${resourceVersion}`;
    const cached = this.specs.get(key);
    if (cached?.token === token) return cached.parsed;
    const parsed = parsePrePullSpec(p.spec);
    if (!parsed.ok) this.log.warn({ prepull: key, error: parsed.error }, 'invalid PrePull spec');
    this.specs.set(key, { token, parsed });
    return parsed;
  }

  /** Drops what is kept for PrePulls that are gone. */
  private forget(keys: ReadonlySet<string>): void {
    for (const key of this.specs.keys()) if (!keys.has(key)) this.specs.delete(key);
    this.mirror.forget(keys);
    this.tagRuns.forget(keys);
  }

  private async applyNodePull(
    a: NodePullAction,
    result: ReconcileResult,
    signal: AbortSignal,
  ): Promise<void> {
    if (signal.aborted) return;
    // When the spec changed: the agent's silence is measured from here (PlanInput.agentTimeoutMs).
    const specTime = () => ({
      [SPEC_TIME_ANNOTATION]: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    });
    // Only the leader writes spec, so a merge patch without a resourceVersion cannot lose
    // anyone's change; the agent's status is another subresource.
    const patchSpec = (spec: NodePullSpec) =>
      this.api.patch(nodePullRef(a.name), { metadata: { annotations: specTime() }, spec }, 'merge', {
        signal,
      });
    try {
      if (a.action === 'delete') {
        await this.api.delete(nodePullRef(a.name), { signal });
        this.nodePullWrites.set(a.name, null);
        this.pendingCreates.delete(a.name);
      } else if (a.action === 'create') {
        const obj = {
          apiVersion: API_VERSION,
          kind: NODEPULL_KIND,
          metadata: {
            name: a.name,
            annotations: specTime(),
            labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
            // The NodePull goes with its Node (garbage collector); no blockOwnerDeletion, which
            // would need rights on nodes/finalizers.
            ...(a.owner.uid
              ? {
                  ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: a.owner.name, uid: a.owner.uid }],
                }
              : {}),
          },
          spec: a.spec,
        };
        try {
          await this.api.create(nodePullRef(), obj, { signal });
        } catch (err) {
          if (!(err instanceof KubeError && err.status === 409)) throw err;
          await patchSpec(a.spec);
        }
        this.nodePullWrites.set(a.name, a.spec);
        this.pendingCreates.add(a.name);
      } else {
        await patchSpec(a.spec);
        this.nodePullWrites.set(a.name, a.spec);
      }
      result.writes++;
      this.opts.metrics?.writes.inc({ kind: 'nodepull', action: a.action, result: 'ok' });
      this.log.debug({ node: a.name, action: a.action }, 'NodePull written');
    } catch (err) {
      if (signal.aborted) return;
      if (a.action !== 'create' && err instanceof KubeError && err.status === 404) {
        this.nodePullWrites.set(a.name, null);
        return;
      }
      result.errors++;
      this.opts.metrics?.writes.inc({ kind: 'nodepull', action: a.action, result: 'error' });
      this.log.warn(
        { err: describeError(err), node: a.name, action: a.action },
        'NodePull write failed; retrying',
      );
    }
  }
}
