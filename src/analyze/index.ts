export { AnalyzeError, type AnalyzeErrorCode } from './errors.js';
export {
  hasFindingAtOrAbove,
  isSeverity,
  sortFindings,
  SEVERITIES,
  type Finding,
  type Severity,
} from './findings.js';
export { parseGoDuration } from './go-duration.js';
export {
  parseDockerfile,
  shippedStages,
  runScript,
  type Dockerfile,
  type Instruction,
  type Stage,
} from './dockerfile-parser.js';
export { lintDockerfile, DEFAULT_LARGE_FILE_BYTES, type LintOptions } from './dockerfile-rules.js';
export { DOCKERFILE_RULES, type RuleInfo } from './dockerfile-catalog.js';
export {
  analyzeDockerfile,
  type DockerfileReport,
  type DockerfileAnalysisOptions,
} from './dockerfile-analysis.js';
export { readBuildContext, type BuildContext } from './build-context.js';
export { toSarif, SARIF_SCHEMA } from './sarif.js';
export {
  parseKubeletEvents,
  parseEventsJson,
  classifyPullFailure,
  classifyPullMessage,
  readKubeletEvent,
  type KubeletEvent,
  type PullMessage,
  type ParsedEvents,
  type Pull,
  type Failure,
  type FailureCause,
} from './kubelet-events.js';
export { parsePrometheusText, histograms, histogramQuantile, type Histogram } from './prometheus-text.js';
export { buildEventsReport, percentiles, type EventsReport, type Advice } from './pull-report.js';
export { analyzeImageSet, type ImageInfo, type ImageSetReport } from './image-set.js';
export { formatBytes, type BytesFormat } from './format-bytes.js';
export { fetchImage, fetchImages, defaultPlatform, type FetchOptions } from './image-fetch.js';
export { lazyPullDecision, LAZY_PULL_MIN_BYTES, type LazyPullDecision } from './lazy-pull-policy.js';
export { renderImagesHtml, renderEventsHtml } from './html-reports.js';
