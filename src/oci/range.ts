import { clip } from './digest.js';
import { OciParseError } from './errors.js';

/**
 * HTTP byte ranges (RFC 9110 §14.1.2). A blob GET with `Range` is how lazy-pulling clients
 * (stargz snapshotter) read files out of a layer without downloading all of it.
 */

/** An inclusive byte range, as in `Content-Range: bytes start-end/size`. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeResult = { kind: 'none' } | { kind: 'range'; range: ByteRange } | { kind: 'unsatisfiable' };

type RangeSpec = { first: number; last?: number } | { suffix: number };

/** Longest Range header accepted: a list of a few hundred ranges; beyond that it is abuse. */
const MAX_RANGE_HEADER = 8192;
const SPEC = /^(?:(\d{1,16})-(\d{0,16})|-(\d{1,16}))$/;

/**
 * Resolves a Range header against a blob of `size` bytes (undefined while the size is not yet
 * known, in which case suffix ranges cannot be resolved and are treated as unsatisfiable).
 *
 * Several ranges are coalesced into one covering range (RFC 9110 §14.2 lets a server coalesce);
 * the stargz snapshotter asks for many chunks at once and accepts a single-part 206 back.
 * A syntactically malformed header is an error (400) rather than ignored: a client sending one
 * is broken or hostile, and a silent 200 with the whole of a 40 GB layer would be the worst answer.
 */
export function parseRange(header: string | undefined, size: number | undefined): RangeResult {
  if (header === undefined) return { kind: 'none' };
  if (header.length > MAX_RANGE_HEADER) throw invalid(header, 'is too long');
  const eq = header.indexOf('=');
  if (eq < 0 || header.slice(0, eq).trim().toLowerCase() !== 'bytes') {
    throw invalid(header, 'must use the "bytes" unit');
  }
  const specs: RangeSpec[] = [];
  for (const raw of header.slice(eq + 1).split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    const m = SPEC.exec(part);
    if (!m) throw invalid(header, `has a malformed range "${clip(part, 40)}"`);
    if (m[3] !== undefined) {
      specs.push({ suffix: Number(m[3]) });
    } else {
      const first = Number(m[1]);
      const last = m[2] === '' ? undefined : Number(m[2]);
      if (last !== undefined && last < first)
        throw invalid(header, `has a range "${part}" that ends before it starts`);
      specs.push(last === undefined ? { first } : { first, last });
    }
  }
  if (specs.length === 0) throw invalid(header, 'names no range');

  let start = Infinity;
  let end = -1;
  for (const spec of specs) {
    let s: number;
    let e: number;
    if ('suffix' in spec) {
      if (size === undefined || spec.suffix === 0 || size === 0) continue;
      s = Math.max(0, size - spec.suffix);
      e = size - 1;
    } else {
      if (size !== undefined && spec.first >= size) continue;
      s = spec.first;
      e = spec.last === undefined ? (size === undefined ? Number.MAX_SAFE_INTEGER : size - 1) : spec.last;
      if (size !== undefined) e = Math.min(e, size - 1);
    }
    start = Math.min(start, s);
    end = Math.max(end, e);
  }
  if (end < 0) return { kind: 'unsatisfiable' };
  return { kind: 'range', range: { start, end } };
}

function invalid(header: string, why: string): OciParseError {
  return new OciParseError('RANGE_INVALID', `Range header "${clip(header, 60)}" ${why}`);
}
