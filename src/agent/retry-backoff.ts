/**
 * The wait before retry number `attempt` (1 after the first failure): `backoffSeconds`, doubled
 * for each further failure and capped at 10 minutes, as the PrePull `retry.backoffSeconds`
 * contract says (docs/prepull.md). Pure.
 */
export const MAX_RETRY_BACKOFF_SECONDS = 600;

export function retryDelayMs(backoffSeconds: number, attempt: number): number {
  const base = Math.max(0, backoffSeconds);
  const seconds = Math.min(base * 2 ** Math.max(0, attempt - 1), MAX_RETRY_BACKOFF_SECONDS);
  return Math.round(seconds * 1000);
}
