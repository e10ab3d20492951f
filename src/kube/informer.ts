import { pino, type Logger } from 'pino';
import { Backoff, DEFAULT_BACKOFF, sleep as defaultSleep, type BackoffOptions } from './backoff.js';
import type { KubeClient } from './client.js';
import { KubeError, kubeErrorFromStatus, type KubeStatus } from './errors.js';
import { resourcePath } from './resource-path.js';
import { objectKey, type ChangeType, type KubeObject, type ResourceRef } from './types.js';

/** The part of KubeClient an informer uses (tests pass a fake). */
export type ListWatchClient = Pick<KubeClient, 'list' | 'watch'>;

export interface InformerOptions<T extends KubeObject = KubeObject> {
  labelSelector?: string;
  fieldSelector?: string;
  logger?: Logger;
  backoff?: BackoffOptions;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** For jitter; tests fix it. */
  random?: () => number;
  /**
   * Applied to every object before it is cached or handed to listeners (client-go's
   * SetTransform): keep only the fields the caller reads, so a cache of many objects stays small.
   * It must keep metadata.name, namespace and resourceVersion.
   */
  transform?: (obj: T) => T;
}

export type ChangeListener<T> = (type: ChangeType, obj: T, old?: T) => void;

/** A watch that ends this fast without one event is a failure (client-go: "very short watch"). */
const MIN_HEALTHY_WATCH_MS = 1000;
/** The server ends each watch after a random 5–10 minutes, as client-go asks, to spread reconnects. */
const WATCH_TIMEOUT_SECONDS = { min: 300, max: 600 };

/**
 * A list+watch cache of one resource (client-go's reflector and store, in small): lists, then
 * watches from the list's resourceVersion; follows bookmarks; reconnects from the last version
 * when the server ends a watch; lists again on 410 Gone and reports what changed meanwhile
 * (objects gone while disconnected as DELETED). Backs off with jitter on errors and resets after
 * a success. The loop never throws: it logs and retries until the signal aborts.
 */
export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  private readonly listeners: ChangeListener<T>[] = [];
  private readonly path: string;
  private readonly log: Logger;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly backoff: Backoff;
  private resourceVersion = '';
  /** Events since the last list: a 410 right after a list is not cured by listing at once again. */
  private eventsSinceList = 0;
  private started = false;
  private hasSynced = false;
  private readonly syncedPromise: Promise<void>;
  private settleSynced!: (err?: unknown) => void;

  constructor(
    private readonly client: ListWatchClient,
    private readonly ref: ResourceRef,
    private readonly opts: InformerOptions<T> = {},
  ) {
    this.path = resourcePath(ref);
    this.log = (opts.logger ?? pino({ enabled: false })).child({ module: 'kube-informer', path: this.path });
    this.sleep = opts.sleep ?? defaultSleep;
    this.random = opts.random ?? Math.random;
    this.backoff = new Backoff(opts.backoff ?? DEFAULT_BACKOFF, this.random);
    this.syncedPromise = new Promise<void>((resolve, reject) => {
      this.settleSynced = (err?: unknown) => (err === undefined ? resolve() : reject(err));
    });
    // A caller that never awaits synced() must not see an unhandled rejection on abort.
    this.syncedPromise.catch(() => {});
  }

  /** Starts the list+watch loop in the background; it runs until `signal` aborts. */
  start(signal: AbortSignal): void {
    if (this.started) throw new Error(`informer for ${this.path} already started`);
    this.started = true;
    this.run(signal).catch((err: unknown) => this.log.error({ err }, 'informer loop failed'));
  }

  /** Resolves after the first successful list; rejects if the signal aborts before that. */
  synced(): Promise<void> {
    return this.syncedPromise;
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** By "namespace/name", or "name" for cluster-scoped objects. */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  on(event: 'change', cb: ChangeListener<T>): void {
    if (event !== 'change') throw new TypeError(`unknown informer event '${String(event)}'`);
    this.listeners.push(cb);
  }

  /** The resourceVersion the next watch starts from. */
  lastResourceVersion(): string {
    return this.resourceVersion;
  }

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = this.backoff;
    let needList = true;
    while (!signal.aborted) {
      let phase = needList ? 'list' : 'watch';
      try {
        if (needList) {
          await this.relist(signal);
          needList = false;
          this.eventsSinceList = 0;
          backoff.reset();
          phase = 'watch';
        }
        const started = performance.now();
        const events = await this.watchOnce(signal);
        if (signal.aborted) break;
        if (events === 0 && performance.now() - started < MIN_HEALTHY_WATCH_MS) {
          throw new Error('the server ended the watch at once with no event');
        }
        backoff.reset();
        this.log.debug({ resourceVersion: this.resourceVersion, events }, 'watch ended; reconnecting');
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeError && err.status === 410) {
          needList = true;
          this.log.info(
            { resourceVersion: this.resourceVersion },
            'resourceVersion too old (410 Gone): listing again',
          );
          if (this.eventsSinceList > 0) continue;
        } else {
          this.log.error({ err, phase }, `${phase} failed; retrying`);
        }
        await this.sleep(backoff.next(), signal);
      }
    }
    if (!this.hasSynced) this.settleSynced(signal.reason ?? new Error('aborted'));
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.client.list<T>(this.ref, {
      ...(this.opts.labelSelector === undefined ? {} : { labelSelector: this.opts.labelSelector }),
      ...(this.opts.fieldSelector === undefined ? {} : { fieldSelector: this.opts.fieldSelector }),
      signal,
    });
    if (signal.aborted) return;
    const changes: Array<[ChangeType, T, T | undefined]> = [];
    const seen = new Set<string>();
    for (const listed of items) {
      const item = this.opts.transform ? this.opts.transform(listed) : listed;
      const key = objectKey(item);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, item);
      if (old === undefined) changes.push(['ADDED', item, undefined]);
      else if (old.metadata.resourceVersion !== item.metadata.resourceVersion)
        changes.push(['MODIFIED', item, old]);
    }
    for (const [key, old] of this.store) {
      if (seen.has(key)) continue;
      this.store.delete(key);
      changes.push(['DELETED', old, old]);
    }
    this.resourceVersion = resourceVersion;
    this.log.debug({ resourceVersion, items: items.length, changes: changes.length }, 'listed');
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.settleSynced();
    }
    // The store is whole before anyone hears of a change, so listeners may read it.
    for (const [type, obj, old] of changes) this.emit(type, obj, old);
  }

  /** One watch from the last resourceVersion; resolves with how many events it delivered. */
  private async watchOnce(signal: AbortSignal): Promise<number> {
    const span = WATCH_TIMEOUT_SECONDS.max - WATCH_TIMEOUT_SECONDS.min;
    const timeoutSeconds = WATCH_TIMEOUT_SECONDS.min + Math.floor(this.random() * span);
    let events = 0;
    for await (const ev of this.client.watch<T>(this.ref, {
      resourceVersion: this.resourceVersion,
      ...(this.opts.labelSelector === undefined ? {} : { labelSelector: this.opts.labelSelector }),
      ...(this.opts.fieldSelector === undefined ? {} : { fieldSelector: this.opts.fieldSelector }),
      signal,
      timeoutSeconds,
    })) {
      if (signal.aborted) break;
      events++;
      this.eventsSinceList++;
      this.backoff.reset(); // the connection works: a later failure starts the backoff over
      if (ev.type === 'ERROR') throw kubeErrorFromStatus(ev.object as KubeStatus, 500, `WATCH ${this.path}`);
      const rv = ev.object.metadata?.resourceVersion;
      if (ev.type === 'BOOKMARK') {
        if (rv) this.resourceVersion = rv;
        continue;
      }
      const object = this.opts.transform ? this.opts.transform(ev.object) : ev.object;
      const key = objectKey(object);
      const old = this.store.get(key);
      if (ev.type === 'DELETED') {
        this.store.delete(key);
        if (rv) this.resourceVersion = rv;
        if (old !== undefined) this.emit('DELETED', object, old);
        continue;
      }
      // ADDED or MODIFIED: what it is to us depends on the cache, as in client-go's informer.
      this.store.set(key, object);
      if (rv) this.resourceVersion = rv;
      if (old === undefined) this.emit('ADDED', object, undefined);
      else if (old.metadata.resourceVersion !== rv) this.emit('MODIFIED', object, old);
    }
    return events;
  }

  private emit(type: ChangeType, obj: T, old: T | undefined): void {
    for (const cb of this.listeners) {
      try {
        cb(type, obj, old);
      } catch (err) {
        this.log.error({ err, type, key: objectKey(obj) }, 'change listener threw');
      }
    }
  }
}
