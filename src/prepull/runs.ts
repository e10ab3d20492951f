import { scheduleState, toTimestamp } from './schedule.js';
import type { SpecParseResult } from './spec.js';
import { prePullKey, type PrePull } from './types.js';

/**
 * When tags are resolved to digests (docs/prepull.md "Who does what"): at a PrePull's first
 * sight or when its generation changed (no schedule), at each scheduled run (schedule), and for
 * images an edit added that have no status yet. Never while suspended. Pure: the controller does
 * the resolving and hands the results to the planner.
 */

export type RunReason = 'new' | 'generation' | 'schedule' | 'added';

export interface RunRequest {
  key: string;
  reason: RunReason;
  /** Identifies this run, so a controller may reuse its results when the status write lagged. */
  token: string;
  /** Becomes status.lastScheduleTime; absent for 'added' (not a run, a catch-up). */
  runTime?: Date;
  /** Images to resolve (references that name a digest need no resolving and are left out). */
  images: string[];
}

export function pinnedDigest(image: string): string | undefined {
  const at = image.indexOf('@');
  return at < 0 ? undefined : image.slice(at + 1);
}

export function runDue(prePull: PrePull, parsed: SpecParseResult, now: Date): RunRequest | undefined {
  if (!parsed.ok || prePull.metadata.deletionTimestamp) return undefined;
  const spec = parsed.spec;
  if (spec.suspend) return undefined;
  const key = prePullKey(prePull.metadata);
  const status = prePull.status;
  const generation = prePull.metadata.generation ?? 0;
  const byTag = spec.images.filter((i) => pinnedDigest(i) === undefined);
  if (spec.schedule !== undefined) {
    const { due } = scheduleState(spec, status?.lastScheduleTime, now);
    if (due !== undefined) {
      const isNew = status?.lastScheduleTime === undefined;
      return {
        key,
        reason: isNew ? 'new' : 'schedule',
        token: isNew ? `new:${prePull.metadata.uid ?? ''}` : `run:${toTimestamp(due)}`,
        runTime: due,
        images: byTag,
      };
    }
  } else if (status?.observedGeneration !== generation) {
    const isNew = status?.observedGeneration === undefined;
    return {
      key,
      reason: isNew ? 'new' : 'generation',
      token: `gen:${generation}`,
      runTime: new Date(Math.floor(now.getTime() / 1000) * 1000),
      images: byTag,
    };
  }
  const known = new Set((status?.images ?? []).map((i) => i.image));
  const added = byTag.filter((i) => !known.has(i));
  if (added.length === 0) return undefined;
  return { key, reason: 'added', token: `added:${generation}:${added.join(',')}`, images: added };
}
