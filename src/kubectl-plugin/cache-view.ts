// Types only: the plugin does not load the controller's modules at run time.
import type { NodePull } from '../prepull/index.js';
import { ageOf, humanBytes, kubectlTable } from './format.js';

/**
 * The node caches of `kubectl hoist status -o wide`: each node's mirror as its agent last reported
 * it in NodePull status.mirror (docs/prepull.md), so it costs no request beyond the NodePull list
 * the status view already makes. Every node has a NodePull (an empty one where no PrePull has
 * work), so every node whose agent reads its mirror has a row; nodes whose agent reports none
 * are left out. Pure.
 */

export interface NodeCacheRow {
  node: string;
  storeBytes: number;
  blobHits: number;
  blobLookups: number;
  /** blobHits / blobLookups; absent before the first lookup. */
  hitRatio?: number;
  servedBytes: number;
  upstreamBytes: number;
  peerBytes?: number;
  observedAt: string;
}

/** The reported caches of these nodes (undefined: of every node), sorted by node. */
export function nodeCacheRows(
  nodePulls: readonly NodePull[],
  nodes: ReadonlySet<string> | undefined,
): NodeCacheRow[] {
  const rows: NodeCacheRow[] = [];
  for (const np of nodePulls) {
    const node = np.spec?.nodeName || np.metadata.name;
    const m = np.status?.mirror;
    if (!m || (nodes !== undefined && !nodes.has(node))) continue;
    rows.push({
      node,
      storeBytes: m.storeBytes,
      blobHits: m.blobHits,
      blobLookups: m.blobLookups,
      ...(m.blobLookups > 0 ? { hitRatio: Math.round((m.blobHits / m.blobLookups) * 1000) / 1000 } : {}),
      servedBytes: m.servedBytes,
      upstreamBytes: m.upstreamBytes,
      ...(m.peerBytes !== undefined ? { peerBytes: m.peerBytes } : {}),
      observedAt: m.observedAt,
    });
  }
  return rows.sort((a, b) => a.node.localeCompare(b.node));
}

export function formatCacheTable(rows: readonly NodeCacheRow[], now: Date): string {
  return kubectlTable(
    ['NODE', 'CACHE USE', 'HIT RATIO', 'SERVED', 'FROM UPSTREAM', 'FROM PEERS', 'READ'],
    rows.map((r) => [
      r.node,
      humanBytes(r.storeBytes),
      r.hitRatio === undefined ? '<none>' : `${(r.hitRatio * 100).toFixed(1)}%`,
      humanBytes(r.servedBytes),
      humanBytes(r.upstreamBytes),
      r.peerBytes === undefined ? '<none>' : humanBytes(r.peerBytes),
      ageOf(r.observedAt, now),
    ]),
  );
}
