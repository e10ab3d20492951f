/**
 * CRI runtime.v1 messages as @grpc/proto-loader decodes them (camelCase fields, 64-bit integers
 * as numbers, defaults filled in). Field meanings: k8s.io/cri-api pkg/apis/runtime/v1/api.proto.
 */

export interface RuntimeVersion {
  version: string;
  runtimeName: string;
  runtimeVersion: string;
  runtimeApiVersion: string;
}

export interface CriImage {
  /** The runtime's image ID (containerd: the config digest). */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes: containerd reports the compressed size of the image's content. */
  size: number;
  pinned: boolean;
}

/** PullImage's AuthConfig: registry credentials the runtime uses for this one pull. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64 of "user:password", as in a docker config.json */
  auth?: string;
  serverAddress?: string;
  identityToken?: string;
  registryToken?: string;
}

export interface FilesystemUsage {
  /** When the runtime measured it, in nanoseconds since the epoch (rounded: a JS number). */
  timestampNs: number;
  mountpoint: string;
  /** Bytes the runtime's images use on that filesystem (containerd: the snapshots). */
  usedBytes: number;
  inodesUsed: number;
}

/** An ingest in progress in containerd's content store (one blob being downloaded). */
export interface IngestStatus {
  ref: string;
  /** Bytes written so far. */
  offset: number;
  /** Expected size, 0 when unknown. */
  total: number;
  /** Expected digest. */
  expected: string;
}

/** A blob in containerd's content store. */
export interface ContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
}
