import { lstat, mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { readState, writeState, type BackupState } from './backup-state.js';
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
  dryRun?: boolean;
}

export type FileAction = 'created' | 'updated' | 'unchanged' | 'restored' | 'removed';

export interface FileResult {
  registry: string;
  path: string;
  action: FileAction;
  /** The file's content after the change (undefined once removed). */
  content?: string;
}

export function hostsTomlPath(certsDir: string, registry: string): string {
  return join(certsDir, registry, 'hosts.toml');
}

async function readIfExists(path: string): Promise<{ data: Buffer; mode: number } | undefined> {
  try {
    const [data, st] = await Promise.all([readFile(path), lstat(path)]);
    return { data, mode: st.mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
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
    planned.push({ registry: target.registry, path, action, content, mode: current?.mode ?? 0o644 });
    if (!backup && !opts.dryRun) {
      state.registries[target.registry] = {
        original: current ? current.data.toString('base64') : null,
        originalMode: current ? current.mode : null,
        createdDir: !(await dirExists(join(opts.certsDir, target.registry))),
      };
    }
  }
  if (opts.dryRun) return planned.map(({ mode: _mode, ...r }) => r);
  await mkdir(opts.certsDir, { recursive: true });
  await writeState(opts.certsDir, state);
  for (const file of planned) {
    if (file.action === 'unchanged') continue;
    await mkdir(join(opts.certsDir, file.registry), { recursive: true });
    await writeFileAtomic(file.path, file.content ?? '', file.mode);
  }
  return planned.map(({ mode: _mode, ...r }) => r);
}

export interface UnconfigureOptions {
  certsDir: string;
  /** Only these registries; default every one Hoist configured. */
  registries?: string[];
  dryRun?: boolean;
}

/**
 * Puts back what configure replaced: the original hosts.toml byte for byte (and its mode), or
 * no file (and no folder, when Hoist made it) where there was none.
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
      results.push({ registry, path, action: 'restored', content: data.toString('utf8') });
    } else {
      if (!opts.dryRun) {
        await rm(path, { force: true });
        if (backup.createdDir) await rmdir(join(opts.certsDir, registry)).catch(() => undefined);
      }
      results.push({ registry, path, action: 'removed' });
    }
    if (!opts.dryRun) {
      delete state.registries[registry];
      await writeState(opts.certsDir, state);
    }
  }
  return results;
}
