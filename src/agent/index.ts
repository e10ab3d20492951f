export { Agent, type AgentOptions, type AgentNodeConfig, type AgentClusterOptions } from './agent.js';
export {
  AgentMetrics,
  KUBELET_IMAGE_PULL_DURATION_BUCKETS,
  imageSizeBucket,
  type PullOutcome,
} from './metrics.js';
export {
  PullQueue,
  type ImageRuntime,
  type ImageState,
  type ImageStatus,
  type PullGuard,
  type PullQueueOptions,
  type PullSpec,
  PullStalledError,
  type StallWatch,
  type Timers,
} from './pull-queue.js';
export {
  checkPull,
  formatMark,
  overHighWaterMark,
  parseHighWaterMark,
  readDisk,
  type DiskReading,
  type PlannedPull,
  type HighWaterMark,
} from './disk-mark.js';
export { AssignmentError, normaliseImage, parseAssignmentBody, parseImagesFile } from './assignments.js';
export { createAgentServer } from './server.js';
export { DiskGuard, type DiskCheck, type DiskGuardOptions, type GuardDecision } from './disk-guard.js';
export { DiskReservations } from './disk-reservations.js';
export { failureReason, statusMessage, type FailureReason, type FailureFacts } from './failure-reason.js';
export { ProgressWatchdog, ingestsMoved, type ProgressWatchdogOptions } from './progress-watchdog.js';
export { retryDelayMs, MAX_RETRY_BACKOFF_SECONDS } from './retry-backoff.js';
export { PinBudget } from './pin-budget.js';
export { PullSecrets, PullSecretError, secretCredentials, type KubeSecret } from './pull-secrets.js';
export { StatusWriter, type StatusWriterOptions } from './status-writer.js';
export {
  MirrorReporter,
  MIRROR_REPORT_DEFAULTS,
  figuresChanged,
  mirrorStatusOf,
  parseMirrorMetricsTarget,
  readMirrorMetrics,
  type MirrorMetricsTarget,
  type MirrorReporterOptions,
} from './mirror-report.js';
export {
  NODEPULL_GROUP,
  NODEPULL_PLURAL,
  NODEPULL_VERSION,
  concurrencyOf,
  imageStatusOf,
  summaryOf,
  wantedImages,
  type NodePull,
  type NodePullImageSpec,
  type NodePullImageStatus,
  type NodePullMirrorStatus,
  type NodePullPhase,
  type NodePullStatus,
  type NodePullSummary,
  type WantedImage,
} from './node-pull.js';
export { NodePullSync, type NodePullApi, type NodePullSyncOptions, type PinPort } from './node-pull-sync.js';
export { kubeNodePullApi } from './kube-node-pull-api.js';
export { kubeMirroredRegistriesMarker, type MirroredRegistriesMarker } from './node-annotation.js';
