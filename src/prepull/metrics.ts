import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StatusUpdate } from './plan.js';

/** The controller's Prometheus metrics, on a registry of its own. */
export class ControllerMetrics {
  readonly registry = new Registry();
  readonly leader = new Gauge({
    name: 'hoist_controller_leader',
    help: '1 while this replica holds the Lease and writes, else 0',
    registers: [this.registry],
  });
  readonly reconciles = new Counter({
    name: 'hoist_controller_reconciles_total',
    help: 'Reconcile passes, by result (ok, error)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly reconcileSeconds = new Histogram({
    name: 'hoist_controller_reconcile_duration_seconds',
    help: 'Time of one reconcile pass, API writes included',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly planSeconds = new Histogram({
    name: 'hoist_controller_plan_duration_seconds',
    help: 'Time of the pure planning step of a reconcile',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly writes = new Counter({
    name: 'hoist_controller_api_writes_total',
    help: 'Writes to the API, by kind (nodepull, status, secret), action and result',
    labelNames: ['kind', 'action', 'result'],
    registers: [this.registry],
  });
  readonly resolutions = new Counter({
    name: 'hoist_controller_tag_resolutions_total',
    help: 'Tag to digest resolutions against registries, by result (ok, error)',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly prePullNodes = new Gauge({
    name: 'hoist_prepull_nodes',
    help: 'Target nodes of each PrePull by state (desired, pulling, succeeded, failed)',
    labelNames: ['namespace', 'prepull', 'state'],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Replaces the per-PrePull gauges with this plan's statuses (PrePulls gone drop out). */
  recordStatuses(statuses: readonly StatusUpdate[]): void {
    this.prePullNodes.reset();
    for (const s of statuses) {
      const nodes = s.status.nodes;
      if (!nodes) continue;
      for (const state of ['desired', 'pulling', 'succeeded', 'failed'] as const) {
        this.prePullNodes.set({ namespace: s.namespace, prepull: s.name, state }, nodes[state]);
      }
    }
  }
}
