/**
 * What the dashboard reads besides PrePulls and NodePulls: pull telemetry (src/telemetry) and the
 * node mirrors' cache figures (read directly, or as the node agents report them in NodePull
 * status). Each source is optional: a section without one says "no data yet".
 */
export type { PullRecord, PullSummary, PullTelemetrySource } from '../telemetry/index.js';

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
  /**
   * Who read the mirror: the controller itself (`mirror`, its /metrics) or the node's agent
   * (`agent`, from NodePull status.mirror). node-cache.ts says which wins and why.
   */
  source?: 'mirror' | 'agent';
}

export interface CacheSource {
  nodes(): NodeCache[];
  onChange(cb: () => void): () => void;
}
