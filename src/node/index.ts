export { NodeConfigError, type NodeErrorCode } from './errors.js';
export { writeFileAtomic } from './atomic-write.js';
export {
  HOIST_HEADER,
  MIRROR_CAPABILITIES,
  defaultOrigin,
  hostOrder,
  mergeHostsToml,
  parseHostsToml,
  renderHostsToml,
  type HostsToml,
  type MergeInput,
} from './hosts-toml.js';
export {
  configureHosts,
  unconfigureHosts,
  hostsTomlPath,
  type ConfigureOptions,
  type UnconfigureOptions,
  type FileAction,
  type FileResult,
  type RegistryTarget,
} from './hosts-config.js';
export { readState, statePath, type BackupState } from './backup-state.js';
export {
  checkConfigPath,
  checkContainerdConfig,
  CONTAINERD2_DEFAULT_CONFIG_PATH,
  registrySection,
  suggestConfigPath,
  type CheckOptions,
  type ConfigPathCheck,
  type ConfigPathStatus,
} from './containerd-config.js';
export {
  containerdBinaryVersion,
  formatVersion,
  parseContainerdVersion,
  type ContainerdVersion,
} from './containerd-version.js';
export { setTomlString, splitTomlKey, tomlKey } from './toml-edit.js';
export { parseMirrorUrl, parseRegistryList } from './targets.js';
export { parseMirrorCounters, readMirrorCounters, type MirrorCounters } from './mirror-stats.js';
export { isMirrorMetrics, parseMirrorCacheFigures, type MirrorCacheFigures } from './mirror-cache-figures.js';
export {
  pullImages,
  mirrorFromHostsToml,
  type PullGuardDecision,
  type PullOptions,
  type PullReport,
} from './pull.js';
export {
  authFilePath,
  authKeyRegistry,
  loadAuthFile,
  parseAuthFile,
  type AuthFile,
  type RegistryCredentials,
} from './auth-file.js';
export {
  ESTARGZ_UNCOMPRESSED_SIZE,
  UNPACK_FACTOR,
  estimateFromManifest,
  nodePlatform,
  selectPlatformManifest,
  type ImageSizeEstimate,
} from './image-size.js';
export {
  ImageSizeEstimator,
  defaultServer,
  registryHosts,
  type SizeEstimatorOptions,
} from './size-estimator.js';
