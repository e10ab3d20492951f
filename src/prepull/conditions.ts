import type { Condition, NodeCounts } from './types.js';

/**
 * PrePull conditions (metav1.Condition): Ready when every desired (node, image) succeeded,
 * Progressing while some node is pulling or waiting its turn. lastTransitionTime moves only when
 * a condition's status does (API conventions), so it says since when.
 */

export interface ConditionInput {
  counts: NodeCounts;
  /** Target nodes not yet started (waiting their turn). */
  waiting: number;
  suspended: boolean;
  invalid?: string;
  generation: number;
  previous: readonly Condition[] | undefined;
  now: string;
}

type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

function drafts(input: ConditionInput): [Draft, Draft] {
  const { counts, waiting } = input;
  if (input.invalid !== undefined) {
    const message = input.invalid.slice(0, 1024);
    return [
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message },
      { type: 'Progressing', status: 'False', reason: 'InvalidSpec', message },
    ];
  }
  if (counts.desired === 0) {
    const message = 'no node matches nodeSelector and tolerates its taints';
    return [
      { type: 'Ready', status: 'True', reason: 'NoTargets', message },
      { type: 'Progressing', status: 'False', reason: 'NoTargets', message },
    ];
  }
  const done = counts.succeeded + counts.failed;
  const ofNodes = `${done}/${counts.desired} nodes done`;
  if (counts.succeeded === counts.desired) {
    return [
      { type: 'Ready', status: 'True', reason: 'Pulled', message: ofNodes },
      { type: 'Progressing', status: 'False', reason: 'Complete', message: ofNodes },
    ];
  }
  const pending = counts.pulling + waiting;
  if (pending === 0) {
    const message = `${ofNodes}, ${counts.failed} failed`;
    return [
      { type: 'Ready', status: 'False', reason: 'Failed', message },
      { type: 'Progressing', status: 'False', reason: 'Failed', message },
    ];
  }
  if (input.suspended && counts.pulling === 0) {
    const message = `${ofNodes}; suspended with ${waiting} waiting`;
    return [
      { type: 'Ready', status: 'False', reason: 'Suspended', message },
      { type: 'Progressing', status: 'False', reason: 'Suspended', message },
    ];
  }
  const message = `${ofNodes}, ${counts.pulling} pulling, ${waiting} waiting`;
  return [
    { type: 'Ready', status: 'False', reason: 'Pulling', message },
    { type: 'Progressing', status: 'True', reason: 'Pulling', message },
  ];
}

export function buildConditions(input: ConditionInput): Condition[] {
  return drafts(input).map((d) => {
    const before = input.previous?.find((c) => c.type === d.type);
    return {
      type: d.type,
      status: d.status,
      observedGeneration: input.generation,
      lastTransitionTime:
        before !== undefined && before.status === d.status && before.lastTransitionTime
          ? before.lastTransitionTime
          : input.now,
      reason: d.reason,
      message: d.message,
    };
  });
}
