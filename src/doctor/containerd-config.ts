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
/** containerd 2.x's transfer service (the same plugin ID in config versions 2 and 3). */
export const TRANSFER_PLUGIN = 'io.containerd.transfer.v1.local';

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

/** An endpoint as containerd's CRI read it: no scheme means https (pkg/cri addDefaultScheme). */
function withScheme(endpoint: string): string {
  return (endpoint.includes('://') ? endpoint : `https://${endpoint}`).replace(/\/+$/, '');
}

function hostOf(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).host;
  } catch {
    return undefined;
  }
}

/**
 * Turns `registry.mirrors` entries into hosts.toml files (containerd docs/hosts.md).
 *
 * The old CRI tried the endpoints in order and then, unless one of them already was the registry
 * itself (its host equal to the registry name), the registry's default host
 * (`pkg/cri/server/image_pull.go` registryEndpoints in containerd 1.4-1.7). hosts.toml says the
 * same with `[host."..."]` tables tried in file order and `server` tried last, so `server` is
 * always the registry's real endpoint — the endpoint naming the registry's own host (keeping its
 * scheme, e.g. http for a plain-HTTP registry), else https://registry-1.docker.io for docker.io and
 * https://NAME for others — and never a mirror: a dead mirror then only costs a failed attempt.
 * The `"*"` entry becomes `_default/hosts.toml` with hosts only: containerd uses each registry's
 * own server for it.
 */
export function hostsTomlFromMirrors(mirrors: Record<string, unknown>, configPath: string): ConfigFile[] {
  const files: ConfigFile[] = [];
  for (const [registry, entry] of Object.entries(mirrors)) {
    const endpoints = (at(entry) ?? {}).endpoint;
    const list = Array.isArray(endpoints)
      ? [...new Set(endpoints.filter((e): e is string => typeof e === 'string' && e !== '').map(withScheme))]
      : [];
    const wildcard = registry === '*';
    const ownHosts = registry === 'docker.io' ? ['docker.io', 'registry-1.docker.io'] : [registry];
    const own = wildcard ? undefined : list.find((e) => ownHosts.includes(hostOf(e) ?? ''));
    const host: Record<string, unknown> = {};
    for (const e of list) if (e !== own) host[e] = { capabilities: ['pull', 'resolve'] };
    const server = own ?? (registry === 'docker.io' ? 'https://registry-1.docker.io' : `https://${registry}`);
    const doc = wildcard ? { host } : { server, host };
    files.push({
      path: `${configPath}/${wildcard ? '_default' : registry}/hosts.toml`,
      content:
        `# containerd tries each host in order${wildcard ? ", then the registry's own server" : ', then server (the registry itself)'}.\n` +
        `${stringify(doc)}\n`,
    });
  }
  return files;
}

export interface ContainerdCheckOptions {
  /** The major version of the containerd that reads the file, when known (e.g. from --containerd-version). */
  containerdMajor?: number;
}

/** containerd 2.x's config_path when none is set (plugins/cri/images/plugin.go). */
export const CONTAINERD2_DEFAULT_CONFIG_PATH = '/etc/containerd/certs.d:/etc/docker/certs.d';

/**
 * config_path as containerd reads it. containerd 2.1+ pulls CRI images through the transfer
 * service, which takes config_path as ONE folder (core/transfer/registry: HostDirFromRoot), so a
 * ':' list — 2.x's own default when config_path is unset — matches no folder and every hosts.toml
 * is silently ignored (containerd#12415). `use_local_image_pull = true` pulls the old way, which
 * splits the list; so do settings the transfer service lacks (CheckLocalImagePullConfigs), but
 * only while they stay.
 */
function checkConfigPathSetting(
  doc: ContainerdConfig,
  version: number,
  configPath: string | undefined,
  opts: ContainerdCheckOptions,
): ContainerdFinding | undefined {
  const s = sections(version);
  const table = `[${s.name}.registry]`;
  const is2x = opts.containerdMajor !== undefined ? opts.containerdMajor >= 2 : version >= 3;
  const maybe2x = opts.containerdMajor === undefined || opts.containerdMajor >= 2;
  const localPull = at(doc, 'plugins', 'io.containerd.cri.v1.images')?.use_local_image_pull === true;
  const effective = configPath ?? (is2x ? CONTAINERD2_DEFAULT_CONFIG_PATH : undefined);
  const single = (effective ?? DEFAULT_CONFIG_PATH).split(':').find(Boolean) ?? DEFAULT_CONFIG_PATH;
  const fix = `set config_path = "${single}" (one folder; move any hosts.toml from the others into it) in ${table}, then restart containerd; \`hoist node configure\` does this`;
  if (effective !== undefined && effective.includes(':') && maybe2x && !localPull) {
    const where =
      configPath === undefined
        ? `config_path is not set, so containerd 2.x uses "${effective}"`
        : `config_path is the list "${effective}"`;
    return {
      rule: 'config-path-list',
      severity: is2x ? 'error' : 'warning',
      message: `${where}: containerd 2.1+ pulls CRI images through its transfer service, which reads hosts.toml from one folder only and silently ignores a list (containerd#12415), so no mirror is used${is2x ? '' : ' (on containerd 2.x; 1.6 and 1.7 read lists)'}`,
      fix,
    };
  }
  if (configPath === undefined) {
    return {
      rule: 'no-config-path',
      severity: 'info',
      message:
        'registry.config_path is not set: containerd reads no hosts.toml, so no mirror can be configured per registry',
      fix: `add ${table} config_path = "${DEFAULT_CONFIG_PATH}" (hoist render containerd-config)`,
    };
  }
  return undefined;
}

export function checkContainerdConfig(
  doc: ContainerdConfig,
  opts: ContainerdCheckOptions = {},
): ContainerdFinding[] {
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
  } else {
    const pathFinding = checkConfigPathSetting(doc, version, configPath, opts);
    if (pathFinding) add(pathFinding);
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

  // Lazy pulling through the stargz snapshotter. The snapshotter only mounts layers lazily when
  // containerd hands it the image reference and layer digests as snapshot labels. Two ways do that
  // (stargz-snapshotter docs/INSTALL.md and docs/transfer.md): the CRI's own local pull with
  // disable_snapshot_annotations = false, or, from containerd 2.1, the transfer service, which
  // unpacks with the [[plugins."io.containerd.transfer.v1.local".unpack_config]] entry naming the
  // snapshotter and sends the labels when the proxy plugin exports
  // enable_remote_snapshot_annotations = "true". Both hold for config versions 2 and 3 alike
  // (containerd 2.x migrates version 2 on load).
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
  const unpackConfig = at(doc, 'plugins', TRANSFER_PLUGIN)?.unpack_config;
  const unpackSnapshotters = (Array.isArray(unpackConfig) ? unpackConfig : [])
    .map((u) => at(u)?.snapshotter)
    .filter((n): n is string => typeof n === 'string');
  const transferUnpacks = (name: string) => unpackSnapshotters.includes(name);
  const exportsAnnotations = (name: string) =>
    String(at(proxies, name, 'exports')?.enable_remote_snapshot_annotations) === 'true';
  const builtIn = ['overlayfs', 'native', 'btrfs', 'zfs', 'devmapper', 'aufs', 'blockfile', 'erofs'];
  if (!builtIn.includes(snapshotter) && !(snapshotter in proxies)) {
    add({
      rule: 'snapshotter-missing',
      severity: 'error',
      message: `the CRI snapshotter is "${snapshotter}" but no [proxy_plugins.${snapshotter}] is configured: pulls fail`,
      fix: `add [proxy_plugins.${snapshotter}] type = "snapshot" address = "${STARGZ_SOCKET}"`,
    });
  } else if (stargzProxy && snapshotter !== stargzProxy[0]) {
    const viaTransfer = transferUnpacks(stargzProxy[0]);
    add({
      rule: 'stargz-not-used',
      severity: 'warning',
      message: viaTransfer
        ? `the transfer service unpacks with "${stargzProxy[0]}" but the CRI plugin uses the "${snapshotter}" snapshotter: CRI (kubelet) pulls are eager; only clients asking for ${stargzProxy[0]} (ctr --snapshotter=${stargzProxy[0]}) pull lazily`
        : `the stargz proxy plugin is configured but the CRI plugin uses the "${snapshotter}" snapshotter: nothing is pulled lazily`,
      fix: `set snapshotter = "${stargzProxy[0]}" in [${s.snapshotterTable.map((k, i) => (i === 0 ? k : `"${k}"`)).join('.')}]`,
    });
  } else if (stargzProxy && transferUnpacks(stargzProxy[0])) {
    if (!exportsAnnotations(stargzProxy[0])) {
      add({
        rule: 'stargz-transfer-annotations',
        severity: 'error',
        message: `the transfer service unpacks with "${stargzProxy[0]}" but [proxy_plugins.${stargzProxy[0]}.exports] does not set enable_remote_snapshot_annotations = "true": the snapshotter gets no image reference and pulls everything eagerly`,
        fix: `add enable_remote_snapshot_annotations = "true" under [proxy_plugins.${stargzProxy[0]}.exports]`,
      });
    }
  } else if (stargzProxy && annotationsDisabled) {
    add({
      rule: 'stargz-annotations-disabled',
      severity: 'error',
      message: `disable_snapshot_annotations is ${typeof snapTable.disable_snapshot_annotations === 'boolean' ? 'true' : 'true by default'} and no transfer-service unpack_config names "${stargzProxy[0]}": the stargz snapshotter gets no image reference and pulls everything eagerly`,
      fix: `set disable_snapshot_annotations = false next to snapshotter = "${stargzProxy[0]}", or (containerd 2.1+) add [[plugins."${TRANSFER_PLUGIN}".unpack_config]] with snapshotter = "${stargzProxy[0]}" and enable_remote_snapshot_annotations = "true" in the proxy plugin's exports`,
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
  // containerd 2.1+ CRI pulls through the transfer service use its own max_concurrent_downloads;
  // the CRI's is read only by the local pull, and setting it (to anything but 3) forces that.
  const transfer = at(doc, 'plugins', TRANSFER_PLUGIN) ?? {};
  if (
    version >= 3 &&
    images.max_concurrent_downloads !== undefined &&
    images.max_concurrent_downloads !== 3
  ) {
    add({
      rule: 'max-concurrent-downloads-moved',
      severity: 'info',
      message: `max_concurrent_downloads in [${s.name}] is read only by the old local pull: containerd 2.1+ falls back to it instead of the transfer service`,
      fix: `move it to [plugins."${TRANSFER_PLUGIN}"] max_concurrent_downloads`,
    });
  }
  const mcd =
    version >= 3
      ? (transfer.max_concurrent_downloads ?? images.max_concurrent_downloads)
      : images.max_concurrent_downloads;
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
