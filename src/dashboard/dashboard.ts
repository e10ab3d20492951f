import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import { Informer, type KubeObject, type ListWatchClient } from '../kube/index.js';
import {
  GROUP,
  NODEPULL_PLURAL,
  PREPULL_PLURAL,
  VERSION,
  type NodePull,
  type PrePull,
} from '../prepull/index.js';
import { EventHub, EVENT_DEFAULTS, type EventHubOptions } from './events.js';
import { mergeNodeCaches, nodeCachesFromNodePulls } from './node-cache.js';
import { renderPage } from './page.js';
import type { CacheSource, PullTelemetrySource } from './sources.js';
import { buildState, STATE_LIMITS, type DashboardState } from './state.js';

/**
 * The controller's read-only web dashboard (issue #14): GET / (the page), GET /api/v1/state (a
 * JSON snapshot, `?node=` filters the matrix's rows), GET /api/v1/events (SSE, same filter).
 *
 * It keeps its own PrePull and NodePull informers rather than borrowing the controller's: those
 * exist only on the leader, while every replica sits behind the chart's Service and must answer a
 * browser (a standby would otherwise show nothing). The cost is one more watch of each resource
 * per replica, with RBAC the controller already has (list/watch on both).
 */

export interface DashboardOptions {
  client: ListWatchClient;
  identity: string;
  isLeader: () => boolean;
  logger?: Logger;
  telemetry?: PullTelemetrySource;
  cache?: CacheSource;
  events?: Partial<EventHubOptions>;
  limits?: { maxNodes?: number; maxImages?: number };
}

type Obj<T> = T & KubeObject;

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export class Dashboard {
  private readonly prePulls: Informer<Obj<PrePull>>;
  private readonly nodePulls: Informer<Obj<NodePull>>;
  private readonly hub: EventHub;
  private readonly log: Logger;
  private synced = false;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(private readonly opts: DashboardOptions) {
    this.log = (opts.logger ?? pino({ enabled: false })).child({ module: 'dashboard' });
    const ref = (plural: string) => ({ group: GROUP, version: VERSION, plural });
    this.prePulls = new Informer(opts.client, ref(PREPULL_PLURAL), { logger: this.log });
    this.nodePulls = new Informer(opts.client, ref(NODEPULL_PLURAL), { logger: this.log });
    this.hub = new EventHub({ ...EVENT_DEFAULTS, ...opts.events });
  }

  /** Starts the informers; streams end and sources are let go when `signal` aborts. */
  start(signal: AbortSignal): void {
    const poke = () => this.hub.poke();
    this.prePulls.on('change', poke);
    this.nodePulls.on('change', poke);
    this.prePulls.start(signal);
    this.nodePulls.start(signal);
    Promise.all([this.prePulls.synced(), this.nodePulls.synced()])
      .then(() => {
        this.synced = true;
        poke();
      })
      .catch(() => {}); // aborted before the first list
    if (this.opts.telemetry) this.unsubscribe.push(this.opts.telemetry.onRecord(poke));
    if (this.opts.cache) this.unsubscribe.push(this.opts.cache.onChange(poke));
    signal.addEventListener('abort', () => this.close(), { once: true });
  }

  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.hub.close();
  }

  get streams(): number {
    return this.hub.size;
  }

  state(nodeFilter = ''): DashboardState {
    const { telemetry, cache } = this.opts;
    const nodePulls = this.nodePulls.list();
    // The agents' figures (NodePull status.mirror) fill in for mirrors the controller cannot read.
    const nodeCaches = mergeNodeCaches(cache?.nodes() ?? [], nodeCachesFromNodePulls(nodePulls));
    return buildState({
      prePulls: this.prePulls.list(),
      nodePulls,
      identity: this.opts.identity,
      leader: this.opts.isLeader(),
      synced: this.synced,
      now: new Date(),
      nodeFilter,
      cache: nodeCaches,
      ...(telemetry
        ? { slowest: telemetry.slowest(STATE_LIMITS.slowest), summary: telemetry.summary() }
        : {}),
      ...(this.opts.limits ? { limits: this.opts.limits } : {}),
    });
  }

  /** Serves the request if its path is the dashboard's; false otherwise. Callers allow only GET/HEAD. */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const filter = (url.searchParams.get('node') ?? '').slice(0, STATE_LIMITS.maxFilterLength);
    switch (url.pathname) {
      case '/':
      case '/index.html': {
        const { html, csp } = renderPage(this.state());
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'content-security-policy': csp,
          'content-length': Buffer.byteLength(html),
        });
        res.end(html);
        return true;
      }
      case '/api/v1/state': {
        const body = JSON.stringify(this.state(filter));
        res.writeHead(200, {
          ...SECURITY_HEADERS,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
        return true;
      }
      case '/api/v1/events':
        if (req.method === 'HEAD') {
          // The headers a stream would get, and no stream to hold open.
          res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8' });
          res.end();
          return true;
        }
        this.hub.open(req, res, () => {
          const state = this.state(filter);
          const json = JSON.stringify(state);
          // What changed, not when it was drawn: the timestamp alone is no reason to send.
          return { json, key: JSON.stringify({ ...state, generatedAt: '' }) };
        });
        return true;
      default:
        return false;
    }
  }
}
