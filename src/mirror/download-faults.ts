import { Transform } from 'node:stream';
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
  if (err instanceof BlobVerifyError) return false;
  if (err instanceof UpstreamError) {
    return (
      err.code === 'UPSTREAM_UNAVAILABLE' || err.code === 'UPSTREAM_TIMEOUT' || err.code === 'TOOMANYREQUESTS'
    );
  }
  if ((err as { name?: string }).name === 'AbortError') return false;
  return true;
}

/** A pass-through that fails when no chunk arrives for `ms` (timer re-armed on every chunk). */
export function stallGuard(ms: number): Transform {
  let timer: NodeJS.Timeout | undefined;
  const guard: Transform = new Transform({
    transform(chunk, _enc, callback) {
      arm();
      callback(null, chunk);
    },
    flush(callback) {
      clearTimeout(timer);
      callback();
    },
    destroy(err, callback) {
      clearTimeout(timer);
      callback(err);
    },
  });
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => guard.destroy(new StallError(ms)), ms);
  };
  arm();
  return guard;
}

export class BlobVerifyError extends Error {
  readonly code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH';
  constructor(code: 'DIGEST_MISMATCH' | 'SIZE_MISMATCH', message: string) {
    super(message);
    this.name = 'BlobVerifyError';
    this.code = code;
  }
}
