import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from './prom-client-core.js';
import type { SendBudgetStats } from './send-budget.js';

/** The mirror's Prometheus metrics, on a registry of its own (several mirrors may share a process in tests). */
export class MirrorMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: 'hoist_mirror_requests_total',
    help: 'HTTP requests by route, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'hoist_mirror_request_duration_seconds',
    help: 'Time from request to the end of the response, by route',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [this.registry],
  });

  readonly cacheLookups = new Counter({
    name: 'hoist_mirror_cache_lookups_total',
    help: 'Cache lookups by kind (blob, manifest, tag) and result (hit, miss, stale)',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  readonly servedBytes = new Counter({
    name: 'hoist_mirror_served_bytes_total',
    help: 'Blob bytes sent to clients, by source: cache (stored blob), inflight (a download in progress), upstream (a range passed through)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly fetchedBytes = new Counter({
    name: 'hoist_mirror_fetched_bytes_total',
    help: 'Blob bytes this mirror downloaded, by source: upstream (a registry) or peer (another Hoist mirror)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });

  readonly upstreamBytes = new Counter({
    name: 'hoist_mirror_upstream_bytes_total',
    help: 'Blob bytes received from upstream registries',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly upstreamResumes = new Counter({
    name: 'hoist_mirror_upstream_resumes_total',
    help: 'Blob downloads resumed with a Range request after the upstream body broke or stalled',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  readonly upstreamFetchDuration = new Histogram({
    name: 'hoist_mirror_upstream_fetch_duration_seconds',
    help: 'Duration of upstream fetches, by upstream, kind and outcome',
    labelNames: ['upstream', 'kind', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.25, 1, 5, 15, 60, 300, 1200],
    registers: [this.registry],
  });

  readonly inflightFetches = new Gauge({
    name: 'hoist_mirror_inflight_fetches',
    help: 'Blob downloads from upstream in progress',
    registers: [this.registry],
  });

  readonly inflightClients = new Gauge({
    name: 'hoist_mirror_inflight_clients',
    help: 'Clients being served from downloads still in progress',
    registers: [this.registry],
  });

  readonly storeBytes = new Gauge({
    name: 'hoist_mirror_store_bytes',
    help: 'Bytes of verified blobs in the store',
    registers: [this.registry],
  });

  readonly storeBlobs = new Gauge({
    name: 'hoist_mirror_store_blobs',
    help: 'Verified blobs in the store',
    registers: [this.registry],
  });

  readonly gcEvictions = new Counter({
    name: 'hoist_mirror_gc_evictions_total',
    help: 'Blobs evicted by the garbage collector (least recently used first)',
    registers: [this.registry],
  });

  readonly gcEvictedBytes = new Counter({
    name: 'hoist_mirror_gc_evicted_bytes_total',
    help: 'Bytes freed by the garbage collector',
    registers: [this.registry],
  });

  readonly storeWriteFailures = new Counter({
    name: 'hoist_mirror_store_write_failures_total',
    help: 'Downloads that could not be stored (e.g. reason="ENOSPC": the disk is full); clients were still served',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly verifyFailures = new Counter({
    name: 'hoist_mirror_verify_failures_total',
    help: 'Downloads discarded because their bytes did not match the digest or size',
    labelNames: ['upstream'] as const,
    registers: [this.registry],
  });

  /** Set by the mirror: where the send-buffer gauges read their values at scrape time. */
  private sendBudgetStats: (() => SendBudgetStats) | undefined;

  readonly sendBufferBytes = this.budgetGauge(
    'hoist_mirror_send_buffer_bytes',
    'Bytes of response send buffers leased now (never above hoist_mirror_send_buffer_budget_bytes)',
    (s) => s.leasedBytes,
  );

  readonly sendBufferPeakBytes = this.budgetGauge(
    'hoist_mirror_send_buffer_peak_bytes',
    'Highest hoist_mirror_send_buffer_bytes since the mirror started',
    (s) => s.peakLeasedBytes,
  );

  readonly sendBufferBudgetBytes = this.budgetGauge(
    'hoist_mirror_send_buffer_budget_bytes',
    'Budget for response send buffers, leased and kept for reuse together (config sendBufferBytes)',
    (s) => s.totalBytes,
  );

  readonly sendWaiting = this.budgetGauge(
    'hoist_mirror_send_waiting',
    'Responses waiting, first come first served, for a send buffer',
    (s) => s.waiting,
  );

  readonly sendStalls = new Counter({
    name: 'hoist_mirror_send_stalls_total',
    help: 'Responses aborted because the client read nothing for sendStallTimeoutSeconds',
    registers: [this.registry],
  });

  readonly acceptHolds = new Counter({
    name: 'hoist_mirror_accept_holds_total',
    help: 'Times sending paused while connections waited to be accepted, by whether the hold hit its limit (capped)',
    labelNames: ['capped'] as const,
    registers: [this.registry],
  });

  readonly acceptHoldSeconds = new Counter({
    name: 'hoist_mirror_accept_hold_seconds_total',
    help: 'Time sending was paused while connections waited to be accepted',
    registers: [this.registry],
  });

  observeSendBudget(stats: () => SendBudgetStats): void {
    this.sendBudgetStats = stats;
  }

  private budgetGauge(name: string, help: string, pick: (s: SendBudgetStats) => number): Gauge {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const metrics = this;
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        const stats = metrics.sendBudgetStats?.();
        if (stats) this.set(pick(stats));
      },
    });
  }

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'hoist_' });
  }
}
