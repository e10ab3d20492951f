export * from './types.js';
export {
  parsePrePullSpec,
  prePullSpecSchema,
  normaliseImage,
  type PrePullSpec,
  type ConcurrencyLimit,
  type SpecParseResult,
} from './spec.js';
export { CRON_PATTERN, IMAGE_REFERENCE_PATTERN, PERCENT_PATTERN, TIME_ZONE_PATTERN } from './patterns.js';
export {
  isTarget,
  matchesSelector,
  toleratesAll,
  toleratesTaint,
  resolveMaxConcurrentNodes,
  type Targeting,
} from './targeting.js';
export { parseCron, scheduleState, toTimestamp, type ScheduleInput, type ScheduleState } from './schedule.js';
export { runDue, pinnedDigest, type RunRequest, type RunReason } from './runs.js';
export {
  plan,
  PlanCache,
  type PlanInput,
  type PlanOutput,
  type PrePullInput,
  type NodePullAction,
  type StatusUpdate,
  type Resolution,
  type RunResult,
} from './plan.js';
export {
  mergeContributions,
  sameNodePullSpec,
  type Contribution,
  type EntryConfig,
  type WantedImage,
} from './node-pull-spec.js';
export { summariseNodePullStatus } from './node-pull-summary.js';
export { buildConditions } from './conditions.js';
export { prePullCrd, nodePullCrd, crdFiles } from './crd.js';
export {
  CONTROLLER_CLUSTER_RULES,
  CONTROLLER_NAMESPACE_RULES,
  AGENT_CLUSTER_RULES,
  AGENT_NAMESPACE_RULES,
  controllerRoles,
  type PolicyRule,
} from './rbac.js';
export {
  mirroredSecretName,
  mergePullSecrets,
  mirroredSecret,
  MIRRORED_SELECTOR,
  type MergedPullSecrets,
} from './pull-secrets.js';
export { DigestResolver, CONTAINERD_ACCEPT, type DigestResolverOptions } from './digest-resolver.js';
export {
  Reconciler,
  type ClusterView,
  type KubeApi,
  type ReconcilerOptions,
  type ReconcileResult,
} from './reconciler.js';
export { PrePullController, DEFAULT_DEBOUNCE_MS, type ControllerOptions } from './controller.js';
export { ControllerMetrics } from './metrics.js';
export { createControllerServer, listen, type RouteHandler } from './server.js';
