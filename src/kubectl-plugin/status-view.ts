// Types only: the plugin does not load the controller's modules at run time.
import type { NodePull, PrePull, PullPhase } from '../prepull/index.js';
import { formatCacheTable, nodeCacheRows, type NodeCacheRow } from './cache-view.js';
import { ageOf, humanDuration, kubectlTable, roundSeconds, secondsBetween } from './format.js';
import { normaliseReference } from './image-match.js';

/**
 * `kubectl hoist status`: one row per PrePull from its status (written by the controller), and,
 * for the wide view, one row per (PrePull, node, image) from the NodePulls whose entries name the
 * PrePull among their `sources` (written by each node's agent; docs/prepull.md). Pure.
 */

export interface PrePullRow {
  namespace: string;
  name: string;
  images: string[];
  nodes: { targeted: number; done: number; pulling: number; failed: number; pending: number };
  /** The `Ready` condition's status, `Unknown` before the controller wrote one. */
  ready: string;
  schedule?: string;
  suspended: boolean;
  createdAt?: string;
  lastRun?: string;
  nextRun?: string;
}

/** A NodePull entry has no status yet: the agent has not seen it, so it is Pending. */
export type NodeImageState = PullPhase;

export interface NodeImageRow {
  /** `namespace/name` of the PrePull. */
  prePull: string;
  node: string;
  image: string;
  digest?: string;
  state: NodeImageState;
  reason?: string;
  message?: string;
  attempts?: number;
  startedAt?: string;
  finishedAt?: string;
  /** Finished pulls: start to finish; a pull in progress: start to now. */
  durationSeconds?: number;
}

export interface StatusReport {
  prePulls: PrePullRow[];
  nodes: NodeImageRow[];
  /** The nodes' mirror caches, as their agents report them (cache-view.ts). */
  caches: NodeCacheRow[];
}

export interface StatusReportOptions {
  /**
   * Whose caches: every node whose agent reports one (the default: the controller keeps a
   * NodePull on every node, so nodes no PrePull targets report too), or (`prePullNodes`) only the
   * nodes with work for these PrePulls, for a report about one PrePull.
   */
  caches?: 'all' | 'prePullNodes';
}

const sameImage = (a: string, b: string): boolean => {
  const x = normaliseReference(a);
  const y = normaliseReference(b);
  if (!x || !y) return a === b;
  return x.name === y.name && x.tag === y.tag && x.digest === y.digest;
};

/** `namespace/name`, as NodePull `sources` name a PrePull (src/prepull/types.ts prePullKey). */
export const prePullKey = (meta: { namespace?: string; name: string }): string =>
  `${meta.namespace ?? ''}/${meta.name}`;

export function prePullRow(p: PrePull): PrePullRow {
  const n = p.status?.nodes;
  const targeted = n?.desired ?? 0;
  const done = n?.succeeded ?? 0;
  const pulling = n?.pulling ?? 0;
  const failed = n?.failed ?? 0;
  const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown';
  return {
    namespace: p.metadata.namespace ?? '',
    name: p.metadata.name,
    images: [...p.spec.images],
    nodes: { targeted, done, pulling, failed, pending: Math.max(0, targeted - done - pulling - failed) },
    ready,
    ...(p.spec.schedule ? { schedule: p.spec.schedule } : {}),
    suspended: p.spec.suspend === true,
    ...(p.metadata.creationTimestamp ? { createdAt: p.metadata.creationTimestamp } : {}),
    ...(p.status?.lastScheduleTime ? { lastRun: p.status.lastScheduleTime } : {}),
    ...(p.status?.nextScheduleTime ? { nextRun: p.status.nextScheduleTime } : {}),
  };
}

/** Every (node, image) of the NodePulls that pull one of this PrePull's images for it. */
export function nodeRows(p: PrePull, nodePulls: NodePull[], now: Date): NodeImageRow[] {
  const key = prePullKey(p.metadata);
  const rows: NodeImageRow[] = [];
  for (const np of nodePulls) {
    const node = np.spec?.nodeName || np.metadata.name;
    for (const entry of np.spec?.images ?? []) {
      if (!entry.sources?.includes(key)) continue;
      if (!p.spec.images.some((i) => sameImage(i, entry.image))) continue;
      const st = np.status?.images?.find((s) => s.image === entry.image);
      const state: NodeImageState = st?.phase ?? 'Pending';
      const end = state === 'Pulling' ? now.toISOString() : st?.finishedAt;
      const duration = state === 'Pending' ? undefined : secondsBetween(st?.startedAt, end);
      const digest = st?.digest ?? entry.digest;
      rows.push({
        prePull: key,
        node,
        image: entry.image,
        ...(digest ? { digest } : {}),
        state,
        ...(st?.reason ? { reason: st.reason } : {}),
        ...(st?.message ? { message: st.message } : {}),
        ...(st?.attempts !== undefined ? { attempts: st.attempts } : {}),
        ...(st?.startedAt ? { startedAt: st.startedAt } : {}),
        ...(st?.finishedAt ? { finishedAt: st.finishedAt } : {}),
        ...(duration !== undefined ? { durationSeconds: roundSeconds(duration) } : {}),
      });
    }
  }
  return rows.sort(
    (a, b) =>
      a.prePull.localeCompare(b.prePull) || a.node.localeCompare(b.node) || a.image.localeCompare(b.image),
  );
}

export function buildStatusReport(
  prePulls: PrePull[],
  nodePulls: NodePull[],
  now: Date,
  opts: StatusReportOptions = {},
): StatusReport {
  const sorted = [...prePulls].sort(
    (a, b) =>
      (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
      a.metadata.name.localeCompare(b.metadata.name),
  );
  const nodes = sorted.flatMap((p) => nodeRows(p, nodePulls, now));
  return {
    prePulls: sorted.map(prePullRow),
    nodes,
    caches: nodeCacheRows(
      nodePulls,
      opts.caches === 'prePullNodes' ? new Set(nodes.map((n) => n.node)) : undefined,
    ),
  };
}

export interface StatusTextOptions {
  /** Print the NAMESPACE column (all namespaces), as `kubectl get -A` does. */
  withNamespace: boolean;
  /** Add the per-node, per-image table. */
  wide: boolean;
  now: Date;
}

function nextRun(row: PrePullRow, now: Date): string {
  if (row.suspended) return '<suspended>';
  if (row.nextRun === undefined) return '<none>';
  const t = Date.parse(row.nextRun);
  return Number.isNaN(t) ? '<unknown>' : `in ${humanDuration(Math.max(0, t - now.getTime()))}`;
}

export function formatStatusText(report: StatusReport, opts: StatusTextOptions): string {
  // No PrePulls: the caches alone, in the wide view (nodes report them whether targeted or not).
  if (report.prePulls.length === 0)
    return opts.wide && report.caches.length > 0 ? formatCacheTable(report.caches, opts.now) : '';
  const ns = (v: string) => (opts.withNamespace ? [v] : []);
  let s = kubectlTable(
    [
      ...ns('NAMESPACE'),
      'NAME',
      'IMAGES',
      'NODES',
      'DONE',
      'PULLING',
      'FAILED',
      'PENDING',
      'READY',
      'NEXT RUN',
      'AGE',
    ],
    report.prePulls.map((r) => [
      ...ns(r.namespace),
      r.name,
      String(r.images.length),
      String(r.nodes.targeted),
      String(r.nodes.done),
      String(r.nodes.pulling),
      String(r.nodes.failed),
      String(r.nodes.pending),
      r.ready,
      nextRun(r, opts.now),
      ageOf(r.createdAt, opts.now),
    ]),
  );
  if (opts.wide) {
    s += '\n';
    if (report.nodes.length === 0) s += 'No node has work for these PrePulls yet.\n';
    else
      s += kubectlTable(
        ['PREPULL', 'NODE', 'IMAGE', 'STATE', 'REASON', 'ATTEMPTS', 'DURATION'],
        report.nodes.map((r) => [
          opts.withNamespace ? r.prePull : r.prePull.slice(r.prePull.indexOf('/') + 1),
          r.node,
          r.image,
          r.state,
          r.reason ?? '<none>',
          r.attempts === undefined ? '<none>' : String(r.attempts),
          r.durationSeconds === undefined ? '<none>' : humanDuration(r.durationSeconds * 1000),
        ]),
      );
    if (report.caches.length > 0) s += '\n' + formatCacheTable(report.caches, opts.now);
  }
  return s;
}
