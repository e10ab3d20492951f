export { Mirror, type MirrorOptions } from './server.js';
export {
  loadMirrorConfig,
  resolveMirrorConfig,
  PUBLIC_UPSTREAMS,
  DEFAULTS as MIRROR_DEFAULTS,
  type MirrorConfig,
  type MirrorFlags,
  type UpstreamConfig,
} from './config.js';
export { MirrorError, ConfigError, type MirrorErrorCode } from './errors.js';
export { MirrorMetrics } from './metrics.js';
export { serveMetricsSocket } from './metrics-socket.js';
export { routeRequest, type Route, type RoutingTable } from './routing.js';
export type { BlobSource } from './blob-fetcher.js';
export { verifyStorage, VerifyError, type VerifyReport, type BadEntry, type TempFile } from './verify.js';
export { lockStorage, storageHolder, StorageLockedError } from './storage-lock.js';
// prom-client's metric classes without its index (prom-client-core.ts), for metrics that other
// capabilities put on the mirror's registry (src/peers).
export { Counter, Gauge, Histogram } from './prom-client-core.js';
