export { DoctorError, type DoctorErrorCode } from './errors.js';
export {
  checkKubeletConfig,
  parseKubeletConfig,
  KUBELET_DEFAULTS,
  type KubeletConfig,
} from './kubelet-config.js';
export { checkKubeletFields, closestName, editDistance, KUBELET_FIELDS } from './kubelet-fields.js';
export {
  checkContainerdConfig,
  parseContainerdConfig,
  hostsTomlFromMirrors,
  DEFAULT_CONFIG_PATH,
  CONTAINERD2_DEFAULT_CONFIG_PATH,
  TRANSFER_PLUGIN,
  type ContainerdCheckOptions,
  type ContainerdFinding,
  type ConfigFile,
} from './containerd-config.js';
export {
  renderKubeletConfig,
  renderContainerdConfig,
  KUBELET_RENDER_DEFAULTS,
  CONTAINERD_RENDER_DEFAULTS,
  type KubeletRenderOptions,
  type ContainerdRenderOptions,
} from './render.js';
