import { KubeError } from '../kube/index.js';

/**
 * Errors for log lines: a stable code, the HTTP status for API answers, and the message; never a
 * request or response body, which may hold a Secret's data.
 */
export function describeError(err: unknown): { code?: string; status?: number; message: string } {
  if (err instanceof KubeError) return { code: err.code, status: err.status, message: err.message };
  const e = err as { code?: string; message?: string };
  return { ...(typeof e?.code === 'string' ? { code: e.code } : {}), message: e?.message ?? String(err) };
}

/** What a step of a reconcile did: API writes made, and failures (the pass is then retried). */
export interface Tally {
  writes: number;
  errors: number;
}
