import { pino, type Logger } from 'pino';
import { parseMirrorMetrics } from './mirror-metrics.js';
import type { CacheSource, NodeCache } from './sources.js';

/**
 * Per-node cache figures for the dashboard, read from each node's mirror /metrics every
 * `intervalMs` with a short timeout and at most `concurrency` reads at once, so a large or
 * partly unreachable cluster costs bounded time and sockets. A read that fails keeps the node's
 * last figures and says why. Targets come from a function (EndpointSlices of the mirror Service:
 * targetsFromEndpointSlices), read again each round.
 */

export interface ScrapeTarget {
  node: string;
  /** http://HOST:PORT of the mirror; /metrics is appended. */
  url: string;
}

export interface MirrorScraperOptions {
  targets: () => ScrapeTarget[];
  intervalMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  /** Largest /metrics body read (bytes); a mirror's is a few kB. */
  maxBodyBytes?: number;
  logger?: Logger;
}

export const SCRAPE_DEFAULTS = {
  intervalMs: 15_000,
  timeoutMs: 3_000,
  concurrency: 8,
  maxBodyBytes: 1 << 20,
};

/** discovery.k8s.io/v1 EndpointSlice, the fields read here. */
export interface EndpointSlice {
  metadata: { name: string; namespace?: string };
  addressType?: string;
  endpoints?: Array<{ addresses: string[]; nodeName?: string; conditions?: { ready?: boolean } }>;
  ports?: Array<{ name?: string; port?: number }>;
}

/** Ready endpoints with a node name, one target per node (the first address). */
export function targetsFromEndpointSlices(
  slices: readonly EndpointSlice[],
  portName = 'http',
): ScrapeTarget[] {
  const byNode = new Map<string, ScrapeTarget>();
  for (const slice of slices) {
    if (slice.addressType !== 'IPv4' && slice.addressType !== 'IPv6') continue;
    const port = slice.ports?.find((p) => (p.name ?? '') === portName)?.port;
    if (port === undefined) continue;
    for (const e of slice.endpoints ?? []) {
      // EndpointSlice API: a nil `ready` means ready.
      if (e.conditions?.ready === false || !e.nodeName || e.addresses.length === 0) continue;
      const host = slice.addressType === 'IPv6' ? `[${e.addresses[0]}]` : e.addresses[0];
      if (!byNode.has(e.nodeName))
        byNode.set(e.nodeName, { node: e.nodeName, url: `http://${host}:${port}` });
    }
  }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

export class MirrorScraper implements CacheSource {
  private readonly last = new Map<string, NodeCache>();
  private readonly listeners = new Set<() => void>();
  private readonly opts: Required<Omit<MirrorScraperOptions, 'logger'>>;
  private readonly log: Logger;

  constructor(options: MirrorScraperOptions) {
    this.opts = { ...SCRAPE_DEFAULTS, ...options };
    this.log = (options.logger ?? pino({ enabled: false })).child({ module: 'mirror-scraper' });
  }

  nodes(): NodeCache[] {
    return [...this.last.values()];
  }

  onChange(cb: () => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** Scrapes every `intervalMs` until `signal` aborts. */
  start(signal: AbortSignal): void {
    const loop = async () => {
      while (!signal.aborted) {
        await this.scrapeOnce(signal);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.opts.intervalMs);
          signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
        });
      }
    };
    loop().catch((err: unknown) => this.log.error({ err }, 'scrape loop failed'));
  }

  /** One round over the current targets; nodes no longer targeted are forgotten. */
  async scrapeOnce(signal?: AbortSignal): Promise<void> {
    const targets = this.opts.targets();
    const wanted = new Set(targets.map((t) => t.node));
    for (const node of this.last.keys()) if (!wanted.has(node)) this.last.delete(node);
    let next = 0;
    const worker = async () => {
      while (next < targets.length && !signal?.aborted) {
        const t = targets[next++]!;
        this.last.set(t.node, await this.scrape(t));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, targets.length) }, worker));
    for (const cb of this.listeners) cb();
  }

  private async scrape(t: ScrapeTarget): Promise<NodeCache> {
    const scrapedAt = new Date().toISOString();
    try {
      const res = await fetch(`${t.url}/metrics`, {
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        redirect: 'error',
      });
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      const body = await res.text();
      if (body.length > this.opts.maxBodyBytes)
        throw new Error(`/metrics larger than ${this.opts.maxBodyBytes} bytes`);
      return { node: t.node, scrapedAt, ...parseMirrorMetrics(body) };
    } catch (err) {
      const message =
        err instanceof Error ? (err.name === 'TimeoutError' ? 'timed out' : err.message) : String(err);
      this.log.debug({ node: t.node, url: t.url, err }, 'mirror scrape failed');
      const prev = this.last.get(t.node);
      const zero = { storeBytes: 0, blobHits: 0, blobLookups: 0, servedBytes: 0, upstreamBytes: 0 };
      return { ...zero, ...prev, node: t.node, scrapedAt: prev?.scrapedAt ?? scrapedAt, error: message };
    }
  }
}
