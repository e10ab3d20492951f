import { OciParseError } from '../oci/index.js';
import { UpstreamError } from '../registry-client/index.js';

/**
 * The mirror's errors, and the one place where any error becomes an HTTP status and an OCI
 * error body (distribution-spec "Error Codes").
 */
export type MirrorErrorCode =
  | 'BLOB_UNKNOWN'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'DIGEST_INVALID'
  | 'MANIFEST_INVALID'
  | 'RANGE_INVALID'
  | 'RANGE_NOT_SATISFIABLE'
  | 'UNSUPPORTED'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'INTERNAL';

const STATUS: Record<MirrorErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  NAME_UNKNOWN: 404,
  NAME_INVALID: 400,
  TAG_INVALID: 400,
  DIGEST_INVALID: 400,
  MANIFEST_INVALID: 400,
  RANGE_INVALID: 400,
  RANGE_NOT_SATISFIABLE: 416,
  UNSUPPORTED: 405,
  UNAUTHORIZED: 401,
  DENIED: 403,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 502,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  INTERNAL: 500,
};

export class MirrorError extends Error {
  readonly code: MirrorErrorCode;
  /** Overrides the status of the code (e.g. 504 for an upstream timeout). */
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: MirrorErrorCode,
    message: string,
    options: { cause?: unknown; status?: number; retryAfterSeconds?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MirrorError';
    this.code = code;
    this.status = options.status ?? STATUS[code];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** A bad configuration: the process exits 2 with this message. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** Converts anything thrown while handling a request into the error the client gets. */
export function toMirrorError(err: unknown): MirrorError {
  if (err instanceof MirrorError) return err;
  if (err instanceof OciParseError) {
    const code: MirrorErrorCode = err.code === 'REFERENCE_INVALID' ? 'NAME_INVALID' : err.code;
    return new MirrorError(code, err.message, { cause: err });
  }
  if (err instanceof UpstreamError) {
    const opts = {
      cause: err,
      ...(err.retryAfterSeconds !== undefined ? { retryAfterSeconds: err.retryAfterSeconds } : {}),
    };
    switch (err.code) {
      case 'MANIFEST_UNKNOWN':
      case 'BLOB_UNKNOWN':
      case 'NAME_UNKNOWN':
      case 'UNAUTHORIZED':
      case 'DENIED':
      case 'TOOMANYREQUESTS':
        return new MirrorError(err.code, err.message, opts);
      case 'UPSTREAM_TIMEOUT':
        return new MirrorError('UNAVAILABLE', err.message, { ...opts, status: 504 });
      default:
        return new MirrorError('UNAVAILABLE', err.message, opts);
    }
  }
  return new MirrorError('INTERNAL', 'internal error', { cause: err });
}

/** The OCI error body: `{"errors":[{"code","message","detail"}]}`. */
export function errorBody(err: MirrorError): string {
  const code = err.code === 'RANGE_NOT_SATISFIABLE' ? 'RANGE_INVALID' : err.code;
  return JSON.stringify({ errors: [{ code, message: err.message, detail: null }] });
}
