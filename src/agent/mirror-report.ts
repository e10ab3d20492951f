import { request } from 'node:http';
import type { Logger } from 'pino';
import type { NodePullMirrorStatus } from '../prepull/index.js';
import { isMirrorMetrics, parseMirrorCacheFigures, type MirrorCacheFigures } from '../node/index.js';
import { unrefTimers, type Timers } from './timers.js';

/**
 * The node mirror's cache figures for the NodePull status (docs/prepull.md, "status.mirror"): the
 * agent reads its own mirror's /metrics every `intervalMs` and hands the figures on only when they
 * changed, so a quiet mirror costs no API writes and a busy one at most one per interval. The
 * controller's dashboard shows them where it cannot read the mirror itself (a node mirror on
 * 127.0.0.1, the chart's default). A mirror that is absent or failing never harms the agent: its
 * figures stay as last reported (never read: none), and the agent logs it once per outage.
 */

/** Where the mirror is: http://HOST:PORT, or unix:///PATH for its metrics socket. */
export type MirrorMetricsTarget = { url: string } | { socketPath: string };

export const MIRROR_REPORT_DEFAULTS = {
  /** Between reads of the mirror's /metrics; also the shortest time between two status changes. */
  intervalMs: 30_000,
  timeoutMs: 5_000,
  /** A mirror's metrics page is a few kB; a bound on what a wrong target can make us hold. */
  maxBodyBytes: 1 << 20,
};

/** `--mirror-metrics`: http://HOST:PORT or unix:///PATH; undefined for none. */
export function parseMirrorMetricsTarget(value: string): MirrorMetricsTarget | undefined {
  const v = value.trim();
  if (v === '' || v === 'none') return undefined;
  if (v.startsWith('unix://')) {
    const socketPath = v.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw new Error(`"${value}" must name an absolute path: unix:///PATH`);
    return { socketPath };
  }
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new Error(`"${value}" is not a URL: http://HOST:PORT or unix:///PATH`);
  }
  if (url.protocol !== 'http:' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
    throw new Error(`"${value}" must be http://HOST:PORT (no path) or unix:///PATH`);
  }
  return { url: url.origin };
}

/** GET /metrics of the mirror; rejects on any failure, with a message that says what failed. */
export function readMirrorMetrics(
  target: MirrorMetricsTarget,
  opts: { timeoutMs: number; maxBodyBytes: number },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req =
      'socketPath' in target
        ? request({ socketPath: target.socketPath, path: '/metrics', timeout: opts.timeoutMs })
        : request(`${target.url}/metrics`, { timeout: opts.timeoutMs });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`/metrics answered ${res.statusCode}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > opts.maxBodyBytes) {
          reject(new Error(`/metrics larger than ${opts.maxBodyBytes} bytes`));
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.on('error', () => reject(new Error('/metrics: the connection broke mid-body')));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.end();
  });
}

/** Pure: true when the figures differ (observedAt aside). */
export function figuresChanged(a: MirrorCacheFigures | undefined, b: MirrorCacheFigures): boolean {
  if (!a) return true;
  return (
    a.storeBytes !== b.storeBytes ||
    a.blobHits !== b.blobHits ||
    a.blobLookups !== b.blobLookups ||
    a.servedBytes !== b.servedBytes ||
    a.upstreamBytes !== b.upstreamBytes ||
    a.peerBytes !== b.peerBytes
  );
}

/** Pure: the status field from a reading; counters as the CRD takes them (whole, not negative). */
export function mirrorStatusOf(figures: MirrorCacheFigures, at: Date): NodePullMirrorStatus {
  const whole = (n: number) => (Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);
  const blobLookups = whole(figures.blobLookups);
  return {
    storeBytes: whole(figures.storeBytes),
    blobHits: Math.min(whole(figures.blobHits), blobLookups),
    blobLookups,
    servedBytes: whole(figures.servedBytes),
    upstreamBytes: whole(figures.upstreamBytes),
    ...(figures.peerBytes !== undefined ? { peerBytes: whole(figures.peerBytes) } : {}),
    observedAt: at.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}

export interface MirrorReporterOptions {
  /** Reads the mirror's /metrics text; rejects when it cannot. */
  read: () => Promise<string>;
  /** Called with changed figures only. */
  onFigures: (status: NodePullMirrorStatus) => void;
  intervalMs?: number;
  logger?: Logger;
  timers?: Timers;
  wallClock?: () => Date;
}

export class MirrorReporter {
  private readonly opts: MirrorReporterOptions;
  private readonly timers: Timers;
  private last: MirrorCacheFigures | undefined;
  private failing = false;
  private timer: unknown;
  private stopped = false;

  constructor(opts: MirrorReporterOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? unrefTimers;
  }

  /** Reads now, then every interval until stop(). */
  start(): void {
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    await this.readOnce();
    if (this.stopped) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.loop();
    }, this.opts.intervalMs ?? MIRROR_REPORT_DEFAULTS.intervalMs);
  }

  /** One reading; never rejects. */
  async readOnce(): Promise<void> {
    const { logger } = this.opts;
    let figures: MirrorCacheFigures;
    try {
      const text = await this.opts.read();
      if (!isMirrorMetrics(text)) throw new Error('its /metrics has no hoist_mirror_store_bytes');
      figures = parseMirrorCacheFigures(text);
    } catch (err) {
      if (!this.failing)
        logger?.warn(
          { err: (err as Error).message },
          "cannot read the node mirror's /metrics: NodePull status keeps the figures it last had (none if never read); retrying quietly",
        );
      this.failing = true;
      return;
    }
    if (this.failing) logger?.info('reading the node mirror /metrics again');
    this.failing = false;
    if (!figuresChanged(this.last, figures)) return;
    this.last = figures;
    this.opts.onFigures(mirrorStatusOf(figures, (this.opts.wallClock ?? (() => new Date()))()));
  }
}
