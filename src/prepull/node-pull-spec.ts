import type { PlanCache } from './node-view.js';
import { DEFAULTS, type Node, type NodePull, type NodePullImage, type NodePullSpec } from './types.js';

/**
 * Merging what several PrePulls want on one node into that node's NodePull spec (planning rule
 * 5): one entry per image, `sources` listing every PrePull that wants it, `pin` if any pins, the
 * smallest limits. The planner hands in contributions; this module owns the merge and the
 * comparison with what the API server holds.
 */

/** What one PrePull asks of every node it touches. */
export interface EntryConfig {
  key: string;
  pin: boolean;
  pullSecrets: readonly string[];
  retryLimit: number;
  retryBackoffSeconds: number;
  progressTimeoutSeconds: number;
  maxConcurrentPulls: number;
  /** Later runs win a digest conflict: epoch ms of the PrePull's last run (0 when none). */
  runRank: number;
}

export interface WantedImage {
  image: string;
  digest?: string;
  /** The run that asks for it (NodePullImage.run). */
  run?: string;
}

/** The later of two runs (RFC 3339); undefined when neither is set. */
export function laterRun(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined) return b;
  if (b === undefined || a === b) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

/** One PrePull's images on one node: its wanted set, or (`kept`) the entries it had before. */
export interface Contribution {
  config: EntryConfig;
  items: readonly WantedImage[];
  kept: boolean;
  /** Set on a contribution shared by many nodes (a PrePull's wanted set): equal ids, equal merge. */
  id?: number;
}

interface Merged {
  image: string;
  digest: string | undefined;
  /** Rank of the contribution whose digest won: wanted over kept, a digest over none, later runs. */
  rank: number;
  pin: boolean;
  pullSecrets: string[];
  retryLimit: number;
  retryBackoffSeconds: number;
  progressTimeoutSeconds: number;
  sources: string[];
  run: string | undefined;
}

function rankOf(c: Contribution, item: WantedImage): number {
  return (c.kept ? 0 : 4e15) + (item.digest === undefined ? 0 : 2e15) + c.config.runRank;
}

const byImage = (a: { image: string }, b: { image: string }) =>
  a.image < b.image ? -1 : a.image > b.image ? 1 : 0;

/** The NodePull spec for `nodeName`, or undefined when nothing is wanted there. */
export function mergeContributions(
  nodeName: string,
  contributions: readonly Contribution[],
): NodePullSpec | undefined {
  const merged = new Map<string, Merged>();
  let maxConcurrentPulls = Infinity;
  for (const c of contributions) {
    if (c.items.length === 0) continue;
    const cfg = c.config;
    maxConcurrentPulls = Math.min(maxConcurrentPulls, cfg.maxConcurrentPulls);
    for (const item of c.items) {
      const m = merged.get(item.image);
      const rank = rankOf(c, item);
      if (m === undefined) {
        merged.set(item.image, {
          image: item.image,
          digest: item.digest,
          rank,
          pin: cfg.pin,
          pullSecrets: [...cfg.pullSecrets],
          retryLimit: cfg.retryLimit,
          retryBackoffSeconds: cfg.retryBackoffSeconds,
          progressTimeoutSeconds: cfg.progressTimeoutSeconds,
          sources: [cfg.key],
          run: item.run,
        });
        continue;
      }
      if (rank > m.rank) {
        m.rank = rank;
        m.digest = item.digest;
      }
      m.pin ||= cfg.pin;
      for (const s of cfg.pullSecrets) if (!m.pullSecrets.includes(s)) m.pullSecrets.push(s);
      m.retryLimit = Math.min(m.retryLimit, cfg.retryLimit);
      m.retryBackoffSeconds = Math.min(m.retryBackoffSeconds, cfg.retryBackoffSeconds);
      m.progressTimeoutSeconds = Math.min(m.progressTimeoutSeconds, cfg.progressTimeoutSeconds);
      if (!m.sources.includes(cfg.key)) m.sources.push(cfg.key);
      m.run = laterRun(m.run, item.run);
    }
  }
  if (merged.size === 0) return undefined;
  const images: NodePullImage[] = [];
  for (const m of merged.values()) images.push(toEntry(m));
  images.sort(byImage);
  return { nodeName, maxConcurrentPulls, images };
}

function toEntry(m: Merged): NodePullImage {
  m.sources.sort();
  m.pullSecrets.sort();
  return {
    image: m.image,
    ...(m.digest === undefined ? {} : { digest: m.digest }),
    pin: m.pin,
    ...(m.pullSecrets.length > 0 ? { pullSecrets: m.pullSecrets } : {}),
    retryLimit: m.retryLimit,
    retryBackoffSeconds: m.retryBackoffSeconds,
    progressTimeoutSeconds: m.progressTimeoutSeconds,
    sources: m.sources,
    ...(m.run === undefined ? {} : { run: m.run }),
  };
}

function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Field-by-field comparison (no serialising: this runs for every node on every reconcile). */
export function sameNodePullSpec(a: NodePullSpec, b: NodePullSpec | undefined): boolean {
  if (b === undefined || a.nodeName !== b.nodeName || a.maxConcurrentPulls !== b.maxConcurrentPulls)
    return false;
  const x = a.images;
  const y = b.images ?? [];
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) {
    const p = x[i]!;
    const q = y[i]!;
    if (
      p.image !== q.image ||
      p.digest !== q.digest ||
      (p.pin ?? false) !== (q.pin ?? false) ||
      p.retryLimit !== q.retryLimit ||
      p.retryBackoffSeconds !== q.retryBackoffSeconds ||
      p.progressTimeoutSeconds !== q.progressTimeoutSeconds ||
      p.run !== q.run ||
      !sameStrings(p.pullSecrets, q.pullSecrets) ||
      !sameStrings(p.sources, q.sources)
    ) {
      return false;
    }
  }
  return true;
}

/** What the planner asks of a NodePull: only the ones that must change. */
export type NodePullAction =
  | { action: 'create'; name: string; owner: { name: string; uid: string }; spec: NodePullSpec }
  | { action: 'update'; name: string; spec: NodePullSpec }
  | { action: 'delete'; name: string };

/** sameNodePullSpec, remembered per stored object and template (an unchanged node costs a lookup). */
function isSame(
  cache: PlanCache,
  current: NodePull,
  spec: NodePullSpec,
  template: NodePullSpec | undefined,
): boolean {
  if (template === undefined || current.spec?.nodeName !== spec.nodeName)
    return sameNodePullSpec(spec, current.spec);
  const hit = cache.same.get(current);
  if (hit?.template === template) return hit.same;
  const same = sameNodePullSpec(spec, current.spec);
  cache.same.set(current, { template, same });
  return same;
}

/**
 * The spec of a node no PrePull has work for: no images, and the concurrency the CRD defaults to
 * (written out, so that the stored object equals it and no reconcile rewrites it). The NodePull
 * stays so that the node's agent has somewhere to report its mirror's figures (status.mirror);
 * the agent treats an empty list as it treated a deleted NodePull (src/agent/node-pull-sync.ts).
 */
export function emptyNodePullSpec(nodeName: string): NodePullSpec {
  return { nodeName, maxConcurrentPulls: DEFAULTS.maxConcurrentPullsPerNode, images: [] };
}

/**
 * One NodePull per Node, whatever its taints or schedulability: the agent DaemonSet tolerates
 * every taint and runs on cordoned nodes too, and every agent reports its mirror in its NodePull.
 * A Node being deleted gets none unless a PrePull still has entries there (invalid PrePulls keep
 * theirs); its NodePull goes with it through the owner reference.
 */
export function nodePullActions(
  nodes: readonly Node[],
  nodePulls: readonly NodePull[],
  contributions: ReadonlyMap<string, Contribution[]>,
  cache: PlanCache,
): NodePullAction[] {
  const actions: NodePullAction[] = [];
  const existing = new Map<string, NodePull>();
  for (const np of nodePulls) existing.set(np.metadata.name, np);
  const seen = new Set<string>();
  cache.trim();
  for (const node of nodes) {
    const name = node.metadata.name;
    seen.add(name);
    const current = existing.get(name);
    const list = contributions.get(name);
    // Nodes wanting the same PrePulls' wanted sets (the common case) share one merged template.
    let template: NodePullSpec | undefined;
    let spec: NodePullSpec | undefined;
    if (list !== undefined) {
      const key = list.every((c) => c.id !== undefined) ? list.map((c) => c.id).join(',') : undefined;
      if (key === undefined) spec = mergeContributions(name, list);
      else {
        if (!cache.merges.has(key)) cache.merges.set(key, mergeContributions('', list));
        template = cache.merges.get(key);
        if (template) spec = { ...template, nodeName: name };
      }
    }
    // No work here: an empty spec, not a delete, so the agent keeps reporting its mirror. A Node
    // being deleted loses its NodePull as before (the owner reference would take it anyway).
    if (spec === undefined && !node.metadata.deletionTimestamp) spec = emptyNodePullSpec(name);
    if (spec === undefined) {
      if (current !== undefined && !current.metadata.deletionTimestamp)
        actions.push({ action: 'delete', name });
    } else if (current === undefined) {
      actions.push({ action: 'create', name, owner: { name, uid: node.metadata.uid ?? '' }, spec });
    } else if (!isSame(cache, current, spec, template)) {
      actions.push({ action: 'update', name, spec });
    }
  }
  // A NodePull whose Node is gone: the garbage collector follows the owner reference,
  // but a NodePull made without one (or before the Node came back) must not linger.
  for (const np of nodePulls) {
    if (!seen.has(np.metadata.name) && !np.metadata.deletionTimestamp)
      actions.push({ action: 'delete', name: np.metadata.name });
  }
  return actions;
}
