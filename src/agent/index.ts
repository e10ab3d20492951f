export { Agent, type AgentOptions, type AgentNodeConfig } from './agent.js';
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
