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
export {
  ContainerdImages,
  filterValue,
  labelField,
  type ContainerdImage,
  type ContainerdImagesOptions,
  type ImageRecordStore,
  type ImageTarget,
} from './containerd-images.js';
export {
  CRI_PINNED_LABEL,
  CRI_PINNED_VALUE,
  HOIST_PINNED_LABEL,
  HOIST_PINNED_VALUE,
  ImagePins,
  type PinOutcome,
} from './image-pins.js';
