import { Counter, Histogram, type Registry } from 'prom-client';
import type { FailureCause } from '../analyze/index.js';

/**
 * Pull telemetry's Prometheus metrics (README "Pull telemetry"). Labels are closed sets only:
 * via (hoist, direct), outcome (pulled, failed), cause (the analyzer's FailureCause), and registry
 * (a configured registry host, else "other"). Never a node, pod, namespace or image: a 5,000-node
 * cluster would make series without end.
 */

/** Pull time buckets in seconds: a small image in a second or two up to a 50 GB image in half an hour. */
export const PULL_DURATION_BUCKETS = [1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800];

/** Every cause the analyzer's classification can give (src/analyze/kubelet-events.ts). */
export const FAILURE_CAUSES: readonly FailureCause[] = [
  'rate-limit',
  'not-found',
  'unauthorized',
  'timeout',
  'disk-pressure',
  'other',
];

export const VIAS = ['hoist', 'direct'] as const;
export type Via = (typeof VIAS)[number];

export class PullMetrics {
  readonly duration: Histogram<'via' | 'registry'>;
  readonly pulls: Counter<'via' | 'outcome'>;
  readonly failures: Counter<'via' | 'cause'>;
  readonly backOffs: Counter<'via' | 'cause'>;
  readonly bytes: Counter<'via'>;
  readonly events: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'hoist_image_pull_duration_seconds',
      help: 'Image pull time the kubelet reported in Pulled events (without waiting for earlier pulls), by via (hoist, direct) and registry (a configured registry, else other)',
      labelNames: ['via', 'registry'],
      buckets: PULL_DURATION_BUCKETS,
      registers,
    });
    this.pulls = new Counter({
      name: 'hoist_image_pulls_total',
      help: 'Image pulls the kubelet reported, by via (hoist, direct) and outcome (pulled, failed: one failed attempt)',
      labelNames: ['via', 'outcome'],
      registers,
    });
    this.failures = new Counter({
      name: 'hoist_image_pull_failures_total',
      help: 'Failed image pull attempts (kubelet "Failed to pull image"), by via and cause (rate-limit, not-found, unauthorized, timeout, disk-pressure, other)',
      labelNames: ['via', 'cause'],
      registers,
    });
    this.backOffs = new Counter({
      name: 'hoist_image_pull_backoffs_total',
      help: 'Image pull back-offs (kubelet "Back-off pulling image"), by via and the cause of the failure behind them',
      labelNames: ['via', 'cause'],
      registers,
    });
    this.bytes = new Counter({
      name: 'hoist_image_pull_bytes_total',
      help: 'Image bytes pulled, from the size kubelets 1.30+ put in Pulled events, by via',
      labelNames: ['via'],
      registers,
    });
    this.events = new Counter({
      name: 'hoist_image_pull_events_total',
      help: 'Kubelet pull events counted (Pulled, Failed, BackOff), after de-duplication by event and count',
      labelNames: ['reason'],
      registers,
    });
    // Zero series for every closed label value, so that rate() and the dashboard see 0, not nothing.
    for (const via of VIAS) {
      for (const outcome of ['pulled', 'failed']) this.pulls.inc({ via, outcome }, 0);
      for (const cause of FAILURE_CAUSES) {
        this.failures.inc({ via, cause }, 0);
        this.backOffs.inc({ via, cause }, 0);
      }
      this.bytes.inc({ via }, 0);
    }
  }
}
