import { stat, readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/**
 * The access records on disk, under `<storage>/access/<upstream>/<repo...>/`: `_members/<alg>/<hex>`
 * (a digest belongs to the repository) and `_private` (a passthrough repository the upstream
 * refused to anonymous requests; see access.ts). Repository components cannot start with `_`
 * (distribution-spec name grammar), so neither name is ambiguous.
 */

/** A file beside `_members` marking a private passthrough repository (`_` starts no name component). */
const PRIVATE_MARK = '_private';

export function privateMarkPath(root: string, upstream: string, repo: string): string {
  return join(root, encodeURIComponent(upstream), repo, PRIVATE_MARK);
}

/**
 * Every record under the access root (`<upstream>/<repo...>/_members/<alg>/<hex>`). Repository
 * components cannot start with `_` (distribution-spec name grammar), so `_members` is unambiguous.
 */
export async function walkRecords(
  root: string,
): Promise<{ members: Array<{ digest: string; path: string }>; privateRepos: string[] }> {
  const found: Array<{ digest: string; path: string }> = [];
  const privateRepos: string[] = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (entry.isFile() && entry.name === PRIVATE_MARK) {
        // access/<upstream>/<repo...>/_private
        const [upstream, ...repo] = relative(root, dir).split(sep);
        if (upstream && repo.length > 0)
          privateRepos.push(`${decodeURIComponent(upstream)}\n${repo.join('/')}`);
        continue;
      }
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (entry.name !== '_members') {
        await visit(path);
        continue;
      }
      for (const algorithm of await readdir(path).catch(() => [])) {
        for (const hex of await readdir(join(path, algorithm)).catch(() => [])) {
          found.push({ digest: `${algorithm}:${hex}`, path: join(path, algorithm, hex) });
        }
      }
    }
  };
  await visit(root);
  return { members: found, privateRepos };
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
