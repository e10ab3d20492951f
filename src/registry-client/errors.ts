/**
 * Failures talking to an upstream registry. `code` is stable; the mirror maps it to an HTTP
 * status in one place (src/mirror/errors.ts). OCI codes are used where the upstream gave one.
 */
export type UpstreamErrorCode =
  | 'MANIFEST_UNKNOWN'
  | 'BLOB_UNKNOWN'
  | 'NAME_UNKNOWN'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'TOOMANYREQUESTS'
  | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT'
  | 'UPSTREAM_BAD_RESPONSE'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH';

export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;
  /** HTTP status the upstream answered, when it answered. */
  readonly status: number | undefined;
  /** Seconds the upstream asked us to wait (Retry-After), when it said. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    code: UpstreamErrorCode,
    message: string,
    options: { cause?: unknown; status?: number; retryAfterSeconds?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UpstreamError';
    this.code = code;
    this.status = options.status;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

const OCI_CODES = new Set<UpstreamErrorCode>([
  'MANIFEST_UNKNOWN',
  'BLOB_UNKNOWN',
  'NAME_UNKNOWN',
  'UNAUTHORIZED',
  'DENIED',
  'TOOMANYREQUESTS',
]);

/**
 * Turns an upstream error response into an UpstreamError, keeping the OCI error code from the
 * body (distribution-spec "Error Codes") when there is one.
 */
export function errorFromResponse(
  status: number,
  body: string,
  what: string,
  retryAfter: string | null,
): UpstreamError {
  let code: UpstreamErrorCode | undefined;
  let detail = '';
  try {
    const json = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    const first = json.errors?.[0];
    if (first?.code && OCI_CODES.has(first.code as UpstreamErrorCode)) code = first.code as UpstreamErrorCode;
    if (first?.message) detail = `: ${first.message.slice(0, 200)}`;
  } catch {
    // not an OCI error body
  }
  if (!code) {
    if (status === 401) code = 'UNAUTHORIZED';
    else if (status === 403) code = 'DENIED';
    else if (status === 404) code = what.includes('blob') ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN';
    else if (status === 429) code = 'TOOMANYREQUESTS';
    else if (status >= 500) code = 'UPSTREAM_UNAVAILABLE';
    else code = 'UPSTREAM_BAD_RESPONSE';
  }
  const retryAfterSeconds = parseRetryAfter(retryAfter);
  return new UpstreamError(code, `upstream answered ${status} for ${what}${detail}`, {
    status,
    ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
  });
}

/** Retry-After is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil((at - now) / 1000));
}
