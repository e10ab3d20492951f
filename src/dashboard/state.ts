import type { NodePull, PrePull, PullPhase } from '../prepull/index.js';
import type { NodeCache, PullRecord, PullSummary } from './sources.js';

/**
 * The dashboard's state, as /api/v1/state serves it and the page draws it: pure, built from the
 * informers' objects and the optional sources. Bounded whatever the cluster's size: the matrix
 * holds at most `maxNodes` rows (after the node filter) and `maxImages` columns, and says how many
 * it left out, so a 5,000-node cluster does not make a 50 MB document.
 */

export const STATE_LIMITS = {
  maxNodes: 200,
  maxImages: 64,
  slowest: 10,
  maxFilterLength: 253,
} as const;

/** A matrix cell: the image's phase on the node; `Absent` when that node is not asked for it. */
export type CellPhase = PullPhase | 'Absent';

export interface Cell {
  phase: CellPhase;
  reason?: string;
  message?: string;
  attempts?: number;
}

export interface MatrixRow {
  node: string;
  cells: Cell[];
}

export interface PhaseCounts {
  pending: number;
  pulling: number;
  succeeded: number;
  failed: number;
}

export interface PrePullRow {
  namespace: string;
  name: string;
  images: number;
  nodes: { desired: number; pulling: number; succeeded: number; failed: number };
  /** The Ready condition's status and reason, when the controller has written one. */
  ready?: { status: string; reason: string };
}

export interface BeforeAfterRow {
  image: string;
  direct?: { count: number; medianSeconds: number; p90Seconds: number };
  hoist?: { count: number; medianSeconds: number; p90Seconds: number };
}

export interface CacheRow {
  node: string;
  storeBytes: number;
  /** Blob hits / blob lookups; undefined before the first lookup. */
  hitRatio?: number;
  servedBytes: number;
  upstreamBytes: number;
  peerBytes?: number;
  scrapedAt: string;
  error?: string;
  /** Who read the figures: the controller from the mirror, or the node agent (NodePull status). */
  source?: 'mirror' | 'agent';
}

export interface DashboardState {
  generatedAt: string;
  replica: { identity: string; leader: boolean; synced: boolean };
  counts: PhaseCounts & { nodes: number; images: number; prePulls: number };
  prePulls: PrePullRow[];
  matrix: {
    images: string[];
    rows: MatrixRow[];
    filter: string;
    /** Nodes matching the filter, and images in all; rows/images hold at most the limits. */
    matchingNodes: number;
    totalImages: number;
  };
  /**
   * null: no source (or nothing read yet). Like the matrix: the nodes matching the filter, at most
   * `maxNodes` of them (a 5,000-node cluster whose agents all report would otherwise send a
   * megabyte with every change); `cacheMatching` says how many matched.
   */
  cache: CacheRow[] | null;
  cacheMatching?: number;
  bytes: { upstream: number; cache: number; peers?: number } | null;
  slowest: PullRecord[] | null;
  beforeAfter: BeforeAfterRow[] | null;
}

export interface StateInput {
  prePulls: readonly PrePull[];
  nodePulls: readonly NodePull[];
  identity: string;
  leader: boolean;
  synced: boolean;
  now: Date;
  nodeFilter?: string;
  cache?: readonly NodeCache[];
  slowest?: readonly PullRecord[];
  summary?: readonly PullSummary[];
  limits?: { maxNodes?: number; maxImages?: number };
}

const countKey = {
  Pending: 'pending',
  Pulling: 'pulling',
  Succeeded: 'succeeded',
  Failed: 'failed',
} as const;

/** The cell of one NodePull spec entry: the agent's status when it answers this entry, else Pending. */
function cellOf(np: NodePull, image: string): Cell {
  if (!np.spec.images.some((e) => e.image === image)) return { phase: 'Absent' };
  const s = np.status?.images?.find((i) => i.image === image);
  if (!s) return { phase: 'Pending' };
  return {
    phase: s.phase,
    ...(s.reason ? { reason: s.reason } : {}),
    ...(s.message ? { message: s.message } : {}),
    ...(s.attempts !== undefined ? { attempts: s.attempts } : {}),
  };
}

function prePullRow(p: PrePull): PrePullRow {
  const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
  return {
    namespace: p.metadata.namespace ?? '',
    name: p.metadata.name,
    images: p.spec.images?.length ?? 0,
    nodes: p.status?.nodes ?? { desired: 0, pulling: 0, succeeded: 0, failed: 0 },
    ...(ready ? { ready: { status: ready.status, reason: ready.reason } } : {}),
  };
}

function cacheRows(cache: readonly NodeCache[]): CacheRow[] {
  return [...cache]
    .sort((a, b) => a.node.localeCompare(b.node))
    .map((c) => ({
      node: c.node,
      storeBytes: c.storeBytes,
      ...(c.blobLookups > 0 ? { hitRatio: c.blobHits / c.blobLookups } : {}),
      servedBytes: c.servedBytes,
      upstreamBytes: c.upstreamBytes,
      ...(c.peerBytes !== undefined ? { peerBytes: c.peerBytes } : {}),
      scrapedAt: c.scrapedAt,
      ...(c.error ? { error: c.error } : {}),
      ...(c.source ? { source: c.source } : {}),
    }));
}

function cacheOf(
  cache: readonly NodeCache[] | undefined,
  filter: string,
  maxNodes: number,
): Pick<DashboardState, 'cache' | 'cacheMatching'> {
  if (!cache || cache.length === 0) return { cache: null };
  const matching = cache.filter((c) => filter === '' || c.node.toLowerCase().includes(filter));
  return { cache: cacheRows(matching).slice(0, maxNodes), cacheMatching: matching.length };
}

/**
 * Bytes by where they came from, over every mirror: upstream (fetched from registries), cache
 * (served to clients minus what had to be fetched, i.e. what the cache saved), peers.
 */
function bytesOf(cache: readonly NodeCache[]): DashboardState['bytes'] {
  let upstream = 0;
  let served = 0;
  let peers: number | undefined;
  for (const c of cache) {
    upstream += c.upstreamBytes;
    served += c.servedBytes;
    if (c.peerBytes !== undefined) peers = (peers ?? 0) + c.peerBytes;
  }
  const fetched = upstream + (peers ?? 0);
  return { upstream, cache: Math.max(0, served - fetched), ...(peers !== undefined ? { peers } : {}) };
}

function beforeAfter(summary: readonly PullSummary[]): BeforeAfterRow[] {
  const rows = new Map<string, BeforeAfterRow>();
  for (const s of summary) {
    const row = rows.get(s.image) ?? { image: s.image };
    row[s.via] = { count: s.count, medianSeconds: s.medianSeconds, p90Seconds: s.p90Seconds };
    rows.set(s.image, row);
  }
  // Images seen both ways first: those are the comparison the table is for.
  return [...rows.values()].sort(
    (a, b) =>
      Number(!!b.direct && !!b.hoist) - Number(!!a.direct && !!a.hoist) || a.image.localeCompare(b.image),
  );
}

export function buildState(input: StateInput): DashboardState {
  const maxNodes = input.limits?.maxNodes ?? STATE_LIMITS.maxNodes;
  const maxImages = input.limits?.maxImages ?? STATE_LIMITS.maxImages;
  const filter = (input.nodeFilter ?? '').trim().toLowerCase().slice(0, STATE_LIMITS.maxFilterLength);
  // Every node has a NodePull, most of them empty (no PrePull has work there; the agent reports
  // its mirror in it): the matrix and its node count are about nodes with pulls, not those.
  const nodePulls = input.nodePulls
    .filter((np) => (np.spec.images?.length ?? 0) > 0)
    .sort((a, b) => a.spec.nodeName.localeCompare(b.spec.nodeName));

  const counts = { pending: 0, pulling: 0, succeeded: 0, failed: 0 };
  const imageSet = new Set<string>();
  for (const np of nodePulls) {
    for (const e of np.spec.images) {
      imageSet.add(e.image);
      const phase = cellOf(np, e.image).phase;
      if (phase !== 'Absent') counts[countKey[phase]]++;
    }
  }
  const allImages = [...imageSet].sort();
  const images = allImages.slice(0, maxImages);
  const matching = nodePulls.filter((np) => filter === '' || np.spec.nodeName.toLowerCase().includes(filter));
  const rows = matching.slice(0, maxNodes).map((np) => ({
    node: np.spec.nodeName,
    cells: images.map((image) => cellOf(np, image)),
  }));

  return {
    generatedAt: input.now.toISOString(),
    replica: { identity: input.identity, leader: input.leader, synced: input.synced },
    counts: { ...counts, nodes: nodePulls.length, images: allImages.length, prePulls: input.prePulls.length },
    prePulls: input.prePulls
      .map(prePullRow)
      .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name)),
    matrix: { images, rows, filter, matchingNodes: matching.length, totalImages: allImages.length },
    ...cacheOf(input.cache, filter, maxNodes),
    bytes: input.cache && input.cache.length > 0 ? bytesOf(input.cache) : null,
    slowest: input.slowest && input.slowest.length > 0 ? input.slowest.slice(0, STATE_LIMITS.slowest) : null,
    beforeAfter: input.summary && input.summary.length > 0 ? beforeAfter(input.summary) : null,
  };
}
