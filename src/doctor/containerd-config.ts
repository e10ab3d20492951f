import { parse, stringify, TomlError } from 'smol-toml';
import type { Finding } from '../analyze/index.js';
import { DoctorError } from './errors.js';

/**
 * Checks of containerd's config.toml that decide how images are pulled: registry mirrors (the
 * deprecated `registry.mirrors` versus `config_path` + hosts.toml, containerd docs/hosts.md and
 * docs/cri/config.md), the stargz snapshotter as a proxy plugin (stargz-snapshotter
 * docs/INSTALL.md), and `max_concurrent_downloads`. Config versions: 1 (no `version`), 2
 * (containerd 1.x), 3 (containerd 2.x, where the image settings moved to io.containerd.cri.v1.images
 * and `registry.mirrors` is gone). Pure.
 */

export interface ConfigFile {
  path: string;
  content: string;
}

export interface ContainerdFinding extends Finding {
  /** Files to write for the fix (hosts.toml per mirrored registry). */
  files?: ConfigFile[];
}

export type ContainerdConfig = Record<string, unknown>;

export const DEFAULT_CONFIG_PATH = '/etc/containerd/certs.d';
export const STARGZ_SOCKET = '/run/containerd-stargz-grpc/containerd-stargz-grpc.sock';

export function parseContainerdConfig(text: string, source: string): ContainerdConfig {
  try {
    return parse(text) as ContainerdConfig;
  } catch (err) {
    const detail = err instanceof TomlError ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new DoctorError('CONFIG_INVALID', `${source} is not valid TOML: ${detail}`, { cause: err });
  }
}

function at(doc: unknown, ...keys: string[]): Record<string, unknown> | undefined {
  let node: unknown = doc;
  for (const k of keys) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[k];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : undefined;
}

/** Where the image-pull settings live in each config version. */
export function sections(version: number) {
  if (version >= 3) {
    const images = ['plugins', 'io.containerd.cri.v1.images'];
    return {
      images,
      registry: [...images, 'registry'],
      snapshotterTable: images,
      name: 'plugins."io.containerd.cri.v1.images"',
    };
  }
  const cri = version === 2 ? ['plugins', 'io.containerd.grpc.v1.cri'] : ['plugins', 'cri'];
  return {
    images: cri,
    registry: [...cri, 'registry'],
    snapshotterTable: [...cri, 'containerd'],
    name: version === 2 ? 'plugins."io.containerd.grpc.v1.cri"' : 'plugins.cri',
  };
}

/** Turns `registry.mirrors` entries into hosts.toml files (containerd docs/hosts.md). */
export function hostsTomlFromMirrors(mirrors: Record<string, unknown>, configPath: string): ConfigFile[] {
  const files: ConfigFile[] = [];
  for (const [registry, entry] of Object.entries(mirrors)) {
    const endpoints = (at(entry) ?? {}).endpoint;
    const list = Array.isArray(endpoints) ? endpoints.filter((e): e is string => typeof e === 'string') : [];
    const upstream = registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`;
    const server = list.find((e) => e.replace(/\/+$/, '') === upstream) ?? list[list.length - 1] ?? upstream;
    const host: Record<string, unknown> = {};
    for (const e of list) if (e !== server) host[e] = { capabilities: ['pull', 'resolve'] };
    const doc = { server, host };
    files.push({
      path: `${configPath}/${registry === '*' ? '_default' : registry}/hosts.toml`,
      content: `${stringify(doc)}\n`,
    });
  }
  return files;
}

export function checkContainerdConfig(doc: ContainerdConfig): ContainerdFinding[] {
  const out: ContainerdFinding[] = [];
  const add = (f: ContainerdFinding) => out.push(f);
  const version = typeof doc.version === 'number' ? doc.version : 1;
  if (![1, 2, 3].includes(version)) {
    add({
      rule: 'config-version',
      severity: 'error',
      message: `version = ${String(doc.version)} is not a containerd config version`,
      fix: 'use version = 2 (containerd 1.x) or 3 (containerd 2.x)',
    });
    return out;
  }
  const s = sections(version);
  const registry = at(doc, ...s.registry) ?? {};
  const configPath = typeof registry.config_path === 'string' ? registry.config_path : undefined;
  const mirrors = at(registry, 'mirrors');

  if (mirrors && Object.keys(mirrors).length > 0) {
    const target = configPath ?? DEFAULT_CONFIG_PATH;
    if (configPath) {
      add({
        rule: 'mirrors-with-config-path',
        severity: 'error',
        message:
          'registry.mirrors and registry.config_path are both set: containerd refuses to start the CRI plugin',
        fix: `remove the registry.mirrors tables and write the hosts.toml files below under ${configPath}`,
        files: hostsTomlFromMirrors(mirrors, target),
      });
    } else {
      add({
        rule: 'registry-mirrors-deprecated',
        severity: version >= 3 ? 'error' : 'warning',
        message:
          version >= 3
            ? 'registry.mirrors is not read by containerd 2.x: these mirrors are not used'
            : 'registry.mirrors is deprecated since containerd 1.5 and removed in 2.0; hosts.toml replaces it and is re-read on each pull, without a restart',
        fix: `replace it with [${s.name}.registry] config_path = "${target}" and the hosts.toml files below`,
        files: hostsTomlFromMirrors(mirrors, target),
      });
    }
  } else if (!configPath) {
    add({
      rule: 'no-config-path',
      severity: 'info',
      message:
        'registry.config_path is not set: containerd reads no hosts.toml, so no mirror can be configured per registry',
      fix: `add [${s.name}.registry] config_path = "${DEFAULT_CONFIG_PATH}" (hoist render containerd-config)`,
    });
  }
  const configs = at(registry, 'configs');
  if (configs && Object.keys(configs).length > 0) {
    add({
      rule: 'registry-configs-deprecated',
      severity: 'warning',
      message: 'registry.configs (auth and tls per registry) is deprecated',
      fix: "move TLS settings into each registry's hosts.toml (ca, client, skip_verify) and credentials into imagePullSecrets",
    });
  }

  // Lazy pulling through the stargz snapshotter.
  const proxies = at(doc, 'proxy_plugins') ?? {};
  const snapTable = at(doc, ...s.snapshotterTable) ?? {};
  const snapshotter = typeof snapTable.snapshotter === 'string' ? snapTable.snapshotter : 'overlayfs';
  const annotationsDisabled =
    typeof snapTable.disable_snapshot_annotations === 'boolean'
      ? snapTable.disable_snapshot_annotations
      : version < 3;
  const stargzProxy = Object.entries(proxies).find(
    ([name, p]) => name === 'stargz' || at(p)?.address === STARGZ_SOCKET,
  );
  const builtIn = ['overlayfs', 'native', 'btrfs', 'zfs', 'devmapper', 'aufs', 'blockfile', 'erofs'];
  if (!builtIn.includes(snapshotter) && !(snapshotter in proxies)) {
    add({
      rule: 'snapshotter-missing',
      severity: 'error',
      message: `the CRI snapshotter is "${snapshotter}" but no [proxy_plugins.${snapshotter}] is configured: pulls fail`,
      fix: `add [proxy_plugins.${snapshotter}] type = "snapshot" address = "${STARGZ_SOCKET}"`,
    });
  } else if (stargzProxy && snapshotter !== stargzProxy[0]) {
    add({
      rule: 'stargz-not-used',
      severity: 'warning',
      message: `the stargz proxy plugin is configured but the CRI plugin uses the "${snapshotter}" snapshotter: nothing is pulled lazily`,
      fix: `set snapshotter = "${stargzProxy[0]}" in [${s.snapshotterTable.map((k, i) => (i === 0 ? k : `"${k}"`)).join('.')}]`,
    });
  } else if (stargzProxy && annotationsDisabled) {
    add({
      rule: 'stargz-annotations-disabled',
      severity: 'error',
      message: `disable_snapshot_annotations is ${typeof snapTable.disable_snapshot_annotations === 'boolean' ? 'true' : 'true by default'}: the stargz snapshotter gets no image reference and pulls everything eagerly`,
      fix: 'set disable_snapshot_annotations = false next to snapshotter = "stargz"',
    });
  } else if (!stargzProxy) {
    add({
      rule: 'no-lazy-pulling',
      severity: 'info',
      message: 'no stargz snapshotter: images over 5 GB start only after their whole pull',
      fix: 'run containerd-stargz-grpc and add it as [proxy_plugins.stargz] with snapshotter = "stargz" (hoist render containerd-config --stargz)',
    });
  }

  const images = at(doc, ...s.images) ?? {};
  const mcd = images.max_concurrent_downloads;
  if (mcd !== undefined && (typeof mcd !== 'number' || !Number.isInteger(mcd) || mcd < 1)) {
    add({
      rule: 'max-concurrent-downloads',
      severity: 'error',
      message: `max_concurrent_downloads = ${String(mcd)} is not a positive integer`,
      fix: 'set max_concurrent_downloads = 10',
    });
  } else if ((typeof mcd === 'number' ? mcd : 3) < 3) {
    add({
      rule: 'max-concurrent-downloads',
      severity: 'warning',
      message: `max_concurrent_downloads = ${String(mcd)}: large multi-layer images download ${String(mcd)} layer(s) at a time`,
      fix: 'raise max_concurrent_downloads to 5-10',
    });
  } else if (mcd === undefined || mcd === 3) {
    add({
      rule: 'max-concurrent-downloads',
      severity: 'info',
      message: `max_concurrent_downloads is ${mcd === undefined ? '3 by default' : '3'}: images with many large layers download three at a time`,
      fix: 'raise max_concurrent_downloads (e.g. 10) when nodes pull from a nearby mirror',
    });
  }
  return out;
}
