// Live pull telemetry: kubelet pull events into Prometheus metrics and recent-pull records.
export { FAILURE_CAUSES, PULL_DURATION_BUCKETS, PullMetrics, VIAS, type Via } from './metrics.js';
export {
  PULL_EVENT_REASONS,
  PullTelemetry,
  slimEvent,
  TELEMETRY_DEFAULTS,
  type PullTelemetryOptions,
} from './pull-telemetry.js';
export {
  newest,
  Ring,
  slowest,
  summarise,
  type PullRecord,
  type PullSummary,
  type PullTelemetrySource,
} from './records.js';
export {
  formatMirroredRegistries,
  imageRegistry,
  MIRRORED_REGISTRIES_ANNOTATION,
  OTHER_REGISTRY,
  parseMirroredRegistries,
  registryLabel,
  viaFor,
} from './via.js';
