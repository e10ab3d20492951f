import { Cron } from 'croner';

/**
 * Scheduled runs. A run is due when the latest scheduled time at or before now is later than
 * the last run (`status.lastScheduleTime`): however many times were missed while the controller
 * was down, that is one run, as a CronJob with no starting deadline behaves once caught up.
 */

const cache = new Map<string, Cron>();

/** Parses a five-field cron schedule in a time zone (default UTC); throws with croner's reason. */
export function parseCron(schedule: string, timeZone?: string): Cron {
  const key = `${schedule}\n${timeZone ?? ''}`;
  let cron = cache.get(key);
  if (cron === undefined) {
    cron = new Cron(schedule, { mode: '5-part', paused: true, timezone: timeZone ?? 'Etc/UTC' });
    // croner checks the zone lazily, on the first date it computes.
    cron.nextRun(new Date(0));
    if (cache.size > 1000) cache.clear();
    cache.set(key, cron);
  }
  return cron;
}

export interface ScheduleInput {
  schedule?: string;
  timeZone?: string;
  suspend: boolean;
}

export interface ScheduleState {
  /** The scheduled time of a run due now (now itself for the first run of a new PrePull). */
  due?: Date;
  /** The next scheduled time after now; absent without a schedule or while suspended. */
  next?: Date;
}

/** Kubernetes timestamps (metav1.Time) carry whole seconds. */
export function toTimestamp(date: Date): string {
  return new Date(Math.floor(date.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The latest scheduled time at or before `now` (croner's previousRuns is exclusive of its reference). */
export function latestRunAtOrBefore(cron: Cron, now: Date): Date | undefined {
  return cron.previousRuns(2, new Date(now.getTime() + 1)).find((d) => d.getTime() <= now.getTime());
}

export function scheduleState(
  spec: ScheduleInput,
  lastScheduleTime: string | undefined,
  now: Date,
): ScheduleState {
  if (spec.schedule === undefined || spec.suspend) return {};
  const cron = parseCron(spec.schedule, spec.timeZone);
  const next = cron.nextRun(now) ?? undefined;
  const last = lastScheduleTime === undefined ? NaN : Date.parse(lastScheduleTime);
  if (Number.isNaN(last)) {
    // A new PrePull pulls at once; the schedule refreshes what it pulled.
    return { due: new Date(Math.floor(now.getTime() / 1000) * 1000), ...(next ? { next } : {}) };
  }
  const latest = latestRunAtOrBefore(cron, now);
  const due = latest !== undefined && latest.getTime() > last ? latest : undefined;
  return { ...(due ? { due } : {}), ...(next ? { next } : {}) };
}
