import type { ConcurrencyLimit } from './spec.js';
import type { Node, Taint, Toleration } from './types.js';

/**
 * Which nodes a PrePull reaches, with a Pod's semantics (core/v1 Toleration.ToleratesTaint and
 * the scheduler's TaintToleration filter): every nodeSelector pair must match a label, and every
 * NoSchedule or NoExecute taint must be tolerated. PreferNoSchedule taints only score a node.
 */

export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  if (t.operator === 'Exists') return true;
  // Equal (the default operator); an absent value is the empty string.
  return (t.value ?? '') === (taint.value ?? '');
}

export function toleratesAll(
  tolerations: readonly Toleration[],
  taints: readonly Taint[] | undefined,
): boolean {
  if (!taints) return true;
  for (const taint of taints) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerations.some((t) => toleratesTaint(t, taint))) return false;
  }
  return true;
}

export function matchesSelector(
  selector: Readonly<Record<string, string>>,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  for (const key in selector) {
    if (labels?.[key] !== selector[key]) return false;
  }
  return true;
}

export interface Targeting {
  nodeSelector: Readonly<Record<string, string>>;
  tolerations: readonly Toleration[];
}

/** Whether `node` is a target: selected, every hard taint tolerated, and not being deleted. */
export function isTarget(spec: Targeting, node: Node): boolean {
  if (node.metadata.deletionTimestamp) return false;
  return (
    matchesSelector(spec.nodeSelector, node.metadata.labels) &&
    toleratesAll(spec.tolerations, node.spec?.taints)
  );
}

/** maxConcurrentNodes against a number of targets: a percentage rounds up; never below 1. */
export function resolveMaxConcurrentNodes(limit: ConcurrencyLimit, targets: number): number {
  const n = limit.kind === 'count' ? limit.value : Math.ceil((limit.value * targets) / 100);
  return Math.max(1, n);
}
