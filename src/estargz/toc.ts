/**
 * The TOC (`stargz.index.json`, docs/estargz.md "TOC, TOCEntries and Footer"): one entry per tar
 * entry, plus a "chunk" entry per extra chunk of a large file. Field names, order and omission of
 * empty fields follow the reference's TOCEntry (estargz/types.go), serialized as Go's
 * json.MarshalIndent(toc, "", "\t") does; xattr values are base64, as Go encodes []byte.
 */
import type { TarEntryType, TarHeader } from './tar-header.js';

export type TocEntryType = TarEntryType | 'chunk';

export interface TocEntry {
  name: string;
  type: TocEntryType;
  size?: number;
  modtime?: string;
  linkName?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  userName?: string;
  groupName?: string;
  offset?: number;
  devMajor?: number;
  devMinor?: number;
  xattrs?: Record<string, string>;
  digest?: string;
  chunkOffset?: number;
  chunkSize?: number;
  chunkDigest?: string;
}

export interface Toc {
  version: number;
  entries: TocEntry[];
}

const FIELD_ORDER: ReadonlyArray<keyof TocEntry> = [
  'name',
  'type',
  'size',
  'modtime',
  'linkName',
  'mode',
  'uid',
  'gid',
  'userName',
  'groupName',
  'offset',
  'devMajor',
  'devMinor',
  'xattrs',
  'digest',
  'chunkOffset',
  'chunkSize',
  'chunkDigest',
];

/** Go's RFC 3339 form of a tar mtime, UTC, rounded to the second; "" for zero (estargz.go formatModtime). */
export function formatModtime(mtimeSeconds: number): string {
  const seconds = Math.round(mtimeSeconds);
  if (seconds === 0) return '';
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Tracks the last user/group name per id: the reference writes a name only when it differs from
 * the last one written for that id (Writer.nameIfChanged).
 */
export class NameCompressor {
  private readonly users = new Map<number, string>();
  private readonly groups = new Map<number, string>();

  user(id: number, name: string): string {
    return this.pick(this.users, id, name);
  }

  group(id: number, name: string): string {
    return this.pick(this.groups, id, name);
  }

  private pick(map: Map<number, string>, id: number, name: string): string {
    if (name === '' || map.get(id) === name) return '';
    map.set(id, name);
    return name;
  }
}

/** The TOC entry of a tar header, before payload offsets and digests are known. */
export function tocEntryFor(h: TarHeader, names: NameCompressor): TocEntry {
  const e: TocEntry = { name: h.name, type: h.type };
  if (h.type === 'reg') e.size = h.size;
  e.modtime = formatModtime(h.mtime);
  if (h.type === 'hardlink' || h.type === 'symlink') e.linkName = h.linkname;
  e.mode = h.mode;
  e.uid = h.uid;
  e.gid = h.gid;
  e.userName = names.user(h.uid, h.uname);
  e.groupName = names.group(h.gid, h.gname);
  if (h.type === 'char' || h.type === 'block') {
    e.devMajor = h.devmajor;
    e.devMinor = h.devminor;
  }
  if (h.xattrs.size > 0) {
    e.xattrs = {};
    for (const [k, v] of h.xattrs) e.xattrs[k] = v.toString('base64');
  }
  return e;
}

/** Serializes like Go's encoding/json with `omitempty` on every field but name and type. */
export function serializeToc(toc: Toc): Buffer {
  const entries = toc.entries.map((e) => {
    const out: Record<string, unknown> = {};
    for (const key of FIELD_ORDER) {
      const v = e[key];
      if (key === 'name' || key === 'type') out[key] = v ?? '';
      else if (v === undefined || v === 0 || v === '') continue;
      else if (key === 'xattrs' && Object.keys(v as object).length === 0) continue;
      else out[key] = v;
    }
    return out;
  });
  return Buffer.from(JSON.stringify({ version: toc.version, entries }, null, '\t'));
}

/** Parses and shape-checks a TOC JSON document (as the reference's json.Decode would accept it). */
export function parseToc(json: Buffer): Toc {
  const value: unknown = JSON.parse(json.toString('utf8'));
  if (typeof value !== 'object' || value === null || !Array.isArray((value as Toc).entries)) {
    throw new Error('TOC JSON has no "entries" array');
  }
  const toc = value as Toc;
  for (const [i, e] of toc.entries.entries()) {
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || typeof e.type !== 'string') {
      throw new Error(`TOC entry ${i} has no name or type`);
    }
    for (const k of ['size', 'offset', 'chunkOffset', 'chunkSize'] as const) {
      const v = e[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)) {
        throw new Error(`TOC entry ${i} (${e.name}) has an invalid ${k}`);
      }
    }
  }
  return toc;
}
