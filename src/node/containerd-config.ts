import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse } from 'smol-toml';

/**
 * Whether containerd will read the hosts.toml files Hoist writes. containerd's CRI plugin reads
 * `<config_path>/<registry>/hosts.toml` only when its registry `config_path` names that folder
 * (containerd docs/hosts.md, "CRI"); where the setting lives depends on the config version:
 *   version 3 (containerd 2.x): [plugins."io.containerd.cri.v1.images".registry] config_path
 *   version 2 (containerd 1.x): [plugins."io.containerd.grpc.v1.cri".registry] config_path
 *   version 1 (no version key): [plugins.cri.registry] config_path
 */

export type ConfigPathStatus = 'ok' | 'not-set' | 'different' | 'no-config-file' | 'unparseable';

export interface ConfigPathCheck {
  status: ConfigPathStatus;
  /** containerd's config file that was read. */
  configFile: string;
  /** The folder(s) containerd reads, when set. */
  configPath?: string;
  /** One line on what is wrong and what to do (absent when status is ok). */
  message?: string;
  /** TOML to add to containerd's config (absent when status is ok). */
  suggestion?: string;
  /** containerd 1.x refuses `registry.mirrors` together with `config_path`: must go. */
  deprecatedMirrors?: boolean;
}

function table(doc: unknown, ...keys: string[]): Record<string, unknown> | undefined {
  let node: unknown = doc;
  for (const key of keys) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : undefined;
}

function registrySection(version: number): string[] {
  if (version >= 3) return ['plugins', 'io.containerd.cri.v1.images', 'registry'];
  if (version === 2) return ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
  return ['plugins', 'cri', 'registry'];
}

function sectionHeader(keys: string[]): string {
  return `[${keys.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.')}]`;
}

export function suggestConfigPath(version: number, certsDir: string): string {
  return `${sectionHeader(registrySection(version))}\n  config_path = ${JSON.stringify(certsDir)}`;
}

/** Pure: checks containerd's config text against the folder Hoist writes to. */
export function checkConfigPath(
  text: string | undefined,
  configFile: string,
  certsDir: string,
): ConfigPathCheck {
  const want = resolve(certsDir);
  if (text === undefined) {
    return {
      status: 'no-config-file',
      configFile,
      message: `${configFile} does not exist, so containerd does not read ${want}; create it with the lines below and restart containerd`,
      suggestion: `version = 2\n\n${suggestConfigPath(2, want)}`,
    };
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(text) as Record<string, unknown>;
  } catch (err) {
    return {
      status: 'unparseable',
      configFile,
      message: `${configFile} is not valid TOML (${String((err as Error).message).split('\n')[0]}); fix it, then set config_path = "${want}"`,
    };
  }
  const version = typeof doc.version === 'number' ? doc.version : 1;
  const keys = registrySection(version);
  const registry = table(doc, ...keys);
  const configPath = typeof registry?.config_path === 'string' ? registry.config_path : undefined;
  const deprecatedMirrors = registry?.mirrors !== undefined;
  const suggestion = suggestConfigPath(version, want);
  const mirrorsNote = deprecatedMirrors
    ? '; also remove its registry.mirrors section (deprecated, and containerd refuses it together with config_path)'
    : '';
  if (!configPath) {
    return {
      status: 'not-set',
      configFile,
      message: `${configFile} sets no registry config_path, so containerd ignores ${want}; add the lines below and restart containerd${mirrorsNote}`,
      suggestion,
      deprecatedMirrors,
    };
  }
  // containerd 2.x accepts several folders separated by ':'.
  const folders = configPath.split(':').filter(Boolean);
  if (!folders.some((f) => resolve(f) === want)) {
    return {
      status: 'different',
      configFile,
      configPath,
      message: `containerd reads hosts.toml from ${configPath} (${configFile}), not ${want}; pass --certs-dir ${folders[0] ?? configPath} or change config_path as below and restart containerd`,
      suggestion,
      deprecatedMirrors,
    };
  }
  if (deprecatedMirrors) {
    return {
      status: 'different',
      configFile,
      configPath,
      message: `${configFile} has a registry.mirrors section: remove it (deprecated, and containerd refuses it together with config_path) and restart containerd`,
      deprecatedMirrors,
    };
  }
  return { status: 'ok', configFile, configPath };
}

/** Reads containerd's config file (absent is not an error) and checks it. */
export async function checkContainerdConfig(configFile: string, certsDir: string): Promise<ConfigPathCheck> {
  let text: string | undefined;
  try {
    text = await readFile(configFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return checkConfigPath(text, configFile, certsDir);
}
