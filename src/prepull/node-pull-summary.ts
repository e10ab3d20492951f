import type { NodePullImageStatus, NodePullSummary } from './types.js';

/**
 * `status.summary` of a NodePull: counts of its images by phase, which `kubectl get nodepulls`
 * prints (a printer column cannot count a list). The agent writes it with status.images.
 */
export function summariseNodePullStatus(
  images: readonly Pick<NodePullImageStatus, 'phase'>[],
): NodePullSummary {
  const summary: NodePullSummary = { images: images.length, pending: 0, pulling: 0, succeeded: 0, failed: 0 };
  for (const i of images) {
    if (i.phase === 'Pending') summary.pending++;
    else if (i.phase === 'Pulling') summary.pulling++;
    else if (i.phase === 'Succeeded') summary.succeeded++;
    else if (i.phase === 'Failed') summary.failed++;
  }
  return summary;
}
