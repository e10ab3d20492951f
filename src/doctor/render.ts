import { stringify as tomlStringify } from 'smol-toml';
import { stringify as yamlStringify } from 'yaml';
import {
  checkContainerdConfig,
  DEFAULT_CONFIG_PATH,
  sections,
  STARGZ_SOCKET,
  TRANSFER_PLUGIN,
  type ConfigFile,
} from './containerd-config.js';
import { DoctorError } from './errors.js';
import { checkKubeletConfig } from './kubelet-config.js';

/**
 * Configuration snippets that pass the doctor's checks: a KubeletConfiguration fragment for fast,
 * parallel pulls that keeps pre-pulled images, and containerd's config.toml with config_path,
 * optional stargz snapshotter, and one hosts.toml per mirrored registry. Pure; rendered
 * output is checked with the doctor before it is returned, so a bad combination of options fails.
 */

export interface KubeletRenderOptions {
  maxParallelImagePulls: number;
  imageGCHighThresholdPercent: number;
  imageGCLowThresholdPercent: number;
  imageMinimumGCAge: string;
  imageMaximumGCAge?: string;
  registryPullQPS: number;
  registryBurst: number;
}

export const KUBELET_RENDER_DEFAULTS: KubeletRenderOptions = {
  maxParallelImagePulls: 5,
  imageGCHighThresholdPercent: 80,
  imageGCLowThresholdPercent: 70,
  imageMinimumGCAge: '24h',
  registryPullQPS: 10,
  registryBurst: 20,
};

function failOnErrors(findings: Array<{ severity: string; message: string }>, what: string): void {
  const bad = findings.find((f) => f.severity === 'error' || f.severity === 'warning');
  if (bad) throw new DoctorError('RENDER_INVALID', `${what}: ${bad.message}`);
}

export function renderKubeletConfig(opts: KubeletRenderOptions): ConfigFile {
  const config: Record<string, unknown> = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    serializeImagePulls: false,
    maxParallelImagePulls: opts.maxParallelImagePulls,
    imageGCHighThresholdPercent: opts.imageGCHighThresholdPercent,
    imageGCLowThresholdPercent: opts.imageGCLowThresholdPercent,
    imageMinimumGCAge: opts.imageMinimumGCAge,
    ...(opts.imageMaximumGCAge !== undefined ? { imageMaximumGCAge: opts.imageMaximumGCAge } : {}),
    registryPullQPS: opts.registryPullQPS,
    registryBurst: Math.max(opts.registryBurst, 0),
  };
  failOnErrors(checkKubeletConfig(config), 'these kubelet settings do not work together');
  const content =
    '# Merge into the kubelet configuration file (--config), then restart the kubelet.\n' +
    '# Parallel pulls (1.27+), image GC below the DiskPressure eviction threshold, and pre-pulled\n' +
    '# images kept for imageMinimumGCAge even when unused.\n' +
    yamlStringify(config);
  return { path: '/var/lib/kubelet/config.yaml', content };
}

export interface ContainerdRenderOptions {
  version: 2 | 3;
  configPath: string;
  maxConcurrentDownloads: number;
  stargz: boolean;
  /** registry → mirror URL, e.g. docker.io → http://127.0.0.1:5000 */
  mirrors: Record<string, string>;
}

export const CONTAINERD_RENDER_DEFAULTS: ContainerdRenderOptions = {
  version: 2,
  configPath: DEFAULT_CONFIG_PATH,
  maxConcurrentDownloads: 10,
  stargz: false,
  mirrors: {},
};

function setPath(doc: Record<string, unknown>, keys: string[], values: Record<string, unknown>): void {
  let node = doc;
  for (const k of keys) {
    node[k] ??= {};
    node = node[k] as Record<string, unknown>;
  }
  Object.assign(node, values);
}

export function renderContainerdConfig(opts: ContainerdRenderOptions): ConfigFile[] {
  const s = sections(opts.version);
  const doc: Record<string, unknown> = { version: opts.version };
  // Version 3 (containerd 2.x): CRI pulls go through the transfer service, which has its own
  // max_concurrent_downloads; the CRI's is for the old local pull and setting it forces that.
  // config_path is one folder: the transfer service ignores a ':' list (containerd#12415).
  if (opts.version >= 3)
    setPath(doc, ['plugins', TRANSFER_PLUGIN], { max_concurrent_downloads: opts.maxConcurrentDownloads });
  else setPath(doc, s.images, { max_concurrent_downloads: opts.maxConcurrentDownloads });
  setPath(doc, s.registry, { config_path: opts.configPath });
  if (opts.stargz) {
    setPath(doc, s.snapshotterTable, { snapshotter: 'stargz', disable_snapshot_annotations: false });
    doc.proxy_plugins = { stargz: { type: 'snapshot', address: STARGZ_SOCKET } };
  }
  failOnErrors(checkContainerdConfig(doc), 'these containerd settings do not work together');
  const files: ConfigFile[] = [
    {
      path: '/etc/containerd/config.toml',
      content:
        `# Merge into containerd's config (version ${opts.version}: ${opts.version === 3 ? 'containerd 2.x' : 'containerd 1.6 and 1.7; 2.x migrates it at start'}), then restart containerd.\n` +
        `${tomlStringify(doc)}\n`,
    },
  ];
  for (const [registry, mirror] of Object.entries(opts.mirrors)) {
    let url: URL;
    try {
      url = new URL(mirror);
    } catch {
      throw new DoctorError(
        'RENDER_INVALID',
        `mirror "${mirror}" for ${registry} is not a URL; write e.g. http://127.0.0.1:5000`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new DoctorError('RENDER_INVALID', `mirror "${mirror}" must be an http:// or https:// URL`);
    }
    const server = registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
    const host = { [mirror.replace(/\/+$/, '')]: { capabilities: ['pull', 'resolve'] } };
    files.push({
      path: `${opts.configPath}/${registry}/hosts.toml`,
      content:
        '# containerd tries the mirror first and falls back to server on any error.\n' +
        `${tomlStringify({ server, host })}\n`,
    });
  }
  return files;
}
