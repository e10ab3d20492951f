export { CriClient, type CriClientOptions } from './client.js';
export { CriError, criErrorFromGrpc, type CriErrorCode } from './errors.js';
export { DEFAULT_RUNTIME_SOCKETS, parseRuntimeEndpoint, resolveRuntimeSocket } from './endpoint.js';
export { PullProgress, type PullProgressSnapshot } from './pull-progress.js';
export type {
  ContentInfo,
  CriImage,
  FilesystemUsage,
  IngestStatus,
  RegistryAuth,
  RuntimeVersion,
} from './types.js';
