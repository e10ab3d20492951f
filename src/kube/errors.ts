/**
 * Failures of Kubernetes API access. Each class has a stable `code`; tests and callers match on
 * the code (or on `status`/`reason` for API answers), never on the message. The mapping from an
 * HTTP status and a `Status` body to an error lives here and nowhere else.
 */

/** A `metav1.Status` as the API server sends it with an error status or a watch ERROR event. */
export interface KubeStatus {
  kind?: string;
  apiVersion?: string;
  status?: string;
  message?: string;
  reason?: string;
  details?: unknown;
  code?: number;
}

export type KubeErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'NOT_ACCEPTABLE'
  | 'ALREADY_EXISTS'
  | 'CONFLICT'
  | 'GONE'
  | 'REQUEST_ENTITY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL_ERROR'
  | 'SERVICE_UNAVAILABLE'
  | 'TIMEOUT'
  | 'UNEXPECTED_STATUS';

/** The API server answered, with an error (a non-2xx status, or an ERROR event on a watch). */
export class KubeError extends Error {
  readonly code: KubeErrorCode;
  /** HTTP status (or the Status `code` of a watch ERROR event). */
  readonly status: number;
  /** `Status.reason` (NotFound, Conflict, AlreadyExists, Gone, Forbidden, Invalid...). */
  readonly reason: string;
  /** `Status.details` (name, kind, causes), when the server gave them. */
  readonly details?: unknown;
  /** The whole Status object, when the body was one. */
  readonly body?: KubeStatus;

  constructor(
    status: number,
    reason: string,
    message: string,
    options: { details?: unknown; body?: KubeStatus; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KubeError';
    this.status = status;
    this.reason = reason;
    this.code = codeFor(status, reason);
    if (options.details !== undefined) this.details = options.details;
    if (options.body !== undefined) this.body = options.body;
  }
}

export type KubeConnectionErrorCode = 'KUBE_UNREACHABLE' | 'KUBE_TIMEOUT' | 'KUBE_BAD_RESPONSE';

/** No usable answer from the API server: connection refused or reset, TLS failure, timeout, garbage. */
export class KubeConnectionError extends Error {
  readonly code: KubeConnectionErrorCode;
  constructor(code: KubeConnectionErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KubeConnectionError';
    this.code = code;
  }
}

export type KubeConfigErrorCode =
  | 'KUBECONFIG_NOT_FOUND'
  | 'KUBECONFIG_INVALID'
  | 'KUBECONFIG_CONTEXT_NOT_FOUND'
  | 'KUBECONFIG_UNSUPPORTED'
  | 'KUBECONFIG_FILE_UNREADABLE'
  | 'IN_CLUSTER_UNAVAILABLE'
  | 'NO_KUBECONFIG';

/** The credentials or the cluster address cannot be worked out. Messages say what to do. */
export class KubeConfigError extends Error {
  readonly code: KubeConfigErrorCode;
  constructor(code: KubeConfigErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KubeConfigError';
    this.code = code;
  }
}

// The reasons the API server uses for each status (k8s.io/apimachinery metav1.StatusReason), used
// when a response has no Status body (a proxy's HTML page, an empty 503).
const REASON_BY_STATUS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  406: 'NotAcceptable',
  409: 'Conflict',
  410: 'Gone',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

const CODE_BY_STATUS: Record<number, KubeErrorCode> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  409: 'CONFLICT',
  410: 'GONE',
  413: 'REQUEST_ENTITY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'INVALID',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_ERROR',
  503: 'SERVICE_UNAVAILABLE',
  504: 'TIMEOUT',
};

function codeFor(status: number, reason: string): KubeErrorCode {
  // 409 carries two meanings: a create of an existing name, or a stale resourceVersion.
  if (status === 409 && reason === 'AlreadyExists') return 'ALREADY_EXISTS';
  return CODE_BY_STATUS[status] ?? 'UNEXPECTED_STATUS';
}

function isStatus(v: unknown): v is KubeStatus {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'Status';
}

/**
 * The error for a Status object, from an error response or a watch ERROR event. Any 410 gets
 * reason `Gone`: the server says `Expired` for a too-old resourceVersion or continue token, and
 * callers need one reason to test for "re-list".
 */
export function kubeErrorFromStatus(status: KubeStatus, fallbackStatus: number, what: string): KubeError {
  const code = typeof status.code === 'number' && status.code > 0 ? status.code : fallbackStatus;
  const reason = code === 410 ? 'Gone' : status.reason || REASON_BY_STATUS[code] || 'Unknown';
  const message = `${what}: ${code} ${reason}${status.message ? `: ${status.message}` : ''}`;
  return new KubeError(code, reason, message, { details: status.details, body: status });
}

/** The error for a non-2xx response; `body` is the response text (a Status JSON, or anything). */
export function kubeErrorFromResponse(httpStatus: number, body: string, what: string): KubeError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isStatus(parsed)) return kubeErrorFromStatus({ ...parsed, code: httpStatus }, httpStatus, what);
  const text = body.trim().replace(/\s+/g, ' ').slice(0, 200);
  return kubeErrorFromStatus({ message: text || undefined }, httpStatus, what);
}
