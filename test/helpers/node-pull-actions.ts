import type { NodePull } from '../../src/prepull/types.js';
import type { PlanOutput } from '../../src/prepull/plan.js';

/**
 * Applies a plan's NodePull actions to the list as the controller and the API server would: a
 * create or update replaces the spec and keeps what the agent reported; a delete removes it.
 */
export function applyNodePullActions(nodePulls: NodePull[], out: PlanOutput): NodePull[] {
  const byName = new Map(nodePulls.map((n) => [n.metadata.name, n]));
  for (const a of out.nodePulls) {
    if (a.action === 'delete') byName.delete(a.name);
    else
      byName.set(a.name, {
        metadata: { name: a.name },
        spec: a.spec,
        status: byName.get(a.name)?.status ?? {},
      });
  }
  return [...byName.values()];
}
