/**
 * Why a NodePull image failed, as `status.images[].reason` names it (docs/prepull.md): one word
 * a controller and a person can act on, from the queue's code, the runtime's gRPC code and the
 * runtime's words. Pure; the patterns are containerd's own messages (1.6 and 2.x), e.g.
 *
 *   failed to resolve reference "r/a:v1": r/a:v1: not found                        (1.6, NOT_FOUND)
 *   failed to resolve image: r/a:v1: not found                                     (2.x, NOT_FOUND)
 *   pulling from host r failed with status code [manifests v1]: 401 Unauthorized    (1.6)
 *   unexpected status from HEAD request to http://r/v2/a/manifests/v1: 401 Unauthorized (2.x)
 *   pull access denied, ...: authorization failed: no basic auth credentials        (2.x)
 *   ...: 429 Too Many Requests - Server message: ...
 */

export type FailureReason =
  'NotFound' | 'Unauthorized' | 'RateLimited' | 'DiskMark' | 'Timeout' | 'PullError';

export interface FailureFacts {
  /** The queue's code: PULL_FAILED, PULL_TIMEOUT, DISK_HIGH_WATER, DISK_UNKNOWN. */
  code?: string;
  /** The runtime's gRPC status name (NOT_FOUND, UNKNOWN...), or PULL_SECRET (credentials unreadable). */
  runtimeCode?: string;
  /** The runtime's or registry's words. */
  message?: string;
}

const RATE_LIMITED = /\b429\b|too many requests|toomanyrequests|rate limit/i;
const UNAUTHORIZED =
  /\b40[13] (?:unauthorized|forbidden)\b|\bunauthorized\b|\bdenied\b|authorization failed|no basic auth credentials/i;
const NOT_FOUND =
  /failed to resolve (?:reference|image)\b.*: not found$|\bmanifest unknown\b|\bname unknown\b|\b404 not found\b/i;

export function failureReason(facts: FailureFacts): FailureReason {
  const { code, runtimeCode, message = '' } = facts;
  if (code === 'DISK_HIGH_WATER' || code === 'DISK_UNKNOWN') return 'DiskMark';
  if (code === 'PULL_TIMEOUT') return 'Timeout';
  if (code === 'DIGEST_MISMATCH') return 'PullError';
  if (code === 'PULL_SECRET' || runtimeCode === 'PULL_SECRET') return 'Unauthorized';
  // Registries answer 429 on any request, a resolve included: before the not-found rule.
  if (RATE_LIMITED.test(message)) return 'RateLimited';
  if (UNAUTHORIZED.test(message)) return 'Unauthorized';
  if (NOT_FOUND.test(message.trim())) return 'NotFound';
  if (runtimeCode === 'NOT_FOUND' && /failed to resolve (?:reference|image)/.test(message)) return 'NotFound';
  return 'PullError';
}

/** The longest status message kept (the API server stores it in every NodePull update). */
const MAX_MESSAGE = 1024;

/**
 * One line for `status.images[].message`: newlines folded, user:password@ in URLs removed (the
 * runtime never puts credentials in its errors, but a URL from a config could), clipped.
 */
export function statusMessage(text: string): string {
  const line = text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1')
    .trim();
  return line.length > MAX_MESSAGE ? `${line.slice(0, MAX_MESSAGE - 3)}...` : line;
}
