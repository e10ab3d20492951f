// The controller's read-only web dashboard (issue #14). Other capabilities import only from here.
export { Dashboard, type DashboardOptions } from './dashboard.js';
export { EventHub, EVENT_DEFAULTS, type EventHubOptions } from './events.js';
export { escapeHtml, jsonForScript } from './escape.js';
export { renderPage, contentSecurityPolicy } from './page.js';
export {
  buildState,
  STATE_LIMITS,
  type Cell,
  type CellPhase,
  type DashboardState,
  type MatrixRow,
  type StateInput,
} from './state.js';
export type { CacheSource, NodeCache, PullRecord, PullSummary, PullTelemetrySource } from './sources.js';
export { parseMirrorMetrics, type MirrorCacheCounters } from './mirror-metrics.js';
export {
  MirrorScraper,
  SCRAPE_DEFAULTS,
  targetsFromEndpointSlices,
  type EndpointSlice,
  type MirrorScraperOptions,
  type ScrapeTarget,
} from './mirror-scraper.js';
export { startMirrorCache } from './mirror-discovery.js';
export { mergeNodeCaches, nodeCachesFromNodePulls } from './node-cache.js';
