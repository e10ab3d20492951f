import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import {
  classifyPullMessage,
  readKubeletEvent,
  type FailureCause,
  type KubeletEvent,
} from '../analyze/index.js';
import { Informer, type InformerOptions, type KubeObject, type ListWatchClient } from '../kube/index.js';
import { PullMetrics, type Via } from './metrics.js';
import {
  newest,
  Ring,
  slowest,
  summarise,
  type PullRecord,
  type PullSummary,
  type PullTelemetrySource,
} from './records.js';
import {
  imageRegistry,
  MIRRORED_REGISTRIES_ANNOTATION,
  parseMirroredRegistries,
  registryLabel,
  viaFor,
} from './via.js';

/**
 * Live pull telemetry (README "Pull telemetry"): watches the kubelet's pull events cluster-wide,
 * parses them with the `hoist analyze events` parser (src/analyze/kubelet-events.ts), counts them
 * into Prometheus metrics with bounded labels, and keeps the latest pulls in a ring buffer for the
 * dashboards.
 *
 * Counting: the API server folds repeats of an event into one object whose `count` grows, so an
 * event counts by how much its count grew since it was last seen (the informer's cache holds the
 * previous object); a re-list after 410 Gone shows the same objects again and adds nothing. The
 * events of the first list are history from before this replica started (or led): they seed the
 * records but not the metrics, so that a restart or a new leader does not count them twice.
 *
 * Memory: three watches with field selectors (Pods, kubelet, one reason each) and a transform that
 * keeps a few fields per event; the API server expires events after --event-ttl (1 h), so the
 * cache holds at most an hour of pull events. Nodes are cached as name and annotation only.
 */

/** The reasons the kubelet gives its pull events (pkg/kubelet/events/event.go). */
export const PULL_EVENT_REASONS = ['Pulled', 'Failed', 'BackOff'] as const;

export const TELEMETRY_DEFAULTS = {
  /** Pull records kept for recent(), slowest() and summary(). */
  maxRecords: 1000,
  /** Pod containers whose latest failure cause is kept, to give cause-less back-offs one. */
  maxTrackedContainers: 10_000,
} as const;

export interface PullTelemetryOptions {
  client: ListWatchClient;
  /** Where the metrics register (the controller's registry). */
  registry: Registry;
  logger: Logger;
  /** Registry hosts that get their own `registry` label value; others are "other". */
  registries: Iterable<string>;
  /** Decides via for a pull on `node` from `registry`; default: the Node annotation rule. */
  via?: (node: string, registry: string | undefined) => Via;
  now?: () => Date;
  maxRecords?: number;
  maxTrackedContainers?: number;
  /** Informer backoff and sleep, for tests. */
  informer?: Pick<InformerOptions, 'backoff' | 'sleep' | 'random'>;
}

interface SlimEvent extends KubeObject {
  reason?: string;
  message?: string;
  count?: number;
  series?: { count?: number; lastObservedTime?: string };
  source?: { component?: string; host?: string };
  involvedObject?: { kind?: string; namespace?: string; name?: string; fieldPath?: string };
  lastTimestamp?: string;
  eventTime?: string;
  reportingInstance?: string;
}

/** The fields the parser reads, and the identity the cache needs; the rest is dropped. */
export function slimEvent(e: SlimEvent): SlimEvent {
  const { name, namespace, uid, resourceVersion, creationTimestamp } = e.metadata;
  const io = e.involvedObject;
  return {
    metadata: {
      name,
      ...(namespace !== undefined ? { namespace } : {}),
      ...(uid !== undefined ? { uid } : {}),
      ...(resourceVersion !== undefined ? { resourceVersion } : {}),
      ...(creationTimestamp !== undefined ? { creationTimestamp } : {}),
    },
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
    ...(e.message !== undefined ? { message: e.message } : {}),
    ...(e.count !== undefined ? { count: e.count } : {}),
    ...(e.series ? { series: e.series } : {}),
    ...(e.source ? { source: { ...e.source } } : {}),
    ...(io
      ? {
          involvedObject: {
            ...(io.kind !== undefined ? { kind: io.kind } : {}),
            ...(io.namespace !== undefined ? { namespace: io.namespace } : {}),
            ...(io.name !== undefined ? { name: io.name } : {}),
            ...(io.fieldPath !== undefined ? { fieldPath: io.fieldPath } : {}),
          },
        }
      : {}),
    ...(e.lastTimestamp ? { lastTimestamp: e.lastTimestamp } : {}),
    ...(e.eventTime ? { eventTime: e.eventTime } : {}),
    ...(e.reportingInstance ? { reportingInstance: e.reportingInstance } : {}),
  };
}

/** A Node as telemetry keeps it: its name and the mirrored-registries annotation. */
function slimNode(n: KubeObject): KubeObject {
  const value = n.metadata.annotations?.[MIRRORED_REGISTRIES_ANNOTATION];
  return {
    metadata: {
      name: n.metadata.name,
      ...(n.metadata.resourceVersion !== undefined ? { resourceVersion: n.metadata.resourceVersion } : {}),
      ...(value !== undefined ? { annotations: { [MIRRORED_REGISTRIES_ANNOTATION]: value } } : {}),
    },
  };
}

export class PullTelemetry implements PullTelemetrySource {
  readonly metrics: PullMetrics;
  private readonly log: Logger;
  private readonly records: Ring<PullRecord>;
  private readonly listeners = new Set<(r: PullRecord) => void>();
  private readonly knownRegistries: Set<string>;
  /** Latest failure cause per pod container, for back-offs that do not say it (LRU). */
  private readonly lastCause = new Map<string, FailureCause>();
  private readonly maxTracked: number;
  private readonly now: () => Date;
  private nodes: Informer<KubeObject> | undefined;
  private informers: Informer<SlimEvent>[] = [];

  constructor(private readonly opts: PullTelemetryOptions) {
    this.log = opts.logger.child({ module: 'pull-telemetry' });
    this.metrics = new PullMetrics(opts.registry);
    this.records = new Ring(opts.maxRecords ?? TELEMETRY_DEFAULTS.maxRecords);
    this.maxTracked = opts.maxTrackedContainers ?? TELEMETRY_DEFAULTS.maxTrackedContainers;
    this.knownRegistries = new Set([...opts.registries].map((r) => r.toLowerCase()));
    this.now = opts.now ?? (() => new Date());
  }

  /**
   * Watches until `signal` aborts; may be called again after that (a replica that leads again).
   * Resolves once every watch has listed.
   */
  async start(signal: AbortSignal): Promise<void> {
    const { client } = this.opts;
    const base = { ...this.opts.informer, logger: this.log };
    this.records.clear();
    this.lastCause.clear();
    this.nodes = this.opts.via
      ? undefined
      : new Informer<KubeObject>(
          client,
          { group: '', version: 'v1', plural: 'nodes' },
          {
            ...base,
            transform: slimNode,
          },
        );
    this.informers = PULL_EVENT_REASONS.map(
      (reason) =>
        new Informer<SlimEvent>(
          client,
          { group: '', version: 'v1', plural: 'events' },
          {
            ...base,
            fieldSelector: `involvedObject.kind=Pod,source=kubelet,reason=${reason}`,
            transform: slimEvent,
          },
        ),
    );
    this.nodes?.on('change', (type, node, old) => {
      const now = node.metadata.annotations?.[MIRRORED_REGISTRIES_ANNOTATION];
      const before = old?.metadata.annotations?.[MIRRORED_REGISTRIES_ANNOTATION];
      if (type !== 'DELETED' && now !== before)
        this.log.debug({ node: node.metadata.name, registries: now ?? '' }, 'node mirrored registries');
    });
    this.nodes?.start(signal);
    // Nodes first: the first list of events already needs to know which pulls went through Hoist.
    await this.nodes?.synced();
    const synced: Promise<void>[] = [];
    for (const informer of this.informers) {
      let live = false;
      informer.on('change', (type, obj, old) => {
        if (type === 'DELETED') return;
        const grew =
          old === undefined || old.metadata.uid !== obj.metadata.uid
            ? countOf(obj)
            : countOf(obj) - countOf(old);
        if (grew > 0) this.observe(obj, grew, live);
      });
      informer.start(signal);
      // The first list's changes are emitted in the same tick as synced() settles, before this
      // callback runs: everything after them is live.
      synced.push(
        informer.synced().then(() => {
          live = true;
        }),
      );
    }
    await Promise.all(synced);
    this.log.info({ records: this.records.size }, 'pull telemetry watching kubelet events');
  }

  recent(limit: number): PullRecord[] {
    return newest(this.records.toArray(), limit);
  }

  slowest(limit: number): PullRecord[] {
    return slowest(this.records.toArray(), limit);
  }

  summary(): PullSummary[] {
    return summarise(this.records.toArray());
  }

  onRecord(cb: (r: PullRecord) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** How many records the ring holds (at most maxRecords). */
  get recordCount(): number {
    return this.records.size;
  }

  private viaOf(node: string, registry: string | undefined): Via {
    if (this.opts.via) return this.opts.via(node, registry);
    const annotation = this.nodes?.get(node)?.metadata.annotations?.[MIRRORED_REGISTRIES_ANNOTATION];
    return viaFor(parseMirroredRegistries(annotation), registry);
  }

  private rememberCause(container: string, cause: FailureCause): void {
    this.lastCause.delete(container);
    this.lastCause.set(container, cause);
    if (this.lastCause.size > this.maxTracked) {
      const oldest = this.lastCause.keys().next().value;
      if (oldest !== undefined) this.lastCause.delete(oldest);
    }
  }

  /** One event that grew by `grew`; counted into the metrics only when `live`. */
  private observe(obj: SlimEvent, grew: number, live: boolean): void {
    const e: KubeletEvent | undefined = readKubeletEvent(obj);
    if (!e) return;
    const c = classifyPullMessage(e.reason, e.message);
    if (!c || (c.kind !== 'pulled' && c.kind !== 'failed' && c.kind !== 'backoff')) return;
    const registry = imageRegistry(c.image);
    const via = this.viaOf(e.node, registry);
    const m = this.metrics;
    if (c.kind === 'backoff') {
      const cause = c.cause ?? this.lastCause.get(e.objectKey) ?? 'other';
      if (c.cause) this.rememberCause(e.objectKey, c.cause);
      if (live) {
        m.backOffs.inc({ via, cause }, grew);
        m.events.inc({ reason: e.reason }, grew);
      }
      return;
    }
    if (c.kind === 'failed') this.rememberCause(e.objectKey, c.cause);
    if (live) {
      m.events.inc({ reason: e.reason }, grew);
      if (c.kind === 'pulled') {
        m.pulls.inc({ via, outcome: 'pulled' }, grew);
        const labels = { via, registry: registryLabel(this.knownRegistries, registry) };
        for (let i = 0; i < grew; i++) m.duration.observe(labels, c.seconds);
        if (c.bytes !== null) m.bytes.inc({ via }, c.bytes * grew);
      } else {
        m.pulls.inc({ via, outcome: 'failed' }, grew);
        m.failures.inc({ via, cause: c.cause }, grew);
      }
    }
    const [namespace = '', pod = ''] = e.objectKey.split('/');
    const record: PullRecord = {
      namespace,
      pod,
      node: e.node,
      image: c.image,
      registry: registry ?? '',
      via,
      outcome: c.kind === 'pulled' ? 'pulled' : 'failed',
      ...(c.kind === 'failed' ? { cause: c.cause } : {}),
      ...(c.kind === 'pulled' ? { seconds: c.seconds } : {}),
      ...(c.kind === 'pulled' && c.bytes !== null ? { bytes: c.bytes } : {}),
      at: e.time ?? this.now().toISOString(),
    };
    this.records.push(record);
    for (const cb of this.listeners) {
      try {
        cb(record);
      } catch (err) {
        this.log.error({ err }, 'pull record listener threw');
      }
    }
  }
}

function countOf(e: SlimEvent): number {
  return Math.max(1, e.series?.count ?? e.count ?? 1);
}
