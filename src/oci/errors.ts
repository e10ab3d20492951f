/**
 * Errors raised by the pure OCI parsers. Each carries a stable `code` taken from the OCI
 * distribution-spec error codes where one fits, so that the HTTP layer can map it to a status.
 */
export type OciParseCode =
  | 'DIGEST_INVALID'
  | 'NAME_INVALID'
  | 'TAG_INVALID'
  | 'REFERENCE_INVALID'
  | 'MANIFEST_INVALID'
  | 'RANGE_INVALID';

export class OciParseError extends Error {
  readonly code: OciParseCode;
  constructor(code: OciParseCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OciParseError';
    this.code = code;
  }
}
