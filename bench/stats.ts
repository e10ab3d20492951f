// Small helpers shared by the scenarios: medians, upstream access-log queries, polling.
import type { AccessLogEntry, RegistryPeer } from '../test/helpers/registry.js';

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? NaN;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? NaN) + hi) / 2;
}

/** The upstream's access-log entries for one blob (any repository, any method). */
export function upstreamRequests(upstream: RegistryPeer, digest: string): AccessLogEntry[] {
  return upstream.accessLog().filter((e) => e.path.endsWith(`/blobs/${digest}`));
}

const POLL_INTERVAL_MS = 100;

/**
 * Polls until `probe` is true. What is awaited here happens in other processes (a registry's
 * background store, an access-log line written after the response), so there is no event to await.
 */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** Waits until `count()` has not changed for `quietMs`. */
export async function waitForQuiet(count: () => number, quietMs: number, timeoutMs: number): Promise<void> {
  let last = count();
  let since = Date.now();
  await waitFor(
    'upstream requests to stop',
    () => {
      const now = count();
      if (now !== last) {
        last = now;
        since = Date.now();
      }
      return Promise.resolve(Date.now() - since >= quietMs);
    },
    timeoutMs,
  );
}
