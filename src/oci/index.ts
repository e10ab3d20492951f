export { OciParseError, type OciParseCode } from './errors.js';
export { parseDigest, isDigest, digestOf, Digester, clip, type Digest } from './digest.js';
export {
  MediaType,
  MANIFEST_MEDIA_TYPES,
  isIndexMediaType,
  isManifestMediaType,
  parseAccept,
  acceptsMediaType,
} from './media-types.js';
export {
  parseRepository,
  isValidRepository,
  isValidTag,
  parseManifestReference,
  parseImageReference,
  formatImageReference,
  DOCKER_HUB,
  MAX_NAME_LENGTH,
  type ManifestReference,
  type ImageReference,
} from './reference.js';
export {
  parseManifest,
  detectManifestMediaType,
  formatPlatform,
  MAX_MANIFEST_BYTES,
  type Descriptor,
  type Platform,
  type ParsedManifest,
} from './manifest.js';
export { parseRange, type ByteRange, type RangeResult } from './range.js';
