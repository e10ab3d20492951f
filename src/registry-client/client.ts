import type { Readable } from 'node:stream';
import type { Credentials } from './auth.js';
import { Authenticator } from './authenticator.js';
import { DEFAULT_RETRY_POLICY, UpstreamHealth, backoffDelayMs, sleep, type RetryPolicy } from './backoff.js';
import { errorFromResponse, parseRetryAfter, UpstreamError } from './errors.js';
import { sendRequest, type HttpBody, type HttpRequestInit, type HttpResponse } from './http-transport.js';

export interface RegistryClientOptions {
  /** Registry host as clients name it (docker.io, 127.0.0.1:6000); used in messages only. */
  name: string;
  /** Base URL of the registry API, e.g. https://registry-1.docker.io. */
  url: string;
  credentials?: Credentials;
  /** How long to wait for response headers before giving up (milliseconds). */
  headersTimeoutMs?: number;
  userAgent?: string;
  retry?: Partial<RetryPolicy>;
  /** Clock, injectable for token-expiry tests. */
  now?: () => number;
}

export interface ManifestResponse {
  body: Buffer;
  /** Content-Type the upstream sent. */
  contentType: string | undefined;
  /** Docker-Content-Digest the upstream sent (unverified; callers verify). */
  digestHeader: string | undefined;
}

export interface ManifestHead {
  contentType: string | undefined;
  digestHeader: string | undefined;
  size: number | undefined;
}

export interface BlobResponse {
  /** 200 for a whole blob, 206 for a range. */
  status: 200 | 206;
  /** Bytes in this body, when the upstream said. */
  contentLength: number | undefined;
  /** Start offset of this body within the blob (0 unless status is 206). */
  offset: number;
  /** Size of the whole blob, when known (Content-Length of a 200, or the Content-Range total). */
  totalSize: number | undefined;
  body: Readable;
  /** Set when the bytes come from a peer mirror (src/peers), not from this registry: its URL. */
  peer?: string;
}

export interface RequestOptions {
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
  /** Ask for a token that may push (`repository:<name>:pull,push`), for uploads. */
  push?: boolean;
  /** Request body, for uploads (a Readable is sent as it streams, with backpressure). */
  body?: HttpBody;
  /**
   * For work no client waits on (resuming a download): skip the breaker and the client retry
   * budget; the caller paces its own retries.
   */
  background?: boolean;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 30_000;

/** Statuses that mean the upstream is down or rate-limiting us (RFC 9110 §15.6, RFC 6585 §4). */
const BREAKER_STATUSES = new Set([429, 502, 503, 504]);

/**
 * A client for one upstream registry's pull API (OCI distribution-spec), with the auth dance:
 * a request without credentials, and on `401` the challenge answered (Bearer token fetched from
 * the realm, or Basic), tokens cached per scope until they expire.
 */
export class RegistryClient {
  readonly name: string;
  readonly baseUrl: string;
  private readonly credentials: Credentials | undefined;
  private readonly headersTimeoutMs: number;
  private readonly userAgent: string;
  private readonly now: () => number;
  private readonly auth: Authenticator;
  private readonly retry: RetryPolicy;
  /** Recent failures of this upstream; while it backs off, requests fail at once. */
  readonly health: UpstreamHealth;

  constructor(options: RegistryClientOptions) {
    this.name = options.name;
    this.baseUrl = options.url.replace(/\/+$/, '');
    this.credentials = options.credentials;
    this.headersTimeoutMs = options.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? 'hoist';
    this.now = options.now ?? Date.now;
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.health = new UpstreamHealth(this.retry, this.now);
    this.auth = new Authenticator(
      this.name,
      this.credentials,
      this.userAgent,
      (url, init, signal) => this.fetchWithTimeout(url, init, signal),
      this.now,
    );
  }

  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  async getManifest(
    repo: string,
    reference: string,
    accept: readonly string[],
    opts: RequestOptions = {},
  ): Promise<ManifestResponse> {
    const res = await this.request('GET', `/v2/${repo}/manifests/${reference}`, repo, {
      ...opts,
      headers: { accept: accept.join(', ') },
    });
    const what = `manifest ${repo}:${reference}`;
    if (res.status !== 200) throw await this.failure(res, what);
    const body = await res.bytes();
    return {
      body,
      contentType: res.headers.get('content-type') ?? undefined,
      digestHeader: res.headers.get('docker-content-digest') ?? undefined,
    };
  }

  async headManifest(
    repo: string,
    reference: string,
    accept: readonly string[],
    opts: RequestOptions = {},
  ): Promise<ManifestHead> {
    const res = await this.request('HEAD', `/v2/${repo}/manifests/${reference}`, repo, {
      ...opts,
      headers: { accept: accept.join(', ') },
    });
    if (res.status !== 200) throw await this.failure(res, `manifest ${repo}:${reference}`);
    return {
      contentType: res.headers.get('content-type') ?? undefined,
      digestHeader: res.headers.get('docker-content-digest') ?? undefined,
      size: parseLength(res.headers.get('content-length')),
    };
  }

  async headBlob(
    repo: string,
    digest: string,
    opts: RequestOptions = {},
  ): Promise<{ size: number | undefined }> {
    const res = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, repo, opts);
    if (res.status !== 200) throw await this.failure(res, `blob ${repo}@${digest}`);
    return { size: parseLength(res.headers.get('content-length')) };
  }

  /**
   * Starts a blob download. With `range`, asks for `bytes=start-[end]`; a registry that ignores
   * the range answers 200 and the caller sees `offset: 0`.
   */
  async getBlob(
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } } = {},
  ): Promise<BlobResponse> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = `bytes=${opts.range.start}-${opts.range.end ?? ''}`;
    const res = await this.request('GET', `/v2/${repo}/blobs/${digest}`, repo, { ...opts, headers });
    const what = `blob ${repo}@${digest}`;
    if (res.status !== 200 && res.status !== 206) throw await this.failure(res, what);
    const contentLength = parseLength(res.headers.get('content-length'));
    let offset = 0;
    let totalSize = res.status === 200 ? contentLength : undefined;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m) {
        await res.discard();
        throw new UpstreamError(
          'UPSTREAM_BAD_RESPONSE',
          `upstream sent 206 without a valid Content-Range for ${what}`,
        );
      }
      offset = Number(m[1]);
      if (m[3] !== '*') totalSize = Number(m[3]);
      if (opts.range && offset !== opts.range.start) {
        await res.discard();
        throw new UpstreamError(
          'UPSTREAM_BAD_RESPONSE',
          `upstream answered a range at ${offset}, not ${opts.range.start}`,
        );
      }
    }
    return { status: res.status, contentLength, offset, totalSize, body: res.body };
  }

  /** Lists tags (distribution-spec end-8a), passed through as the upstream returns them. */
  async listTags(
    repo: string,
    query: string,
    opts: RequestOptions = {},
  ): Promise<{ body: Buffer; link?: string }> {
    const res = await this.request('GET', `/v2/${repo}/tags/list${query}`, repo, opts);
    if (res.status !== 200) throw await this.failure(res, `tags of ${repo}`);
    const link = res.headers.get('link') ?? undefined;
    return { body: await res.bytes(), ...(link ? { link } : {}) };
  }

  /**
   * Sends a request with whatever authorization is cached for the repository's scope; answers
   * one 401 challenge and retries once. `429` and `5xx` answers and network failures are retried
   * (GET and HEAD only), honouring Retry-After, within the client retry budget; past it the last
   * answer is returned (or the error thrown) so that the caller can fail fast. While the upstream
   * is backing off after failures, requests fail at once without contacting it.
   */
  async request(
    method: string,
    path: string,
    repo: string,
    opts: RequestOptions = {},
  ): Promise<HttpResponse> {
    const retriable = (method === 'GET' || method === 'HEAD') && opts.body === undefined;
    const started = this.now();
    for (let attempt = 1; ; attempt++) {
      // The breaker turns away new requests; a request's own retries have paced themselves.
      const wait = attempt === 1 && !opts.background ? this.health.remainingMs() : 0;
      if (wait > 0) {
        const last = this.health.last;
        throw new UpstreamError(
          last?.code === 'TOOMANYREQUESTS' || last?.code === 'UPSTREAM_TIMEOUT'
            ? last.code
            : 'UPSTREAM_UNAVAILABLE',
          `${this.name} is backing off for ${Math.ceil(wait / 1000)} s after: ${last?.message ?? 'errors'}`,
          { retryAfterSeconds: Math.ceil(wait / 1000) },
        );
      }
      let res: HttpResponse;
      try {
        res = await this.requestOnce(method, path, repo, opts);
      } catch (err) {
        if (
          !(err instanceof UpstreamError) ||
          (err.code !== 'UPSTREAM_UNAVAILABLE' && err.code !== 'UPSTREAM_TIMEOUT')
        ) {
          throw err;
        }
        this.health.recordFailure(err);
        if (!retriable || opts.background || !this.fitsBudget(attempt, started, undefined)) throw err;
        await sleep(backoffDelayMs(attempt, this.retry), opts.signal);
        continue;
      }
      if (res.status !== 429 && res.status < 500) {
        this.health.recordSuccess();
        return res;
      }
      const retryAfter = parseRetryAfter(res.headers.get('retry-after'));
      // Only "down" or "slow down" answers trip the breaker: a 500 for one odd request (say, a
      // manifest GET naming a layer digest) says nothing about the upstream, and must not let one
      // client make the mirror turn everyone else away.
      if (BREAKER_STATUSES.has(res.status)) {
        this.health.recordFailure(
          {
            code: res.status === 429 ? 'TOOMANYREQUESTS' : 'UPSTREAM_UNAVAILABLE',
            message: `${res.status} for ${path}`,
          },
          retryAfter,
        );
      }
      if (!retriable || opts.background || !this.fitsBudget(attempt, started, retryAfter)) return res;
      await res.discard();
      await sleep(backoffDelayMs(attempt, this.retry, retryAfter), opts.signal);
    }
  }

  /** Whether another attempt after `attempt` fits in the client retry budget. */
  private fitsBudget(attempt: number, started: number, retryAfterSeconds: number | undefined): boolean {
    const delay =
      retryAfterSeconds !== undefined
        ? retryAfterSeconds * 1000
        : Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return this.now() - started + delay <= this.retry.clientBudgetMs;
  }

  private async requestOnce(
    method: string,
    path: string,
    repo: string,
    opts: RequestOptions,
  ): Promise<HttpResponse> {
    const scope = `repository:${repo}:${opts.push ? 'pull,push' : 'pull'}`;
    let authorization = await this.auth.cachedAuthorization(scope, opts.signal);
    const res = await this.send(method, path, authorization, opts);
    if (res.status !== 401) return res;
    const header = res.headers.get('www-authenticate') ?? '';
    await res.discard();
    authorization = await this.auth.answerChallenge(header, scope, opts.signal, authorization);
    if (authorization === undefined) {
      return this.send(method, path, undefined, opts); // yields the 401 again, for the caller to report
    }
    return this.send(method, path, authorization, opts);
  }

  private async send(
    method: string,
    path: string,
    authorization: string | undefined,
    opts: RequestOptions,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...opts.headers };
    if (authorization) headers.authorization = authorization;
    return this.fetchWithTimeout(`${this.baseUrl}${path}`, { method, headers, body: opts.body }, opts.signal);
  }

  /** One request, redirects followed; the timeout covers the wait for headers only. */
  private fetchWithTimeout(
    url: string,
    init: HttpRequestInit,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    return sendRequest(url, init, { name: this.name, headersTimeoutMs: this.headersTimeoutMs, signal });
  }

  private async failure(res: HttpResponse, what: string): Promise<UpstreamError> {
    const body = res.status >= 400 ? await res.text().catch(() => '') : '';
    if (res.status < 400) await res.discard();
    return errorFromResponse(
      res.status,
      body.slice(0, 64 * 1024),
      `${what} from ${this.name}`,
      res.headers.get('retry-after'),
    );
  }
}

function parseLength(value: string | null): number | undefined {
  if (value === null || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
