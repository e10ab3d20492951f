export { InstallError, type InstallErrorCode } from './errors.js';
export {
  DEFAULT_VALUES,
  HOIST_VERSION,
  mergeValues,
  resolveValues,
  valuesJsonSchema,
  valuesSchema,
  type Toleration,
  type Values,
} from './values.js';
export { readValuesFile, checkComponentValues } from './values-file.js';
export { RELEASE_NAME, type KubeObject } from './meta.js';
export { buildInstall, DEFAULT_NAMESPACE, type BuildInstallOptions } from './build.js';
export { installCrds } from './crds.js';
export { formatObjects, type ObjectFormat } from './output.js';
export {
  buildPrepullDaemonSet,
  COPY_COMMAND,
  HELPER_BIN_DIR,
  normaliseImageRef,
  parseMaxUnavailable,
  parseNodeSelector,
  parseToleration,
  PREPULL_DEFAULTS,
  pullPolicyFor,
  TRUE_COMMAND,
  type PrepullDaemonSetOptions,
} from './prepull-daemonset.js';
export { grafanaDashboard, grafanaDashboardJson, grafanaObjects } from './grafana-dashboard.js';
