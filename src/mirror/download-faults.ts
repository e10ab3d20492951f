import { UpstreamError } from '../registry-client/index.js';

/** What can go wrong with a blob download, and which of it is worth resuming. */

/** The body ended cleanly but short of its Content-Length: the connection was cut. */
export class PrematureEndError extends Error {
  readonly code = 'PREMATURE_END';
  constructor(received: number, expected: number) {
    super(`upstream body ended after ${received} of ${expected} bytes`);
    this.name = 'PrematureEndError';
  }
}

/** The disk is full and no client is left to stream the rest of a download to. */
export class NoSpaceError extends Error {
  readonly code = 'NO_SPACE';
  constructor(digest: string) {
    super(`no space left to store ${digest}, and no client is waiting for it`);
    this.name = 'NoSpaceError';
  }
}

/** No byte arrived within the stall timeout. */
export class StallError extends Error {
  readonly code = 'UPSTREAM_STALLED';
  constructor(ms: number) {
    super(`upstream sent nothing for ${ms} ms`);
    this.name = 'StallError';
  }
}

/**
 * Whether a failed attempt is worth resuming: a broken, stalled or short body, or an upstream that
 * could not answer. A digest or size mismatch is final, and so is an upstream's "no" (404, 401).
 */
export function isResumable(err: unknown): boolean {
  if (err instanceof BlobVerifyError || err instanceof NoSpaceError) return false;
  if (err instanceof UpstreamError) {
    return (
      err.code === 'UPSTREAM_UNAVAILABLE' || err.code === 'UPSTREAM_TIMEOUT' || err.code === 'TOOMANYREQUESTS'
    );
  }
  if ((err as { name?: string }).name === 'AbortError') return false;
  return true;
}

export class BlobVerifyError extends Error {
  readonly code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH';
  constructor(code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH', message: string) {
    super(message);
    this.name = 'BlobVerifyError';
    this.code = code;
  }
}
