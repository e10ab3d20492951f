import { buildConditions } from './conditions.js';
import { deepEqual } from './deep-equal.js';
import {
  nodePullActions,
  type Contribution,
  type EntryConfig,
  type NodePullAction,
  type WantedImage,
} from './node-pull-spec.js';
import {
  FAILED,
  PENDING,
  PlanCache,
  SUCCEEDED,
  classify,
  indexNodePull,
  keptEntries,
  storedRunItems,
  type Classification,
  type NodeView,
} from './node-view.js';
import { pinnedDigest } from './runs.js';
import { scheduleState, toTimestamp } from './schedule.js';
import type { PrePullSpec, SpecParseResult } from './spec.js';
import { isTarget, resolveMaxConcurrentNodes } from './targeting.js';
import {
  LIMITS,
  prePullKey,
  type ImageFailure,
  type Node,
  type NodePull,
  type PrePull,
  type PrePullImageStatus,
  type PrePullStatus,
  AGENT_UNAVAILABLE,
  SPEC_TIME_ANNOTATION,
} from './types.js';

/**
 * The planner (docs/prepull.md "Planning rules"): from PrePulls, Nodes and NodePulls as they are
 * now, the NodePull specs every node should have and each PrePull's status. Pure and
 * deterministic; O(nodes × images) per PrePull, so a reconcile of thousands of nodes stays cheap.
 */

export interface PrePullInput {
  object: PrePull;
  parsed: SpecParseResult;
  /** The mirrored pull Secret in the controller's namespace, when the PrePull has pull secrets. */
  pullSecret?: string;
}

export interface Resolution {
  digest?: string;
  resolveError?: string;
}

/** What the controller resolved for a PrePull in this reconcile (see runs.ts). */
export interface RunResult {
  /** Set for a run (new, generation, schedule): becomes lastScheduleTime. */
  runTime?: Date;
  images: ReadonlyMap<string, Resolution>;
}

export interface PlanInput {
  prePulls: readonly PrePullInput[];
  nodes: readonly Node[];
  nodePulls: readonly NodePull[];
  runs?: ReadonlyMap<string, RunResult>;
  now: Date;
  cache?: PlanCache;
  /**
   * A node whose agent has shown no sign of life (status.heartbeatTime, or the controller's last
   * spec change) for this long while it has images to pull counts as done and failed
   * (AgentUnavailable), so that it no longer holds a stagger slot. Undefined: never.
   */
  agentTimeoutMs?: number;
}

export { PlanCache, type NodePullAction };

export interface StatusUpdate {
  key: string;
  namespace: string;
  name: string;
  status: PrePullStatus;
  /** False when the stored status already says this. */
  changed: boolean;
}

export interface PlanOutput {
  /** Only the NodePulls that must change. */
  nodePulls: NodePullAction[];
  statuses: StatusUpdate[];
  /** The next scheduled run among the PrePulls; reconcile then even if nothing changes. */
  wakeAt?: Date;
}

const enum NodeState {
  Waiting = 0,
  Active = 1,
  Done = 2,
}

function configOf(
  key: string,
  spec: PrePullSpec,
  pullSecret: string | undefined,
  runRank: number,
): EntryConfig {
  return {
    key,
    pin: spec.pin,
    pullSecrets: pullSecret === undefined ? [] : [pullSecret],
    retryLimit: spec.retry.limit,
    retryBackoffSeconds: spec.retry.backoffSeconds,
    progressTimeoutSeconds: spec.progressTimeoutSeconds,
    maxConcurrentPulls: spec.maxConcurrentPullsPerNode,
    runRank,
  };
}

/** When the node's agent last showed a sign of life, in ms since the epoch; NaN when unknown. */
function lastSignOfLife(np: NodePull | undefined): number {
  if (np === undefined) return Number.NaN;
  const times = [
    np.status?.heartbeatTime,
    np.metadata.annotations?.[SPEC_TIME_ANNOTATION],
    np.metadata.creationTimestamp,
  ]
    .map((t) => (t === undefined ? Number.NaN : Date.parse(t)))
    .filter(Number.isFinite);
  return times.length === 0 ? Number.NaN : Math.max(...times);
}

export function plan(input: PlanInput): PlanOutput {
  const now = toTimestamp(input.now);
  const nodes = [...input.nodes].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0,
  );
  const nodePullByName = new Map<string, NodePull>();
  for (const np of input.nodePulls) nodePullByName.set(np.metadata.name, np);
  const views = new Map<string, NodeView>();
  const view = (name: string): NodeView => {
    let v = views.get(name);
    if (v === undefined) {
      v = indexNodePull(nodePullByName.get(name), cache);
      views.set(name, v);
    }
    return v;
  };
  const contributions = new Map<string, Contribution[]>();
  const contribute = (node: string, c: Contribution) => {
    if (c.items.length === 0) return;
    const list = contributions.get(node);
    if (list === undefined) contributions.set(node, [c]);
    else list.push(c);
  };

  const cache = input.cache ?? new PlanCache();
  const statuses: StatusUpdate[] = [];
  let wakeAt: Date | undefined;
  const prePulls = input.prePulls
    .filter((p) => !p.object.metadata.deletionTimestamp)
    .sort((a, b) => (prePullKey(a.object.metadata) < prePullKey(b.object.metadata) ? -1 : 1));

  for (const { object, parsed, pullSecret } of prePulls) {
    const key = prePullKey(object.metadata);
    const generation = object.metadata.generation ?? 0;
    const previous = object.status;

    if (!parsed.ok) {
      // An invalid spec changes nothing on the nodes: its entries stay as they are.
      for (const np of input.nodePulls) {
        const v = view(np.metadata.name);
        const items = keptEntries(v, key, undefined);
        if (items.length === 0) continue;
        for (const item of items) {
          const e = v.spec!.get(item.image)!;
          contribute(np.metadata.name, {
            kept: true,
            items: [item],
            config: {
              key,
              pin: e.pin ?? false,
              pullSecrets: e.pullSecrets ?? [],
              retryLimit: e.retryLimit,
              retryBackoffSeconds: e.retryBackoffSeconds,
              progressTimeoutSeconds: e.progressTimeoutSeconds,
              maxConcurrentPulls: np.spec.maxConcurrentPulls,
              runRank: 0,
            },
          });
        }
      }
      const status: PrePullStatus = {
        ...previous,
        observedGeneration: generation,
        conditions: buildConditions({
          counts: previous?.nodes ?? { desired: 0, pulling: 0, succeeded: 0, failed: 0 },
          waiting: 0,
          suspended: false,
          invalid: parsed.error,
          generation,
          previous: previous?.conditions,
          now,
        }),
      };
      statuses.push(statusUpdate(object, key, status));
      continue;
    }

    const spec = parsed.spec;
    const run = input.runs?.get(key);
    const lastScheduleTime =
      run?.runTime !== undefined ? toTimestamp(run.runTime) : previous?.lastScheduleTime;
    const sched = scheduleState(spec, lastScheduleTime, input.now);
    if (sched.next !== undefined && (wakeAt === undefined || sched.next < wakeAt)) wakeAt = sched.next;

    // Wanted set: each image with the digest of its last resolution (a failed new resolution
    // keeps the previous digest: the nodes keep what they hold rather than drop to a tag), and
    // the run that asks for it, so a failure of an earlier run is tried again (rule 2).
    const previousImages = new Map((previous?.images ?? []).map((i) => [i.image, i]));
    const wanted: WantedImage[] = [];
    const resolution: Resolution[] = [];
    for (const image of spec.images) {
      const before = previousImages.get(image);
      const fresh = run?.images.get(image);
      const pinned = pinnedDigest(image);
      const digest = pinned ?? fresh?.digest ?? before?.digest;
      const resolveError =
        pinned !== undefined ? undefined : fresh !== undefined ? fresh.resolveError : before?.resolveError;
      wanted.push({
        image,
        ...(digest === undefined ? {} : { digest }),
        ...(lastScheduleTime === undefined ? {} : { run: lastScheduleTime }),
      });
      resolution.push({ ...(digest ? { digest } : {}), ...(resolveError ? { resolveError } : {}) });
    }
    const wantedNames = new Set(spec.images);
    // Classifications are memoised by this key: it names everything they depend on.
    const wantedKey = `${lastScheduleTime ?? ''}\n${wanted.map((w) => `${w.image}@${w.digest ?? ''}`).join('\n')}`;
    const m = wanted.length;
    const config = configOf(key, spec, pullSecret, lastScheduleTime ? Date.parse(lastScheduleTime) : 0);
    // One object for every node that gets the wanted set, so nodes with the same PrePulls share one merge.
    const configSignature = [
      key,
      config.pin,
      config.pullSecrets.join(','),
      config.retryLimit,
      config.retryBackoffSeconds,
      config.progressTimeoutSeconds,
      config.maxConcurrentPulls,
      config.runRank,
    ].join('|');
    const wantedContribution: Contribution = {
      config,
      items: wanted,
      kept: false,
      id: cache.id(`${configSignature}|wanted|${wantedKey}`),
    };
    // Waiting nodes mostly keep the same old entries: one shared contribution per distinct set.
    const keptShared = new Map<string, Contribution>();
    const keptContribution = (items: WantedImage[]): Contribution => {
      const sig = items.map((i) => `${i.image}@${i.digest ?? ''}@${i.run ?? ''}`).join('\n');
      let c = keptShared.get(sig);
      if (c === undefined) {
        c = { config, items, kept: true, id: cache.id(`${configSignature}|kept|${sig}`) };
        keptShared.set(sig, c);
      }
      return c;
    };
    // A done node keeps the runs its entries carry (a run that changed nothing there writes
    // nothing); nodes done at the same runs share one contribution.
    const doneShared = new Map<string, Contribution>();
    const doneContribution = (v: NodeView, c: Classification): Contribution => {
      if (c.storedRuns === undefined) return wantedContribution;
      let d = doneShared.get(c.storedRuns);
      if (d === undefined) {
        d = {
          config,
          items: storedRunItems(v, wanted),
          kept: false,
          id: cache.id(`${configSignature}|done|${wantedKey}|${c.storedRuns}`),
        };
        doneShared.set(c.storedRuns, d);
      }
      return d;
    };

    const targets: Node[] = [];
    for (const node of nodes) if (isTarget(spec, node)) targets.push(node);
    const states = new Uint8Array(targets.length);
    const imgSucceeded = new Array<number>(m).fill(0);
    const imgFailed = new Array<number>(m).fill(0);
    const imgPulling = new Array<number>(m).fill(0);
    const failures: ImageFailure[][] = Array.from({ length: m }, () => []);
    let active = 0;
    let nodesSucceeded = 0;
    let nodesFailed = 0;
    const nodeFailed = new Uint8Array(targets.length);
    const classes: Classification[] = [];

    for (let t = 0; t < targets.length; t++) {
      const name = targets[t]!.metadata.name;
      const v = view(name);
      const c = classify(v, wanted, wantedKey, nodePullByName.has(name));
      classes.push(c);
      // An agent that stopped reporting while it had work frees its slot (rule 8).
      let silentFor: number | undefined;
      if (c.holds && c.pending > 0 && input.agentTimeoutMs !== undefined) {
        const last = lastSignOfLife(nodePullByName.get(name));
        const since = input.now.getTime() - last;
        if (since > input.agentTimeoutMs) silentFor = since;
        else if (Number.isFinite(last)) {
          // Look again when it would count as silent, whatever else happens by then.
          const at = last + input.agentTimeoutMs + 1000;
          if (wakeAt === undefined || at < wakeAt.getTime()) wakeAt = new Date(at);
        }
      }
      const anyFailed = c.failed > 0 || silentFor !== undefined;
      if (c.pending < m || silentFor !== undefined) {
        for (let j = 0; j < m; j++) {
          const o = c.outcome[j];
          if (o === SUCCEEDED) imgSucceeded[j]!++;
          else if (o === FAILED || silentFor !== undefined) {
            imgFailed[j]!++;
            const list = failures[j]!;
            // Targets go in name order, so the first ones are the list sorted by node.
            if (list.length < LIMITS.maxFailuresPerImage) {
              if (o === FAILED) {
                const s = v.status!.get(wanted[j]!.image)!;
                list.push({
                  node: name,
                  reason: s.reason || 'PullError',
                  ...(s.message ? { message: s.message.slice(0, LIMITS.maxMessageLength) } : {}),
                });
              } else {
                list.push({
                  node: name,
                  reason: AGENT_UNAVAILABLE,
                  message: `no report from the node's agent for ${Math.round(silentFor! / 1000)} s: is hoist agent running on it?`,
                });
              }
            }
          }
        }
      }
      const state =
        c.pending === 0 || silentFor !== undefined
          ? NodeState.Done
          : c.holds
            ? NodeState.Active
            : NodeState.Waiting;
      states[t] = state;
      if (state === NodeState.Active) {
        active++;
        for (let j = 0; j < m; j++) if (c.outcome[j] === PENDING) imgPulling[j]!++;
      }
      if (anyFailed) {
        nodesFailed++;
        nodeFailed[t] = 1;
      } else if (state === NodeState.Done) nodesSucceeded++;
    }

    // Stagger (rule 3): waiting nodes start in name order while fewer than the limit are active.
    const limit = resolveMaxConcurrentNodes(spec.maxConcurrentNodes, targets.length);
    let slots = spec.suspend ? 0 : Math.max(0, limit - active);
    let pullingNodes = 0;
    let waitingNodes = 0;
    for (let t = 0; t < targets.length; t++) {
      const name = targets[t]!.metadata.name;
      let state = states[t]!;
      if (state === NodeState.Waiting && slots > 0) {
        slots--;
        state = NodeState.Active;
        const c = classes[t]!;
        for (let j = 0; j < m; j++) if (c.outcome[j] === PENDING) imgPulling[j]!++;
      }
      if (state === NodeState.Waiting) {
        const kept = keptEntries(view(name), key, wantedNames);
        if (kept.length > 0) contribute(name, keptContribution(kept));
        if (!nodeFailed[t]) waitingNodes++;
      } else if (state === NodeState.Done) {
        contribute(name, doneContribution(view(name), classes[t]!));
      } else {
        contribute(name, wantedContribution);
        if (!nodeFailed[t]) pullingNodes++;
      }
    }

    const counts = {
      desired: targets.length,
      pulling: pullingNodes,
      succeeded: nodesSucceeded,
      failed: nodesFailed,
    };
    const images: PrePullImageStatus[] = spec.images.map((image, j) => ({
      image,
      ...resolution[j],
      desired: targets.length,
      pulling: imgPulling[j]!,
      succeeded: imgSucceeded[j]!,
      failed: imgFailed[j]!,
      ...(failures[j]!.length > 0 ? { failures: failures[j]! } : {}),
    }));
    const status: PrePullStatus = {
      observedGeneration: generation,
      imageCount: spec.images.length,
      ...(lastScheduleTime ? { lastScheduleTime } : {}),
      ...(sched.next ? { nextScheduleTime: toTimestamp(sched.next) } : {}),
      nodes: counts,
      images,
      conditions: buildConditions({
        counts,
        waiting: waitingNodes,
        suspended: spec.suspend,
        generation,
        previous: previous?.conditions,
        now,
      }),
    };
    statuses.push(statusUpdate(object, key, status));
  }

  return {
    nodePulls: nodePullActions(nodes, input.nodePulls, contributions, cache),
    statuses,
    ...(wakeAt ? { wakeAt } : {}),
  };
}

function statusUpdate(object: PrePull, key: string, status: PrePullStatus): StatusUpdate {
  return {
    key,
    namespace: object.metadata.namespace ?? '',
    name: object.metadata.name,
    status,
    changed: !deepEqual(status, object.status ?? {}),
  };
}
