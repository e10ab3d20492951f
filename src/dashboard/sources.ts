/**
 * What the dashboard reads besides PrePulls and NodePulls. The pull-telemetry interface is the
 * one src/telemetry exports (same shape, declared here so the dashboard builds without it; the
 * structural types make the real source assignable). Each source is optional: a section without
 * one says "no data yet".
 */

export interface PullRecord {
  namespace: string;
  pod: string;
  node: string;
  image: string;
  registry: string;
  via: 'hoist' | 'direct';
  outcome: 'pulled' | 'failed';
  cause?: string;
  seconds?: number;
  bytes?: number;
  at: string;
}

export interface PullSummary {
  image: string;
  via: 'hoist' | 'direct';
  count: number;
  medianSeconds: number;
  p90Seconds: number;
}

export interface PullTelemetrySource {
  recent(limit: number): PullRecord[];
  slowest(limit: number): PullRecord[];
  summary(): PullSummary[];
  onRecord(cb: (r: PullRecord) => void): () => void;
}

/** One node's mirror, as its /metrics last read (counters are totals since the mirror started). */
export interface NodeCache {
  node: string;
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
  /** When this mirror was last read (RFC 3339), and the error of the last read if it failed. */
  scrapedAt: string;
  error?: string;
}

export interface CacheSource {
  nodes(): NodeCache[];
  onChange(cb: () => void): () => void;
}
