import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Failures talking to the container runtime over CRI. `code` is stable: the gRPC status name
 * the runtime answered with (UNAVAILABLE, NOT_FOUND, UNIMPLEMENTED, ...) or one of Hoist's own
 * (NO_RUNTIME_SOCKET, ENDPOINT_INVALID).
 */
export type CriErrorCode =
  | 'NO_RUNTIME_SOCKET'
  | 'ENDPOINT_INVALID'
  | 'CANCELLED'
  | 'UNKNOWN'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'OUT_OF_RANGE'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'DATA_LOSS'
  | 'UNAUTHENTICATED';

export class CriError extends Error {
  readonly code: CriErrorCode;
  constructor(code: CriErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CriError';
    this.code = code;
  }
}

interface GrpcLikeError {
  code?: number;
  details?: string;
  message?: string;
}

/** Wraps a gRPC call error as a CriError naming the RPC and what the runtime said. */
export function criErrorFromGrpc(err: unknown, rpc: string, endpoint: string): CriError {
  const e = err as GrpcLikeError;
  const name = typeof e.code === 'number' ? (GrpcStatus[e.code] as CriErrorCode | undefined) : undefined;
  const code: CriErrorCode = name && name !== ('OK' as string) ? name : 'UNKNOWN';
  // grpc-js appends an empty "Resolution note:" to connection failures.
  const detail = (e.details || e.message || String(err)).replace(/\s*Resolution note:\s*$/, '');
  if (code === 'UNAVAILABLE') {
    return new CriError(code, `cannot reach the container runtime at ${endpoint}: ${detail}`, { cause: err });
  }
  if (code === 'UNIMPLEMENTED') {
    return new CriError(
      code,
      `the runtime at ${endpoint} does not serve CRI runtime.v1 ${rpc} (${detail}); Hoist needs containerd >= 1.6 or CRI-O >= 1.24`,
      { cause: err },
    );
  }
  return new CriError(code, `${rpc}: ${detail}`, { cause: err });
}
