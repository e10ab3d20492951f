/**
 * Errors of the eStargz converter and checker. `code` is stable: the CLI maps the codes that mean
 * "bad input" to exit code 2 in one place (src/cli/convert.ts), everything else is exit code 1.
 */
export type EstargzErrorCode =
  /** The input is not a tar archive Hoist can read (bad checksum, truncated, unknown entry type). */
  | 'TAR_INVALID'
  /** A layer's compression is not one Hoist converts (zstd: Node 20 has no zstd). */
  | 'UNSUPPORTED_COMPRESSION'
  /** A layer or manifest type Hoist does not convert. */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** A blob is not valid eStargz (footer, TOC, chunk digests). */
  | 'ESTARGZ_INVALID'
  /** Downloaded bytes do not match their descriptor. */
  | 'DIGEST_MISMATCH'
  /** A prioritized-files list that cannot be read. */
  | 'PRIORITY_LIST_INVALID'
  /** A `--platform` that is not os/arch[/variant]. */
  | 'PLATFORM_INVALID'
  /** A `--platform` that names no platform of the image. */
  | 'PLATFORM_NOT_FOUND';

export class EstargzError extends Error {
  readonly code: EstargzErrorCode;
  constructor(code: EstargzErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EstargzError';
    this.code = code;
  }
}
