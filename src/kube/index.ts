// Thin Kubernetes API access: configuration, a JSON client over node:https, list+watch informers
// and Lease-based leader election. Other capabilities import only from here.
export { Backoff, DEFAULT_BACKOFF, sleep, type BackoffOptions } from './backoff.js';
export {
  KubeClient,
  type DeleteOptions,
  type KubeClientOptions,
  type ListOptions,
  type PatchType,
  type Query,
  type RequestOptions,
  type WatchOptions,
  type WriteOptions,
} from './client.js';
export {
  KubeConfigError,
  KubeConnectionError,
  KubeError,
  type KubeConfigErrorCode,
  type KubeConnectionErrorCode,
  type KubeErrorCode,
  type KubeStatus,
} from './errors.js';
export { Informer, type ChangeListener, type InformerOptions, type ListWatchClient } from './informer.js';
export { resolveKubeConfig, type KubeConfigFile, type KubeConfigPlan, type PemSource } from './kubeconfig.js';
export {
  LeaderElector,
  type LeaderCallbacks,
  type LeaderElectorOptions,
  type LeaseClient,
} from './leader-elector.js';
export {
  decideLease,
  formatMicroTime,
  releasedSpec,
  type Lease,
  type LeaseDecision,
  type LeaseDecisionInput,
  type LeaseSpec,
} from './lease-decision.js';
export {
  inClusterConfig,
  loadKubeConfig,
  SERVICE_ACCOUNT_DIR,
  type KubeConfigEnvironment,
  type LoadKubeConfigOptions,
} from './load-config.js';
export { resourcePath, withQuery } from './resource-path.js';
export {
  objectKey,
  type ChangeType,
  type KubeConfig,
  type KubeObject,
  type ObjectMeta,
  type OwnerReference,
  type ResourceRef,
  type WatchEvent,
  type WatchEventType,
} from './types.js';
