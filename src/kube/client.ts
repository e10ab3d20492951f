import type http from 'node:http';
import {
  KubeConnectionError,
  KubeError,
  kubeErrorFromResponse,
  kubeErrorFromStatus,
  type KubeStatus,
} from './errors.js';
import { createAgent, exchange, readText, type Exchange } from './http-exchange.js';
import { resourcePath, withQuery } from './resource-path.js';
import { TokenSource } from './token-source.js';
import type { KubeConfig, KubeObject, ResourceRef, WatchEvent } from './types.js';
import { LineSplitter, parseWatchLine } from './watch-lines.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
  accept?: string;
}

/** Options every write takes: cancellation, server-side dry run, the field manager to record. */
export interface WriteOptions {
  signal?: AbortSignal;
  dryRun?: boolean;
  fieldManager?: string;
}

export type PatchType = 'merge' | 'json' | 'strategic' | { apply: { fieldManager: string; force?: boolean } };

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  signal?: AbortSignal;
}

export interface WatchOptions {
  resourceVersion: string;
  labelSelector?: string;
  fieldSelector?: string;
  signal: AbortSignal;
  /** Asks the server to end the watch after this long; the client gives up 30 s after that. */
  timeoutSeconds?: number;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { resourceVersion?: string; uid?: string };
  signal?: AbortSignal;
}

export interface KubeClientOptions {
  userAgent?: string;
  /** Socket inactivity limit for ordinary requests (not watches). */
  timeoutMs?: number;
}

const DEFAULTS = { userAgent: 'hoist', timeoutMs: 30_000, listPageSize: 500, watchStallGraceMs: 30_000 };

const PATCH_CONTENT_TYPES = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

interface KubeList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

function isJson(contentType: string | undefined): boolean {
  return contentType === undefined || /\bjson\b/i.test(contentType);
}

function writeQuery(opts: WriteOptions | undefined): Query {
  return { dryRun: opts?.dryRun ? 'All' : undefined, fieldManager: opts?.fieldManager };
}

/**
 * A thin client for the Kubernetes API over node:https: JSON in and out, the cluster's CA and
 * client certificate on a keep-alive agent, a bearer token when there is one. Every non-2xx answer
 * becomes a KubeError built from the server's Status.
 */
export class KubeClient {
  readonly config: KubeConfig;
  private readonly agent: http.Agent;
  private readonly tokens: TokenSource;
  private readonly base: URL;
  private readonly userAgent: string;
  private readonly timeoutMs: number;

  constructor(config: KubeConfig, opts: KubeClientOptions = {}) {
    this.config = config;
    this.base = new URL(config.server);
    this.agent = createAgent(config);
    this.tokens = new TokenSource(config.token, config.tokenFile);
    this.userAgent = opts.userAgent ?? DEFAULTS.userAgent;
    this.timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  }

  private url(pathAndQuery: string): URL {
    // Keep a path prefix in the server URL (https://host/k8s/clusters/c1).
    const prefix = this.base.pathname.replace(/\/+$/, '');
    return new URL(`${prefix}${pathAndQuery}`, this.base);
  }

  private async open(
    method: string,
    path: string,
    opts: RequestOptions,
    idleTimeoutMs: number | undefined,
  ): Promise<Exchange> {
    const headers: Record<string, string> = {
      accept: opts.accept ?? 'application/json',
      'user-agent': this.userAgent,
    };
    const token = await this.tokens.get();
    if (token) headers.authorization = `Bearer ${token}`;
    let body: Buffer | undefined;
    if (opts.body !== undefined) {
      body = Buffer.isBuffer(opts.body)
        ? opts.body
        : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body), 'utf8');
      headers['content-type'] = opts.contentType ?? 'application/json';
      headers['content-length'] = String(body.length);
    }
    const full = withQuery(path, opts.query);
    return exchange(this.agent, {
      method,
      url: this.url(full),
      headers,
      ...(body === undefined ? {} : { body }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      ...(idleTimeoutMs === undefined ? {} : { idleTimeoutMs }),
      what: `${method} ${path}`,
    });
  }

  /** One request; resolves with the parsed JSON body (text when `accept` is not JSON). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const what = `${method} ${path}`;
    const ex = await this.open(method, path, opts, this.timeoutMs);
    const text = await readText(ex);
    const status = ex.res.statusCode ?? 0;
    if (status < 200 || status > 299) throw kubeErrorFromResponse(status, text, what);
    if (!isJson(opts.accept)) return text as T;
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new KubeConnectionError('KUBE_BAD_RESPONSE', `${what}: ${status} with a body that is not JSON`, {
        cause: err,
      });
    }
  }

  /** The object, or undefined when it does not exist (404). */
  async get<T extends KubeObject>(
    ref: ResourceRef,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(ref), opts);
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Every object of a collection (of a named ref: that one object), following `continue` pages
   * of 500. Items get the list's apiVersion and kind (the server leaves them out). If a continue
   * token expires mid-way (410), lists once more in one piece, as client-go's pager does.
   */
  async list<T extends KubeObject>(
    ref: ResourceRef,
    opts: ListOptions = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const { path, fieldSelector } = collectionOf(ref, opts.fieldSelector);
    let items: T[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    let limit: number | undefined = DEFAULTS.listPageSize;
    while (true) {
      let page: KubeList<T>;
      try {
        page = await this.request<KubeList<T>>('GET', path, {
          query: {
            labelSelector: opts.labelSelector,
            fieldSelector,
            limit,
            continue: cont,
          },
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } catch (err) {
        if (cont !== undefined && err instanceof KubeError && err.status === 410) {
          items = [];
          cont = undefined;
          limit = undefined;
          continue;
        }
        throw err;
      }
      const kind = page.kind?.replace(/List$/, '');
      for (const item of page.items ?? []) items.push({ apiVersion: page.apiVersion, kind, ...item });
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
      if (cont === undefined) return { items, resourceVersion };
    }
  }

  /** POST to the collection (the namespace is the ref's, else the object's). */
  create<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: WriteOptions): Promise<T> {
    const namespace = ref.namespace ?? obj.metadata.namespace;
    const path = resourcePath({ group: ref.group, version: ref.version, plural: ref.plural, namespace });
    return this.request<T>('POST', path, { body: obj, query: writeQuery(opts), ...signalOf(opts) });
  }

  /** PUT; with metadata.resourceVersion set, a stale version fails with KubeError 409 Conflict. */
  replace<T extends KubeObject>(ref: ResourceRef, obj: T, opts?: WriteOptions): Promise<T> {
    const path = resourcePath(this.named(ref, obj));
    return this.request<T>('PUT', path, { body: obj, query: writeQuery(opts), ...signalOf(opts) });
  }

  /** PATCH with a merge, JSON, strategic-merge or server-side apply patch. */
  patch<T extends KubeObject>(
    ref: ResourceRef,
    patch: unknown,
    type: PatchType,
    opts?: WriteOptions,
  ): Promise<T> {
    const path = resourcePath(this.named(ref));
    const query = writeQuery(opts);
    let contentType: string;
    if (typeof type === 'object') {
      // Server-side apply takes YAML; JSON is YAML.
      contentType = 'application/apply-patch+yaml';
      query.fieldManager = type.apply.fieldManager;
      if (type.apply.force) query.force = true;
    } else {
      contentType = PATCH_CONTENT_TYPES[type];
    }
    return this.request<T>('PATCH', path, { body: patch, contentType, query, ...signalOf(opts) });
  }

  /** DELETE; an object that is already gone (404) is not an error. */
  async delete(ref: ResourceRef, opts: DeleteOptions = {}): Promise<void> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = opts.preconditions;
    try {
      await this.request('DELETE', resourcePath(this.named(ref)), { body, ...signalOf(opts) });
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) return;
      throw err;
    }
  }

  /**
   * Watch events from `resourceVersion` on (bookmarks on; a named ref watches that one object),
   * until the server ends the watch (then the iteration ends) or `signal` aborts (the iteration
   * ends quietly). Every ERROR event is
   * thrown as a KubeError (410 → reason Gone: the version is too old, list again); so is a
   * non-2xx answer. The watch has no socket inactivity limit; with timeoutSeconds, a watch the
   * server did not end 30 s after that is treated as a dead connection (KUBE_TIMEOUT).
   */
  watch<T extends KubeObject>(ref: ResourceRef, opts: WatchOptions): AsyncIterable<WatchEvent<T>> {
    return this.watchEvents<T>(ref, opts);
  }

  private async *watchEvents<T extends KubeObject>(
    ref: ResourceRef,
    opts: WatchOptions,
  ): AsyncGenerator<WatchEvent<T>, void, undefined> {
    const { signal } = opts;
    const { path, fieldSelector } = collectionOf(ref, opts.fieldSelector);
    const what = `WATCH ${path}`;
    const query: Query = {
      watch: true,
      allowWatchBookmarks: true,
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      fieldSelector,
      timeoutSeconds: opts.timeoutSeconds,
    };
    if (signal.aborted) return;
    let ex: Exchange;
    try {
      ex = await this.open('GET', path, { query, signal }, undefined);
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
    let stall: NodeJS.Timeout | undefined;
    if (opts.timeoutSeconds !== undefined) {
      const ms = opts.timeoutSeconds * 1000 + DEFAULTS.watchStallGraceMs;
      stall = setTimeout(
        () =>
          ex.fail(
            new KubeConnectionError(
              'KUBE_TIMEOUT',
              `${what}: the server did not end the watch after ${ms} ms`,
            ),
          ),
        ms,
      );
    }
    try {
      const status = ex.res.statusCode ?? 0;
      if (status < 200 || status > 299) throw kubeErrorFromResponse(status, await readText(ex), what);
      const splitter = new LineSplitter();
      const events = function* (lines: string[]): Generator<WatchEvent<T>> {
        for (const line of lines) {
          const ev = parseWatchLine<T>(line, what);
          if (ev === undefined) continue;
          if (ev.type === 'ERROR') throw kubeErrorFromStatus(ev.object as KubeStatus, 500, what);
          yield ev;
        }
      };
      try {
        for await (const chunk of ex.res) yield* events(splitter.push(chunk as Buffer));
      } catch (err) {
        // An ERROR event or a garbled line is thrown as it is; anything else is the connection.
        const own =
          err instanceof KubeError ||
          (err instanceof KubeConnectionError && err.code === 'KUBE_BAD_RESPONSE');
        throw own ? err : ex.failure(err);
      }
      yield* events(splitter.end());
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    } finally {
      clearTimeout(stall);
      ex.close();
    }
  }

  /** Destroys the keep-alive agent and its sockets; the client is unusable afterwards. */
  close(): void {
    this.agent.destroy();
  }

  private named(ref: ResourceRef, obj?: KubeObject): ResourceRef {
    const name = ref.name ?? obj?.metadata.name;
    if (!name) throw new TypeError(`${ref.plural}: a name is needed`);
    const namespace = ref.namespace ?? obj?.metadata.namespace;
    return { ...ref, name, ...(namespace === undefined ? {} : { namespace }) };
  }
}

/**
 * The collection path for a list or watch. A named ref becomes its collection with a
 * `metadata.name` field selector: the API server does not watch an object's own URL (a GET there
 * returns the object), so client-go watches one object this way too.
 */
function collectionOf(
  ref: ResourceRef,
  fieldSelector: string | undefined,
): { path: string; fieldSelector?: string } {
  if (ref.subresource !== undefined)
    throw new TypeError(`cannot list or watch the ${ref.subresource} subresource`);
  if (ref.name === undefined) return { path: resourcePath(ref), ...(fieldSelector ? { fieldSelector } : {}) };
  // Field selector values escape \, ',' and '=' (k8s.io/apimachinery/pkg/fields.EscapeValue).
  const name = ref.name.replace(/\\/g, '\\\\').replace(/,/g, '\\,').replace(/=/g, '\\=');
  const byName = `metadata.name=${name}`;
  return {
    path: resourcePath({
      group: ref.group,
      version: ref.version,
      plural: ref.plural,
      namespace: ref.namespace,
    }),
    fieldSelector: fieldSelector ? `${byName},${fieldSelector}` : byName,
  };
}

function signalOf(opts: { signal?: AbortSignal } | undefined): { signal?: AbortSignal } {
  return opts?.signal ? { signal: opts.signal } : {};
}
