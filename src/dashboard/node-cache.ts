import type { NodePull } from '../prepull/index.js';
import type { NodeCache } from './sources.js';

/**
 * Per-node cache figures from two places, merged here (pure):
 *
 * - `mirror`: the controller read the node's mirror /metrics itself (mirror-scraper.ts), possible
 *   where mirrors listen on a pod or node address (zone mode, peer sharing, a non-loopback
 *   `mirror.node.listenAddress`);
 * - `agent`: the node's agent read its mirror (on the node's 127.0.0.1, out of the controller's
 *   reach in the chart's default) and wrote the figures into its NodePull's status.mirror.
 *
 * A successful direct read wins: it is the mirror's own answer, at most one scrape interval old
 * (15 s), and needs no agent; the agent's figures are up to its interval (30 s) old and written
 * only when they change. A failed direct read yields to the agent's figures when there are any,
 * and otherwise still shows (with its error), so a broken scrape is not silently hidden.
 */

/** Pure: the figures the agents reported, one per NodePull that has them. */
export function nodeCachesFromNodePulls(nodePulls: readonly NodePull[]): NodeCache[] {
  const out: NodeCache[] = [];
  for (const np of nodePulls) {
    const m = np.status?.mirror;
    if (!m) continue;
    out.push({
      node: np.spec.nodeName,
      storeBytes: m.storeBytes,
      blobHits: m.blobHits,
      blobLookups: m.blobLookups,
      servedBytes: m.servedBytes,
      upstreamBytes: m.upstreamBytes,
      ...(m.peerBytes !== undefined ? { peerBytes: m.peerBytes } : {}),
      scrapedAt: m.observedAt,
      source: 'agent',
    });
  }
  return out;
}

/** Pure: one entry per node, by the rule above. */
export function mergeNodeCaches(scraped: readonly NodeCache[], reported: readonly NodeCache[]): NodeCache[] {
  const byNode = new Map<string, NodeCache>();
  for (const r of reported) byNode.set(r.node, r);
  for (const s of scraped) {
    if (s.error === undefined || !byNode.has(s.node)) byNode.set(s.node, { ...s, source: 'mirror' });
  }
  return [...byNode.values()];
}
