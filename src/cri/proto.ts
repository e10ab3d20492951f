import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

/**
 * The .proto files ship in the package's top-level `proto/` folder. This module runs from
 * `src/cri/` under tsx and from `dist/cri/` once built: both are two levels below the package root.
 */
const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));

const LOADER_OPTIONS: Options = {
  keepCase: false, // runtime_name -> runtimeName
  longs: Number, // image sizes fit in 2^53 (8 PiB)
  enums: String,
  defaults: true, // proto3 leaves zero values out of the wire; give them back as fields
  oneofs: true,
};

let cached: GrpcObject | undefined;

/** The gRPC package tree of Hoist's CRI and containerd content and images subsets (loaded once). */
export function criProtos(): GrpcObject {
  cached ??= loadPackageDefinition(
    loadSync(['cri/api.proto', 'cri/content.proto', 'containerd/images.proto'], {
      ...LOADER_OPTIONS,
      includeDirs: [PROTO_DIR],
    }),
  );
  return cached;
}

export const PROTO_ROOT = PROTO_DIR;
