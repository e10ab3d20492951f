export {
  RegistryClient,
  DEFAULT_HEADERS_TIMEOUT_MS,
  type RegistryClientOptions,
  type ManifestResponse,
  type ManifestHead,
  type BlobResponse,
  type RequestOptions,
} from './client.js';
export {
  sendRequest,
  type HttpBody,
  type HttpRequestInit,
  type HttpResponse,
  type SendOptions,
} from './http-transport.js';
export { UpstreamError, parseRetryAfter, type UpstreamErrorCode } from './errors.js';
export { backoffDelayMs, sleep, UpstreamHealth, DEFAULT_RETRY_POLICY, type RetryPolicy } from './backoff.js';
export { parseChallenges, basicAuthorization, type Credentials, type Challenge } from './auth.js';
export {
  blobExists,
  mountBlob,
  pushBlob,
  pushManifest,
  BlobUpload,
  DEFAULT_CHUNK_BYTES,
  type ChunkedWriter,
  type PushOptions,
} from './push.js';
