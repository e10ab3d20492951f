import { createHash } from 'node:crypto';
import { lstat, readFile, rm } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-write.js';
import type { BackupState, ConfigBackup } from './backup-state.js';
import { NodeConfigError } from './errors.js';

/**
 * Writing and restoring containerd's config.toml for `hoist node configure|unconfigure`: the
 * original is kept in the backup state (bytes and mode) before the first write; unconfigure puts
 * it back only when the file is still exactly what Hoist wrote.
 */

export type ConfigFileAction = 'created' | 'updated' | 'unchanged' | 'restored' | 'removed' | 'kept';

export interface ConfigFileResult {
  path: string;
  action: ConfigFileAction;
  content?: string;
  /** Why a restore was skipped (action 'kept'). */
  reason?: string;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A file's bytes and permission bits, or undefined when there is none. */
export async function readIfExists(path: string): Promise<{ data: Buffer; mode: number } | undefined> {
  try {
    const [data, st] = await Promise.all([readFile(path), lstat(path)]);
    return { data, mode: st.mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface PlannedConfigWrite extends ConfigFileResult {
  mode: number;
  backup: ConfigBackup;
}

/** What writing `content` to `path` would do; the backup keeps the pre-Hoist original. */
export async function planConfigWrite(
  state: BackupState,
  path: string,
  content: string,
): Promise<PlannedConfigWrite> {
  if (state.containerdConfig !== undefined && state.containerdConfig.path !== path) {
    // One backup per certs dir: replacing it would lose the first file's original.
    throw new NodeConfigError(
      'INVALID_CONTAINERD_CONFIG',
      `hoist already changed ${state.containerdConfig.path} for this certs dir; pass --containerd-config ${state.containerdConfig.path}, or run \`hoist node unconfigure\` first`,
    );
  }
  const current = await readIfExists(path);
  const earlier = state.containerdConfig;
  const backup: ConfigBackup = earlier
    ? { ...earlier, written: sha256(content) }
    : {
        path,
        original: current ? current.data.toString('base64') : null,
        originalMode: current ? current.mode : null,
        written: sha256(content),
      };
  const action = !current ? 'created' : current.data.toString('utf8') === content ? 'unchanged' : 'updated';
  return { path, action, content, mode: current?.mode ?? 0o644, backup };
}

export async function applyConfigWrite(plan: PlannedConfigWrite): Promise<void> {
  if (plan.action !== 'unchanged') await writeFileAtomic(plan.path, plan.content ?? '', plan.mode);
}

/** Restores the config file from the state (and drops it from the state unless dryRun). */
export async function restoreConfig(
  state: BackupState,
  dryRun: boolean,
): Promise<ConfigFileResult | undefined> {
  const backup = state.containerdConfig;
  if (!backup) return undefined;
  const current = await readIfExists(backup.path);
  let result: ConfigFileResult;
  if (!current || sha256(current.data) !== backup.written) {
    result = {
      path: backup.path,
      action: 'kept',
      reason: `${backup.path} changed since hoist configure wrote it: left as it is; set its registry config_path back by hand if needed`,
    };
  } else if (backup.original !== null) {
    const data = Buffer.from(backup.original, 'base64');
    if (!dryRun) await writeFileAtomic(backup.path, data, backup.originalMode ?? 0o644);
    result = { path: backup.path, action: 'restored', content: data.toString('utf8') };
  } else {
    if (!dryRun) await rm(backup.path, { force: true });
    result = { path: backup.path, action: 'removed' };
  }
  if (!dryRun) delete state.containerdConfig;
  return result;
}
