import type { NodeCache } from './sources.js';

/**
 * The figures the dashboard reads from a mirror's /metrics. The parser lives in src/node, since
 * the node agent reads its own mirror with it too (and reports the figures in NodePull status).
 */
export { parseMirrorCacheFigures as parseMirrorMetrics } from '../node/index.js';

export type MirrorCacheCounters = Omit<NodeCache, 'node' | 'scrapedAt' | 'error' | 'source'>;
