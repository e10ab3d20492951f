import { lstat, mkdir, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { readState, writeState, type BackupState } from './backup-state.js';
import {
  applyConfigWrite,
  planConfigWrite,
  readIfExists,
  restoreConfig,
  type ConfigFileResult,
  type PlannedConfigWrite,
} from './config-file-backup.js';
import { NodeConfigError } from './errors.js';
import { mergeHostsToml, parseHostsToml, renderHostsToml } from './hosts-toml.js';

/**
 * Applies and removes Hoist's containerd mirror configuration: one hosts.toml per registry under
 * the CRI `config_path` directory, with the originals kept for a byte-exact restore.
 */

export interface RegistryTarget {
  /** Registry host as image references name it: docker.io, ghcr.io, 127.0.0.1:6000. */
  registry: string;
  /** Its origin URL when given (`NAME=URL`); else an existing server, else the default. */
  origin?: string;
}

export interface ConfigureOptions {
  certsDir: string;
  mirrorUrl: string;
  registries: RegistryTarget[];
  /**
   * containerd's config.toml to write as well (its registry config_path set to certsDir): the
   * original goes into the backup state first, for `unconfigureHosts` to restore.
   */
  containerdConfig?: { path: string; content: string };
  dryRun?: boolean;
}

export type FileAction = 'created' | 'updated' | 'unchanged' | 'restored' | 'removed' | 'kept';

export interface FileResult {
  /** The registry of a hosts.toml; "containerd" for containerd's config.toml (kind says which). */
  registry: string;
  kind: 'hosts.toml' | 'containerd-config';
  /** Why nothing was done (action 'kept'). */
  reason?: string;
  path: string;
  action: FileAction;
  /** The file's content after the change (undefined once removed). */
  content?: string;
}

export function hostsTomlPath(certsDir: string, registry: string): string {
  return join(certsDir, registry, 'hosts.toml');
}

async function dirExists(path: string): Promise<boolean> {
  try {
    return (await lstat(path)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Writes the mirror configuration for every registry. Idempotent: the file is always computed
 * from the pre-Hoist original (kept in the backup state), so running it again, or with another
 * mirror URL, gives the same file a first run would. The state is written before any hosts.toml,
 * so an interrupted run never loses an original.
 */
export async function configureHosts(opts: ConfigureOptions): Promise<FileResult[]> {
  const state: BackupState = await readState(opts.certsDir);
  const planned: Array<FileResult & { mode: number }> = [];
  for (const target of opts.registries) {
    const path = hostsTomlPath(opts.certsDir, target.registry);
    const current = await readIfExists(path);
    const backup = state.registries[target.registry];
    const original = backup
      ? backup.original === null
        ? undefined
        : Buffer.from(backup.original, 'base64')
      : current?.data;
    const existing = original ? parseHostsToml(original.toString('utf8'), path) : undefined;
    const content = renderHostsToml(
      mergeHostsToml({
        existing,
        mirrorUrl: opts.mirrorUrl,
        origin: target.origin,
        registry: target.registry,
      }),
    );
    const action: FileAction = !current
      ? 'created'
      : current.data.toString('utf8') === content
        ? 'unchanged'
        : 'updated';
    planned.push({
      registry: target.registry,
      kind: 'hosts.toml',
      path,
      action,
      content,
      mode: current?.mode ?? 0o644,
    });
    if (!backup && !opts.dryRun) {
      state.registries[target.registry] = {
        original: current ? current.data.toString('base64') : null,
        originalMode: current ? current.mode : null,
        createdDir: !(await dirExists(join(opts.certsDir, target.registry))),
      };
    }
  }
  let config: PlannedConfigWrite | undefined;
  if (opts.containerdConfig) {
    config = await planConfigWrite(state, opts.containerdConfig.path, opts.containerdConfig.content);
    if (!opts.dryRun) state.containerdConfig = config.backup;
  }
  const results = (): FileResult[] => [
    ...planned.map(({ mode: _mode, ...r }) => r),
    ...(config ? [configResult(config)] : []),
  ];
  if (opts.dryRun) return results();
  await mkdir(opts.certsDir, { recursive: true });
  await writeState(opts.certsDir, state);
  for (const file of planned) {
    if (file.action === 'unchanged') continue;
    await mkdir(join(opts.certsDir, file.registry), { recursive: true });
    await writeFileAtomic(file.path, file.content ?? '', file.mode);
  }
  if (config) {
    await mkdir(dirname(config.path), { recursive: true });
    await applyConfigWrite(config);
  }
  return results();
}

function configResult(r: ConfigFileResult): FileResult {
  return {
    registry: 'containerd',
    kind: 'containerd-config',
    path: r.path,
    action: r.action,
    ...(r.content !== undefined ? { content: r.content } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}

export interface UnconfigureOptions {
  certsDir: string;
  /** Only these registries; default every one Hoist configured. */
  registries?: string[];
  dryRun?: boolean;
}

/**
 * Puts back what configure replaced: the original hosts.toml byte for byte (and its mode), or
 * no file (and no folder, when Hoist made it) where there was none; with the last registry, also
 * containerd's config.toml when configure changed it (and it is still what configure wrote).
 */
export async function unconfigureHosts(opts: UnconfigureOptions): Promise<FileResult[]> {
  const state = await readState(opts.certsDir);
  const names = opts.registries ?? Object.keys(state.registries);
  const results: FileResult[] = [];
  for (const registry of names) {
    const backup = state.registries[registry];
    const path = hostsTomlPath(opts.certsDir, registry);
    if (!backup) {
      throw new NodeConfigError(
        'NOT_CONFIGURED',
        `${registry} was not configured by hoist in ${opts.certsDir}; configured: ${Object.keys(state.registries).join(', ') || 'none'}`,
      );
    }
    if (backup.original !== null) {
      const data = Buffer.from(backup.original, 'base64');
      if (!opts.dryRun) await writeFileAtomic(path, data, backup.originalMode ?? 0o644);
      results.push({
        registry,
        kind: 'hosts.toml',
        path,
        action: 'restored',
        content: data.toString('utf8'),
      });
    } else {
      if (!opts.dryRun) {
        await rm(path, { force: true });
        if (backup.createdDir) await rmdir(join(opts.certsDir, registry)).catch(() => undefined);
      }
      results.push({ registry, kind: 'hosts.toml', path, action: 'removed' });
    }
    if (!opts.dryRun) {
      delete state.registries[registry];
      await writeState(opts.certsDir, state);
    }
  }
  // containerd's config.toml goes back with the last registry: until then config_path must stay.
  const remaining = Object.keys(state.registries).filter((r) => opts.dryRun !== true || !names.includes(r));
  if (remaining.length === 0) {
    const config = await restoreConfig(state, opts.dryRun === true);
    if (config) {
      results.push(configResult(config));
      if (!opts.dryRun) await writeState(opts.certsDir, state);
    }
  }
  return results;
}
