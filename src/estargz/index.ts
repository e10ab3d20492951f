export { EstargzError, type EstargzErrorCode } from './errors.js';
export {
  TOC_TAR_NAME,
  FOOTER_SIZE,
  TOC_DIGEST_ANNOTATION,
  UNCOMPRESSED_SIZE_ANNOTATION,
  PREFETCH_LANDMARK,
  NO_PREFETCH_LANDMARK,
  ESTARGZ_DEFAULTS,
} from './constants.js';
export { encodeFooter, parseFooter } from './footer.js';
export { serializeToc, parseToc, type Toc, type TocEntry } from './toc.js';
export { EstargzWriter, type WriterOptions, type WrittenLayer } from './writer.js';
export { convertLayer, type ConvertLayerOptions, type ConvertedLayer } from './convert-layer.js';
export { orderEntries, parsePriorityList, cleanEntryName } from './prioritize.js';
export { checkBlob, readToc, type BlobAccess, type BlobCheck } from './verify.js';
export {
  ImageConverter,
  planLayer,
  type ConvertImageOptions,
  type ConvertImageResult,
  type LayerOutcome,
  type ManifestOutcome,
  type OtherEntryOutcome,
  type ProgressEvent,
} from './convert-image.js';
export { parsePlatform, platformMatches, type PlatformSpec } from './platforms.js';
export {
  classifyEntry,
  planIndex,
  REFERENCE_DIGEST_ANNOTATION,
  REFERENCE_TYPE_ANNOTATION,
  type EntryKind,
  type EntryStep,
} from './index-entries.js';
export {
  checkImage,
  type ImageCheck,
  type ManifestCheck,
  type LayerCheck,
  type SkippedEntry,
} from './check-image.js';
export {
  resolveEndpoint,
  parseDockerConfig,
  normalizeAuthKey,
  isLoopbackHost,
  type RegistryEndpoint,
  type RegistryAuthSources,
} from './registry-access.js';
export {
  worthLazyPulling,
  DEFAULT_LAZY_PULLING_POLICY,
  type ImageSizeFacts,
  type LazyPullingPolicy,
  type LazyPullingVerdict,
} from './policy.js';
export type { RepoRef } from './layer-transfer.js';
