import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'smol-toml';
import { formatVersion, type ContainerdVersion } from './containerd-version.js';
import { setTomlString, tomlKey } from './toml-edit.js';

/**
 * Whether containerd will read the hosts.toml files Hoist writes, and the one edit of its
 * config.toml that makes it do so. containerd's CRI plugin reads `<config_path>/<registry>/hosts.toml`
 * only when its registry `config_path` names that folder (containerd docs/hosts.md, "CRI"); where
 * the setting lives depends on the config version:
 *   version 3 (containerd 2.x):   [plugins."io.containerd.cri.v1.images".registry] config_path
 *   version 2 (1.6, 1.7; 2.x migrates it in memory at start, registry table included):
 *                                 [plugins."io.containerd.grpc.v1.cri".registry] config_path
 *   version 1 (no version key):   [plugins.cri.registry] config_path
 * containerd 2.x, when config_path is unset (and no registry.mirrors), uses
 * "/etc/containerd/certs.d:/etc/docker/certs.d" (plugins/cri/images/plugin.go). From 2.1 its CRI
 * pulls go through the transfer service, which takes config_path as ONE folder
 * (core/transfer/registry HostDirFromRoot): a ':' list matches no folder, so every hosts.toml is
 * silently ignored and the pull goes straight to the registry (containerd#12415). Only
 * `use_local_image_pull = true` (or a setting that forces the local pull) reads the list.
 * Hence Hoist always wants config_path to be exactly the certs dir on anything that may be 2.x.
 */

export type ConfigPathStatus =
  | 'ok'
  | 'not-set'
  | 'different'
  | 'list-ignored'
  | 'mirrors'
  | 'wrong-version'
  | 'no-config-file'
  | 'unparseable';

export interface ConfigPathCheck {
  status: ConfigPathStatus;
  /** containerd's config file that was read. */
  configFile: string;
  /** Its `version` (1 when absent); absent when there is no file or it does not parse. */
  configVersion?: number;
  /** The containerd that reads it, when known ("2.4"). */
  containerd?: string;
  /** The folder(s) containerd reads, as set (or containerd 2.x's default when unset). */
  configPath?: string;
  /** One line on what is wrong and what to do (absent when status is ok). */
  message?: string;
  /** TOML to add to containerd's config (absent when status is ok). */
  suggestion?: string;
  /** containerd refuses `registry.mirrors` together with `config_path`: must go. */
  deprecatedMirrors?: boolean;
  /**
   * The config file's text with config_path set to the certs dir and nothing else changed: what
   * `hoist node configure` writes (absent when nothing needs to change or no safe edit exists).
   */
  fixedText?: string;
}

/** containerd 2.x's config_path when the file sets none (plugins/cri/images/plugin.go). */
export const CONTAINERD2_DEFAULT_CONFIG_PATH = '/etc/containerd/certs.d:/etc/docker/certs.d';

function table(doc: unknown, ...keys: string[]): Record<string, unknown> | undefined {
  let node: unknown = doc;
  for (const key of keys) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : undefined;
}

export function registrySection(version: number): string[] {
  if (version >= 3) return ['plugins', 'io.containerd.cri.v1.images', 'registry'];
  if (version === 2) return ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
  return ['plugins', 'cri', 'registry'];
}

export function suggestConfigPath(version: number, certsDir: string): string {
  return `[${tomlKey(registrySection(version))}]\n  config_path = ${JSON.stringify(certsDir)}`;
}

/**
 * Why a containerd 2.x CRI pull would not go through the transfer service (which ignores a
 * config_path list): `use_local_image_pull = true`, or a setting the transfer service does not
 * support, which makes containerd fall back to the local pull (CheckLocalImagePullConfigs in
 * internal/cri/config/config.go). undefined: the transfer service is used.
 */
function localPullReason(doc: Record<string, unknown>, version: number): string | undefined {
  const images = table(doc, 'plugins', 'io.containerd.cri.v1.images') ?? {};
  if (images.use_local_image_pull === true) return 'use_local_image_pull = true';
  // Version 2 files: containerd 2.x migrates only these keys (and registry) from the old table.
  const old = version === 2 ? (table(doc, 'plugins', 'io.containerd.grpc.v1.cri') ?? {}) : {};
  const mcd = old.max_concurrent_downloads ?? images.max_concurrent_downloads;
  if (typeof mcd === 'number' && mcd !== 3) return `max_concurrent_downloads = ${mcd}`;
  if ((old.image_pull_with_sync_fs ?? images.image_pull_with_sync_fs) === true)
    return 'image_pull_with_sync_fs = true';
  if (images.discard_unpacked_layers === true) return 'discard_unpacked_layers = true';
  if (images.disable_snapshot_annotations === false) return 'disable_snapshot_annotations = false';
  return undefined;
}

export interface CheckOptions {
  /** The containerd that reads the file, when known (CRI Version, `containerd --version`, a flag). */
  containerd?: ContainerdVersion | undefined;
}

/** Pure: checks containerd's config text against the folder Hoist writes to. */
export function checkConfigPath(
  text: string | undefined,
  configFile: string,
  certsDir: string,
  opts: CheckOptions = {},
): ConfigPathCheck {
  const want = resolve(certsDir);
  const runtime = opts.containerd;
  const known = runtime ? { containerd: formatVersion(runtime) } : {};
  if (text === undefined) {
    // A new file: version 3 where containerd 2.x is known to read it, else version 2 (read by 1.6,
    // 1.7 and, migrated, by 2.x).
    const version = runtime && runtime.major >= 2 ? 3 : 2;
    const fixedText = `version = ${version}\n\n${suggestConfigPath(version, want)}\n`;
    return {
      status: 'no-config-file',
      configFile,
      ...known,
      message: `${configFile} does not exist, so containerd does not read ${want} (containerd 2.x uses ${CONTAINERD2_DEFAULT_CONFIG_PATH}, a list its CRI pulls ignore); create it with the lines below and restart containerd`,
      suggestion: fixedText.trimEnd(),
      fixedText,
    };
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    return {
      status: 'unparseable',
      configFile,
      ...known,
      message: `${configFile} is not valid TOML (${String((err as Error).message).split('\n')[0]}); fix it, then set config_path = "${want}"`,
    };
  }
  const version = typeof doc.version === 'number' ? doc.version : 1;
  const base = { configFile, configVersion: version, ...known };
  if (version >= 3 && runtime && runtime.major < 2) {
    return {
      status: 'wrong-version',
      ...base,
      message: `${configFile} is config version ${version}, which only containerd 2.x reads, but this node runs containerd ${formatVersion(runtime)}: write it as version 2 (or upgrade containerd), with config_path = "${want}"`,
      suggestion: `version = 2\n\n${suggestConfigPath(2, want)}`,
    };
  }
  // containerd 2.x reads version 3, or migrates 1 and 2; a version 3 file means 2.x.
  const maybe2x = runtime ? runtime.major >= 2 : true;
  const keys = registrySection(version);
  const registry = table(doc, ...keys);
  const setPath = typeof registry?.config_path === 'string' ? registry.config_path : undefined;
  const deprecatedMirrors = registry?.mirrors !== undefined;
  const suggestion = suggestConfigPath(version, want);
  const fix = () => setTomlString(text, keys, 'config_path', want);
  const restart = 'restart containerd';
  if (deprecatedMirrors) {
    return {
      status: 'mirrors',
      ...base,
      ...(setPath ? { configPath: setPath } : {}),
      message: `${configFile} has a registry.mirrors section (deprecated; containerd refuses it together with config_path): run \`hoist doctor containerd-config ${configFile}\` to turn it into hosts.toml files, remove it, set config_path = "${want}" and ${restart}`,
      suggestion,
      deprecatedMirrors,
    };
  }
  const is2x = runtime ? runtime.major >= 2 : version >= 3;
  if (setPath === undefined) {
    // Nothing set: whatever containerd falls back to (no hosts.toml on 1.x, 2.x's ':' list that
    // its CRI pulls ignore) does not read the certs dir, so setting it is the fix either way.
    const fixedText = fix();
    const why = is2x
      ? `so containerd 2.x uses "${CONTAINERD2_DEFAULT_CONFIG_PATH}", a list its CRI pulls ignore (containerd#12415)`
      : `so containerd ignores ${want}${maybe2x ? ` (and containerd 2.x would use "${CONTAINERD2_DEFAULT_CONFIG_PATH}", a list its CRI pulls ignore)` : ''}`;
    return {
      status: 'not-set',
      ...base,
      ...(is2x ? { configPath: CONTAINERD2_DEFAULT_CONFIG_PATH } : {}),
      message: `${configFile} sets no registry config_path, ${why}; add the lines below and ${restart}`,
      suggestion,
      ...(fixedText ? { fixedText } : {}),
    };
  }
  const configPath = setPath;
  const folders = configPath.split(':').filter(Boolean);
  if (!folders.some((f) => resolve(f) === want)) {
    return {
      status: 'different',
      ...base,
      configPath,
      message: `containerd reads hosts.toml from ${configPath} (${configFile}), not ${want}; pass --certs-dir ${folders[0] ?? configPath} or change config_path as below and ${restart}`,
      suggestion,
    };
  }
  if (folders.length > 1 && maybe2x) {
    const local = localPullReason(doc, version);
    if (local !== 'use_local_image_pull = true') {
      const fixedText = fix();
      const where = `${configFile} sets config_path to`;
      const still = local
        ? ` (today ${local} forces the local pull, which reads lists; moving that setting to the transfer service turns the mirror off)`
        : '';
      const others = folders.filter((f) => resolve(f) !== want).join(', ');
      return {
        status: 'list-ignored',
        ...base,
        configPath,
        message: `${where} the list "${configPath}": containerd 2.1+ pulls CRI images through its transfer service, which reads one folder only and silently ignores a list (containerd#12415)${still}; set config_path = "${want}" alone (move any hosts.toml from ${others} into it) and ${restart}`,
        suggestion,
        ...(fixedText ? { fixedText } : {}),
      };
    }
  }
  return { status: 'ok', ...base, configPath };
}

/** Reads containerd's config file (absent is not an error) and checks it. */
export async function checkContainerdConfig(
  configFile: string,
  certsDir: string,
  opts: CheckOptions = {},
): Promise<ConfigPathCheck> {
  let text: string | undefined;
  try {
    text = await readFile(configFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return checkConfigPath(text, configFile, certsDir, opts);
}
