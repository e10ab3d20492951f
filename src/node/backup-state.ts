import { mkdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './atomic-write.js';
import { NodeConfigError } from './errors.js';

/**
 * What `hoist node configure` replaced, kept so `unconfigure` can put every byte back:
 * `<certs dir>/.hoist/state.json`. containerd never reads it (it looks up `<certs dir>/<registry>`,
 * and no registry host starts with a dot).
 */
export const STATE_DIR = '.hoist';
export const STATE_FILE = 'state.json';

const RegistryBackup = z.object({
  /** The previous hosts.toml, base64 (byte for byte); null when there was none. */
  original: z.string().nullable(),
  /** Its permission bits. */
  originalMode: z.number().int().nullable(),
  /** Hoist created `<certs dir>/<registry>/`, so unconfigure removes it when it is empty again. */
  createdDir: z.boolean(),
});
export type RegistryBackup = z.infer<typeof RegistryBackup>;

/**
 * containerd's config.toml, when configure had to set its registry config_path. `written` is the
 * SHA-256 of what Hoist wrote: unconfigure puts the original back only over that exact file, so
 * an edit made since (by hand or by a package upgrade) is never lost.
 */
const ConfigBackup = z.object({
  path: z.string(),
  /** The previous file, base64; null when there was none. */
  original: z.string().nullable(),
  originalMode: z.number().int().nullable(),
  written: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ConfigBackup = z.infer<typeof ConfigBackup>;

const State = z.object({
  version: z.literal(1),
  registries: z.record(z.string(), RegistryBackup),
  containerdConfig: ConfigBackup.optional(),
});
export type BackupState = z.infer<typeof State>;

export function statePath(certsDir: string): string {
  return join(certsDir, STATE_DIR, STATE_FILE);
}

export async function readState(certsDir: string): Promise<BackupState> {
  const path = statePath(certsDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, registries: {} };
    throw err;
  }
  const parsed = State.safeParse(safeJson(text));
  if (!parsed.success) {
    throw new NodeConfigError(
      'INVALID_STATE',
      `${path} is not a Hoist backup state file (${parsed.error.issues[0]?.message ?? 'bad JSON'}); restore the hosts.toml files by hand and delete it`,
    );
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Writes the state atomically, or removes it (and its folder) when nothing is backed up any more. */
export async function writeState(certsDir: string, state: BackupState): Promise<void> {
  const dir = join(certsDir, STATE_DIR);
  if (Object.keys(state.registries).length === 0 && state.containerdConfig === undefined) {
    await rm(statePath(certsDir), { force: true });
    await rmdir(dir).catch(() => undefined);
    return;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(statePath(certsDir), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}
