import { sendRequest } from '../registry-client/index.js';

/** Far more than a mirror's metrics page; a bound on what a wrong URL can make us read. */
const METRICS_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Reads a Hoist mirror's own counters from its /metrics (Prometheus text format), so a pull can
 * report whether the mirror served it: the counters move only when the mirror sent blob bytes.
 */
export interface MirrorCounters {
  /** hoist_mirror_served_bytes_total summed over sources. */
  servedBytes: number;
  /** hoist_mirror_requests_total with a 2xx status. */
  okRequests: number;
}

/** Pure: sums the samples Hoist's mirror exports (README, "Metrics"). */
export function parseMirrorCounters(text: string): MirrorCounters {
  let servedBytes = 0;
  let okRequests = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    if (m[1] === 'hoist_mirror_served_bytes_total') servedBytes += value;
    else if (m[1] === 'hoist_mirror_requests_total' && /status="2\d\d"/.test(m[2] ?? '')) okRequests += value;
  }
  return { servedBytes, okRequests };
}

/** undefined when the mirror cannot be reached or is not a Hoist mirror. */
export async function readMirrorCounters(
  mirrorUrl: string,
  signal?: AbortSignal,
): Promise<MirrorCounters | undefined> {
  try {
    // Not the global fetch: it refuses a mirror on a port the fetch standard blocks (6000, ...).
    const res = await sendRequest(
      `${mirrorUrl}/metrics`,
      { method: 'GET', headers: {} },
      { name: mirrorUrl, headersTimeoutMs: 5_000, signal: signal ?? AbortSignal.timeout(5_000) },
    );
    if (res.status < 200 || res.status > 299) {
      await res.discard();
      return undefined;
    }
    const text = await res.text(METRICS_MAX_BYTES);
    if (!text.includes('hoist_mirror_')) return undefined;
    return parseMirrorCounters(text);
  } catch {
    return undefined;
  }
}
