/**
 * Prioritized files (docs/estargz.md "Prioritized Files and Landmark Files"): the files a
 * workload reads first go to the front of the layer, then `.prefetch.landmark`, so the snapshotter
 * fetches them in one request. Pure code; the ordering follows the reference's estargz.Build
 * (sortEntries, importTar, moveRec) so that Hoist and ctr-remote order a layer the same way.
 */
import { posix } from 'node:path';
import { NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK } from './constants.js';
import { EstargzError } from './errors.js';

/** The reference's cleanEntryName: path.Clean("/"+name) without the leading slash. */
export function cleanEntryName(name: string): string {
  let p = posix.normalize(`/${name}`);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p.slice(1);
}

export interface OrderableEntry {
  name: string;
  type: string;
  linkname: string;
}

export interface Ordering<T> {
  /** Entries in output order; `landmark` marks where the landmark file goes. */
  ordered: Array<T | 'landmark'>;
  landmark: typeof PREFETCH_LANDMARK | typeof NO_PREFETCH_LANDMARK;
  /** Listed paths that this layer does not hold (allowed, as ctr-remote allows them). */
  missed: string[];
}

/**
 * Orders a layer's entries: later duplicates replace earlier ones (at the later position),
 * existing landmarks are dropped, each listed path is moved to the front with its parent
 * directories and, for a hard link, its target.
 */
export function orderEntries<T extends OrderableEntry>(
  entries: Iterable<T>,
  prioritized: readonly string[],
): Ordering<T> {
  const rest = new Map<string, T>(); // Map keeps insertion order: delete + set moves to the end
  for (const e of entries) {
    const name = cleanEntryName(e.name);
    if (name === PREFETCH_LANDMARK || name === NO_PREFETCH_LANDMARK) continue;
    rest.delete(name);
    rest.set(name, e);
  }
  const front = new Map<string, T>();
  const missed: string[] = [];
  const move = (raw: string, depth: number): boolean => {
    if (depth > 4096) return false; // a hard-link cycle
    const name = cleanEntryName(raw);
    if (name === '') {
      const root = rest.get('');
      if (root !== undefined) {
        front.set('', root);
        rest.delete('');
      }
      return true;
    }
    if (!rest.has(name) && !front.has(name)) return false;
    const parent = cleanEntryName(posix.dirname(`/${name}`));
    if (!move(parent, depth + 1)) return false;
    const e = rest.get(name);
    if (e !== undefined && e.type === 'hardlink' && !move(e.linkname, depth + 1)) return false;
    const still = rest.get(name);
    if (still !== undefined) {
      front.set(name, still);
      rest.delete(name);
    }
    return true;
  };
  for (const path of prioritized) if (!move(path, 0)) missed.push(path);
  return {
    ordered: [...front.values(), 'landmark', ...rest.values()],
    landmark: prioritized.length > 0 ? PREFETCH_LANDMARK : NO_PREFETCH_LANDMARK,
    missed,
  };
}

/**
 * Reads a prioritized-files list: either one path per line (blank lines and `#` comments
 * ignored), or the JSON-lines record that `ctr-remote optimize --record-out` writes
 * (`{"path":"/bin/sh","manifestDigest":...,"layerIndex":0}` per line). Paths keep their first
 * position, as ctr-remote's readPathsFromRecordFile does.
 */
export function parsePriorityList(text: string, source = 'the prioritized-files list'): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const [i, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    let path = line;
    if (line.startsWith('{')) {
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (cause) {
        throw new EstargzError('PRIORITY_LIST_INVALID', `${source} line ${i + 1} is not valid JSON`, {
          cause,
        });
      }
      const p = (record as { path?: unknown }).path;
      if (typeof p !== 'string' || p === '') {
        throw new EstargzError('PRIORITY_LIST_INVALID', `${source} line ${i + 1} has no "path" string`);
      }
      path = p;
    }
    if (!seen.has(path)) {
      seen.add(path);
      out.push(path);
    }
  }
  return out;
}
