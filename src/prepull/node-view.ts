import type { WantedImage } from './node-pull-spec.js';
import type { NodePull, NodePullImage, NodePullImageStatus, NodePullSpec } from './types.js';

/**
 * The planner's view of NodePulls: each indexed by image, and classified against a PrePull's
 * wanted set (rule 2: done, active or waiting), memoised per NodePull object in a PlanCache so
 * that a reconcile of a cluster where little changed touches little.
 */

/** A NodePull's spec and status, indexed by image. */
export interface NodeView {
  spec: Map<string, NodePullImage> | undefined;
  status: Map<string, NodePullImageStatus> | undefined;
  /** Classifications of this NodePull against wanted sets, by wanted-set key (see classify). */
  classes?: Map<string, Classification>;
}

export const PENDING = 0;
export const SUCCEEDED = 1;
export const FAILED = 2;

/** One node against one wanted set: does its spec hold it, and where each image stands. */
export interface Classification {
  holds: boolean;
  /** Per wanted image: PENDING, SUCCEEDED or FAILED (at the wanted digest). */
  outcome: Uint8Array;
  pending: number;
  failed: number;
  /**
   * The `run` each wanted image's entry carries now, joined, when one differs from the wanted
   * run; undefined when they all match. A done node keeps its stored runs (no write for a run
   * that changed nothing there): see storedRunItems.
   */
  storedRuns: string | undefined;
}

/**
 * Memo a caller may keep between plans (the controller keeps one per leadership term): indexes
 * and classifications of NodePull objects (the informer hands out the same object until it
 * changes), and merged specs by the PrePulls that make them. It changes no result, only how much
 * a reconcile of an unchanged cluster costs. Inputs must not be mutated while it is in use.
 */
export class PlanCache {
  readonly views = new WeakMap<NodePull, NodeView>();
  /** Merge templates (nodeName '') by the signature ids of their contributions. */
  readonly merges = new Map<string, NodePullSpec | undefined>();
  /** Whether a stored NodePull already equals a merge template. */
  readonly same = new WeakMap<NodePull, { template: NodePullSpec; same: boolean }>();
  private readonly ids = new Map<string, number>();
  private nextId = 0;

  /** A stable id for a contribution signature. */
  id(signature: string): number {
    let id = this.ids.get(signature);
    if (id === undefined) {
      if (this.ids.size >= 10_000) {
        this.ids.clear();
        this.merges.clear();
      }
      id = this.nextId++;
      this.ids.set(signature, id);
    }
    return id;
  }

  /** Bounds the merge memo: a cluster has few distinct sets of PrePulls per node. */
  trim(): void {
    if (this.merges.size > 4096) this.merges.clear();
  }
}

export function indexNodePull(np: NodePull | undefined, cache: PlanCache): NodeView {
  if (np === undefined) return { spec: undefined, status: undefined };
  const cached = cache.views.get(np);
  if (cached !== undefined) return cached;
  let spec: Map<string, NodePullImage> | undefined;
  let status: Map<string, NodePullImageStatus> | undefined;
  const specImages = np.spec?.images;
  if (specImages?.length) {
    spec = new Map();
    for (const e of specImages) spec.set(e.image, e);
  }
  // An empty spec (no PrePull has work here) is what a missing NodePull used to be: status left
  // over from earlier entries (an agent that has not reported the emptying) says nothing.
  const statusImages = spec === undefined ? undefined : np.status?.images;
  if (statusImages?.length) {
    status = new Map();
    for (const s of statusImages) status.set(s.image, s);
  }
  const view = { spec, status };
  cache.views.set(np, view);
  return view;
}

/**
 * Whether a reported state is about the wanted digest. No wanted digest (unresolved tag): any.
 * An agent that failed before it knew a digest reports none; it failed the spec's digest.
 */
function aboutWanted(
  want: string | undefined,
  s: NodePullImageStatus,
  e: NodePullImage | undefined,
): boolean {
  if (want === undefined) return true;
  if (s.digest !== undefined) return s.digest === want;
  return s.phase === 'Failed' && e?.digest === want;
}

/**
 * A failure that answers an older run than the wanted one (docs/prepull.md rule 2): the node is
 * not done, and gets the new run (and so fresh attempts) when its stagger turn comes. The agent
 * echoes the entry's run in status; an agent that predates the field is judged by `finishedAt`.
 */
export function staleFailure(s: NodePullImageStatus, run: string | undefined): boolean {
  if (run === undefined) return false;
  const at = s.run ?? s.finishedAt;
  return at !== undefined && Date.parse(at) < Date.parse(run);
}

/**
 * Classifies a node against a wanted set. Memoised on the NodePull's view: in a steady cluster
 * nothing changed since the last reconcile, and this is the planner's inner loop.
 */
export function classify(
  v: NodeView,
  wanted: readonly WantedImage[],
  wantedKey: string,
  memo: boolean,
): Classification {
  const hit = v.classes?.get(wantedKey);
  if (hit !== undefined) return hit;
  const m = wanted.length;
  const outcome = new Uint8Array(m);
  let holds = true;
  let pending = 0;
  let failed = 0;
  let runsDiffer = false;
  for (let j = 0; j < m; j++) {
    const w = wanted[j]!;
    const e = v.spec?.get(w.image);
    const s = v.status?.get(w.image);
    if (e === undefined || e.digest !== w.digest) holds = false;
    if (e !== undefined && e.run !== w.run) runsDiffer = true;
    if (s !== undefined && (s.phase === 'Succeeded' || s.phase === 'Failed') && aboutWanted(w.digest, s, e)) {
      if (s.phase === 'Succeeded') outcome[j] = SUCCEEDED;
      else if (staleFailure(s, w.run)) {
        outcome[j] = PENDING;
        pending++;
        // Its spec must carry the new run for the agent to try again; until then it waits.
        if (e?.run === undefined || Date.parse(e.run) < Date.parse(w.run!)) holds = false;
      } else {
        outcome[j] = FAILED;
        failed++;
      }
    } else {
      outcome[j] = PENDING;
      pending++;
    }
  }
  const storedRuns = runsDiffer
    ? wanted.map((w) => v.spec?.get(w.image)?.run ?? w.run ?? '').join('\n')
    : undefined;
  const c: Classification = { holds, outcome, pending, failed, storedRuns };
  if (memo) {
    v.classes ??= new Map();
    // A few wanted sets per node (its PrePulls, before and after a run); drop the rest.
    if (v.classes.size >= 16) v.classes.clear();
    v.classes.set(wantedKey, c);
  }
  return c;
}

/** The entries `key` had on a node before, for the images it still wants (a waiting node's). */
export function keptEntries(
  view: NodeView,
  key: string,
  stillWanted: ReadonlySet<string> | undefined,
): WantedImage[] {
  const out: WantedImage[] = [];
  if (view.spec === undefined) return out;
  for (const e of view.spec.values()) {
    if (!e.sources?.includes(key)) continue;
    if (stillWanted !== undefined && !stillWanted.has(e.image)) continue;
    out.push({
      image: e.image,
      ...(e.digest === undefined ? {} : { digest: e.digest }),
      ...(e.run === undefined ? {} : { run: e.run }),
    });
  }
  return out;
}

/** A done node's wanted set with the runs its entries carry now (Classification.storedRuns). */
export function storedRunItems(view: NodeView, wanted: readonly WantedImage[]): WantedImage[] {
  return wanted.map((w) => {
    const run = view.spec?.get(w.image)?.run ?? w.run;
    const { run: _, ...rest } = w;
    return run === undefined ? rest : { ...rest, run };
  });
}
