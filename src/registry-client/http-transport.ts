/**
 * HTTP to registries over undici's dispatcher API rather than the global `fetch`: the WHATWG fetch
 * standard refuses "bad ports" (fetch spec §2.9 "Port blocking": 6000, 5060, 6665–6669, 10080,
 * ...), and a registry may listen on any port; the README's own examples use 6000.
 *
 * Kept from fetch: redirects followed (registries send blob GETs to storage or a CDN) with the
 * Authorization, Cookie and Proxy-Authorization headers dropped when the redirect leaves the
 * origin (undici's redirect interceptor, as fetch spec §4.4 "HTTP-redirect fetch" step 13),
 * keep-alive connections shared by every client in the process, the caller's AbortSignal honoured
 * through body reads. Not kept: fetch's automatic `accept-encoding` and decompression; registries
 * serve blobs and manifests as they are, and a blob's digest is over its stored bytes.
 *
 * Every response body must be read to its end or discarded: until then undici keeps the
 * connection busy.
 */
import type { Readable } from 'node:stream';
import type * as UndiciModule from 'undici';
import type { Dispatcher } from 'undici';
import { UpstreamError } from './errors.js';

/** A request body: bytes, or a stream sent as it is read (with backpressure). */
export type HttpBody = string | Buffer | Uint8Array | Readable;

export interface HttpRequestInit {
  method: string;
  headers: Record<string, string>;
  body?: HttpBody | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** The body as it arrives; errors (never ends cleanly) when the caller's signal aborts. */
  readonly body: Readable;
  /** The body as text, at most `maxBytes` of it (the rest is discarded); '' when already consumed. */
  text(maxBytes?: number): Promise<string>;
  json(): Promise<unknown>;
  /** The whole body. */
  bytes(): Promise<Buffer>;
  /** Drops the body (reads a small one to its end so that the connection can be reused). */
  discard(): Promise<void>;
}

export interface SendOptions {
  /** Registry name for messages (docker.io, 127.0.0.1:6000). */
  name: string;
  /** Wait for response headers at most this long; the body may take as long as it takes. */
  headersTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** fetch's limit (fetch spec §4.4 step 5: more than 20 redirects is a network error). */
const MAX_REDIRECTIONS = 20;
/** Error bodies are read for their OCI error code; past this they are noise. */
const DEFAULT_TEXT_MAX_BYTES = 1024 * 1024;
/** A body this small is read out on discard, so that its connection is kept (undici's dump reads 128 KiB). */
const DISCARD_READ_BYTES = 256 * 1024;

type Undici = typeof UndiciModule;
let undici: Promise<Undici> | undefined;
let shared: Dispatcher | undefined;

/**
 * undici, loaded at the first request rather than at start-up: an idle mirror (or a command that
 * never talks to a registry) does not carry it in memory.
 */
function loadUndici(): Promise<Undici> {
  undici ??= import('undici');
  return undici;
}

/** One pool of keep-alive connections for the whole process, as the global fetch had. */
function dispatcher(u: Undici): Dispatcher {
  shared ??= new u.Agent().compose(u.interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
  return shared;
}

/**
 * Sends one request. Fails with UPSTREAM_TIMEOUT when no headers came within the timeout,
 * UPSTREAM_UNAVAILABLE (naming the cause, e.g. ECONNREFUSED) when the registry cannot be reached,
 * or the caller's abort reason.
 */
export async function sendRequest(
  url: string,
  init: HttpRequestInit,
  opts: SendOptions,
): Promise<HttpResponse> {
  const { signal } = opts;
  // One signal for undici carries both the caller's abort and the headers timeout.
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  const release = () => signal?.removeEventListener('abort', onAbort);
  if (signal?.aborted) controller.abort(signal.reason);
  else signal?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () =>
      controller.abort(
        new UpstreamError(
          'UPSTREAM_TIMEOUT',
          `${opts.name} sent no response within ${opts.headersTimeoutMs} ms`,
        ),
      ),
    opts.headersTimeoutMs,
  );
  try {
    const u = await loadUndici();
    const res = await u.request(url, {
      method: init.method as Dispatcher.HttpMethod,
      headers: init.headers,
      body: init.body ?? null,
      signal: controller.signal,
      dispatcher: dispatcher(u),
    });
    // The caller's signal keeps reaching the body (through `controller`) until it closes.
    res.body.once('close', release);
    // undici errors a body destroyed before its end (RequestAbortedError). Readers (pipeline,
    // for await) see errors through their own listeners; this one keeps a body that a caller drops
    // unread with destroy() (an upload refused, a download no longer wanted) from crashing the process.
    res.body.on('error', ignore);
    const noBody = init.method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
    if (noBody) res.body.resume(); // empty: let it end and close without a reader
    return wrap(res.statusCode, res.headers, res.body, noBody);
  } catch (err) {
    release();
    if (err instanceof UpstreamError) throw err;
    if (controller.signal.reason instanceof UpstreamError) throw controller.signal.reason;
    if (signal?.aborted) throw signal.reason;
    const code = errorCode(err);
    if (code === 'UND_ERR_HEADERS_TIMEOUT') {
      throw new UpstreamError('UPSTREAM_TIMEOUT', `${opts.name} sent no response in time`, { cause: err });
    }
    throw new UpstreamError('UPSTREAM_UNAVAILABLE', `cannot reach ${opts.name}: ${describeError(err)}`, {
      cause: err,
    });
  } finally {
    clearTimeout(timer);
  }
}

function wrap(
  status: number,
  raw: Record<string, string | string[] | undefined>,
  body: Readable,
  empty: boolean,
): HttpResponse {
  const readAll = async (maxBytes: number): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= maxBytes) {
        body.on('error', ignore).destroy(); // the rest is not wanted; undici closes the connection
        break;
      }
    }
    return Buffer.concat(chunks, total);
  };
  return {
    status,
    headers: {
      get(name: string): string | null {
        const value = raw[name.toLowerCase()];
        if (value === undefined) return null;
        return Array.isArray(value) ? value.join(', ') : value;
      },
    },
    body,
    async text(maxBytes = DEFAULT_TEXT_MAX_BYTES) {
      return (await readAll(maxBytes)).subarray(0, maxBytes).toString('utf8');
    },
    async json() {
      return JSON.parse((await readAll(Infinity)).toString('utf8')) as unknown;
    },
    bytes: () => readAll(Infinity),
    async discard() {
      if (empty || body.destroyed || body.readableEnded) return;
      const length = Number(raw['content-length']);
      if (Number.isFinite(length) && length <= DISCARD_READ_BYTES) {
        await readAll(DISCARD_READ_BYTES + 1).catch(ignore);
      }
      // Destroying an unfinished body makes undici abort the request with an error nobody awaits.
      body.on('error', ignore).destroy();
    },
  };
}

function ignore(): void {}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The most telling part of a network error: its code (ECONNREFUSED, UND_ERR_SOCKET) or message. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const code = errorCode(err) ?? errorCode(cause);
  const message = err.message || (typeof cause?.message === 'string' ? cause.message : '');
  if (code && message && !message.includes(code)) return `${code} (${message})`;
  return code ?? message;
}
