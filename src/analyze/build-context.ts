import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DockerIgnore } from './dockerignore.js';

/** What the rules need to know about a Dockerfile's build context directory. */
export interface BuildContext {
  dir: string;
  /** Which ignore file applies, if any: `<Dockerfile>.dockerignore` beside it, else `.dockerignore`. */
  dockerignore: string | undefined;
  /** Files that reach the build (ignore file applied), relative `/`-separated paths. */
  files: Array<{ path: string; size: number }>;
  /** True when the walk stopped at `maxEntries` (findings about the context are then partial). */
  truncated: boolean;
}

export const MAX_CONTEXT_ENTRIES = 50_000;

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Reads the build context: the ignore file (BuildKit looks for `<Dockerfile name>.dockerignore`
 * next to the Dockerfile first, then `.dockerignore` at the context root) and the files that are
 * not ignored, with sizes. Ignored directories are skipped unless a `!` pattern may re-include.
 */
export async function readBuildContext(
  dockerfilePath: string,
  contextDir = dirname(dockerfilePath),
  maxEntries = MAX_CONTEXT_ENTRIES,
): Promise<BuildContext> {
  const perFile = join(dirname(dockerfilePath), `${basename(dockerfilePath)}.dockerignore`);
  const rootFile = join(contextDir, '.dockerignore');
  let dockerignore: string | undefined;
  let text = await readIfExists(perFile);
  if (text !== undefined) dockerignore = perFile;
  else {
    text = await readIfExists(rootFile);
    if (text !== undefined) dockerignore = rootFile;
  }
  const ignore = new DockerIgnore(text ?? '');
  const files: BuildContext['files'] = [];
  let entries = 0;
  let truncated = false;
  const walk = async (rel: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(join(contextDir, rel))).sort();
    } catch {
      return; // unreadable directories fail the real build too; nothing to say about them here
    }
    for (const name of names) {
      if (++entries > maxEntries) {
        truncated = true;
        return;
      }
      const path = rel ? `${rel}/${name}` : name;
      const ignored = ignore.ignores(path);
      if (ignored && !ignore.hasExceptions) continue;
      const st = await stat(join(contextDir, path)).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(path);
      else if (st.isFile() && !ignored) files.push({ path, size: st.size });
      if (truncated) return;
    }
  };
  await walk('');
  return { dir: contextDir, dockerignore, files, truncated };
}
