/**
 * A node mirror's cache figures, read from its /metrics (Prometheus text exposition format 0.0.4:
 * `name{label="value",...} value [timestamp]`, `#` lines are comments). Only the hoist_mirror_*
 * families below are kept; anything else, or a malformed line, is skipped. Pure: shared by the
 * controller's dashboard (which reads mirrors it can reach) and the node agent (which reads its
 * own mirror and reports the figures in its NodePull status).
 */

export interface MirrorCacheFigures {
  /** hoist_mirror_store_bytes */
  storeBytes: number;
  /** hoist_mirror_cache_lookups_total{kind="blob",result="hit"} and all blob lookups. */
  blobHits: number;
  blobLookups: number;
  /** hoist_mirror_served_bytes_total summed over sources. */
  servedBytes: number;
  /** hoist_mirror_upstream_bytes_total (or fetched_bytes_total{source="upstream"} when present). */
  upstreamBytes: number;
  /** hoist_mirror_fetched_bytes_total{source="peer"}; undefined until peer sharing reports it. */
  peerBytes?: number;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const WANTED = new Set([
  'hoist_mirror_store_bytes',
  'hoist_mirror_cache_lookups_total',
  'hoist_mirror_served_bytes_total',
  'hoist_mirror_upstream_bytes_total',
  'hoist_mirror_fetched_bytes_total',
]);
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;

function parseLabels(text: string): Record<string, string> | undefined {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  let m: RegExpExecArray | null;
  while (LABEL.lastIndex < text.length && (m = LABEL.exec(text)) !== null) {
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return LABEL.lastIndex === text.length || text.trim() === '' ? labels : undefined;
}

function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m || !WANTED.has(m[1]!)) continue;
    const labels = parseLabels(m[2] ?? '');
    const value = Number(m[3]);
    if (labels === undefined || !Number.isFinite(value)) continue;
    out.push({ name: m[1]!, labels, value });
  }
  return out;
}

/** True when the page is a Hoist mirror's (it exports the store gauge from its first request). */
export function isMirrorMetrics(text: string): boolean {
  return /^hoist_mirror_store_bytes[\s{]/m.test(text);
}

export function parseMirrorCacheFigures(text: string): MirrorCacheFigures {
  let storeBytes = 0;
  let blobHits = 0;
  let blobLookups = 0;
  let servedBytes = 0;
  let upstreamBytes = 0;
  let fetchedUpstream: number | undefined;
  let peerBytes: number | undefined;
  for (const s of samples(text)) {
    switch (s.name) {
      case 'hoist_mirror_store_bytes':
        storeBytes += s.value;
        break;
      case 'hoist_mirror_cache_lookups_total':
        if (s.labels.kind !== 'blob') break;
        blobLookups += s.value;
        if (s.labels.result === 'hit') blobHits += s.value;
        break;
      case 'hoist_mirror_served_bytes_total':
        servedBytes += s.value;
        break;
      case 'hoist_mirror_upstream_bytes_total':
        upstreamBytes += s.value;
        break;
      case 'hoist_mirror_fetched_bytes_total':
        // Peer sharing's split of what the mirror fetched: it says upstream vs peer exactly.
        if (s.labels.source === 'peer') peerBytes = (peerBytes ?? 0) + s.value;
        else if (s.labels.source === 'upstream') fetchedUpstream = (fetchedUpstream ?? 0) + s.value;
        break;
    }
  }
  return {
    storeBytes,
    blobHits,
    blobLookups,
    servedBytes,
    upstreamBytes: fetchedUpstream ?? upstreamBytes,
    ...(peerBytes !== undefined ? { peerBytes } : {}),
  };
}
