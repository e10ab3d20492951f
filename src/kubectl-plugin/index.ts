// `kubectl hoist`: status, why and top over PrePulls, NodePulls, Nodes and kubelet events.
// Pure views (status-view, why-view, top-view, format, image-match) and one reader (cluster).
export { PluginCluster, type ConnectOptions } from './cluster.js';
export { PluginError, INSTALL_HINT, type PluginErrorCode } from './errors.js';
export { ageOf, formatSeconds, humanBytes, humanDuration, kubectlTable } from './format.js';
export { formatCacheTable, nodeCacheRows, type NodeCacheRow } from './cache-view.js';
export {
  imageMatches,
  ImageQueryError,
  normaliseReference,
  parseImageQuery,
  type ImageQuery,
} from './image-match.js';
export {
  buildStatusReport,
  formatStatusText,
  prePullKey,
  type NodeImageRow,
  type PrePullRow,
  type StatusReport,
} from './status-view.js';
export { buildTopReport, formatTopText, type TopReport } from './top-view.js';
export { buildWhyReport, describeQuery, formatWhyText, type NodeImages, type WhyReport } from './why-view.js';
