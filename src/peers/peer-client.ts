import { Agent, request, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { MAX_MANIFEST_BYTES } from '../oci/index.js';
import { PeerError } from './errors.js';

/** Header names of the peer protocol (docs/peers.md). */
export const PEER_HEADERS = {
  /** The asking node's own peer URL: where it sits in the relay tree. */
  peer: 'x-hoist-peer',
  /** "You were named as a relay": serve only what you hold or are receiving; never fetch or redirect. */
  relay: 'x-hoist-relay',
  /** A relay the asker could not use; it is placed elsewhere in the tree. */
  relayFailed: 'x-hoist-relay-failed',
  /** Depth of the asker in the relay tree, on a redirect. */
  depth: 'x-hoist-relay-depth',
  /** On a 403: the peer refused this node's token (not an upstream's answer about a repository). */
  refused: 'x-hoist-peer-refused',
  /**
   * On a blob answer: "1" when the peer serves it from its store, whole and verified, so only its
   * own link or disk limits the rate; absent when it relays a download still arriving, which can go
   * only as fast as its own source (docs/peers.md, "a slow peer").
   */
  complete: 'x-hoist-complete',
} as const;

export const PEER_PATH_PREFIX = '/peer/v1';

export interface PeerBlobRequest {
  peer: string;
  digest: string;
  upstream: string;
  repo: string;
  range?: { start: number; end?: number } | undefined;
  /** Sent here as a relay by the blob's fetcher. */
  relay?: boolean;
  failedRelay?: string | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Asked again after a transient failure (PeerError.transient): on a new connection, not a
   * kept-alive one, and waiting `patientConnectTimeoutMs` for it, past TCP's SYN retransmissions.
   */
  patient?: boolean;
}

export type PeerAnswer =
  | {
      kind: 'body';
      peer: string;
      status: 200 | 206;
      offset: number;
      totalSize: number | undefined;
      contentLength: number | undefined;
      /** The peer holds the whole blob (PEER_HEADERS.complete): its rate is its own. */
      complete: boolean;
      body: Readable;
    }
  | { kind: 'relay'; peer: string; relay: string; depth: number }
  | { kind: 'miss'; peer: string; status: number; code: string | undefined };

export interface PeerManifestRequest {
  peer: string;
  digest: string;
  upstream: string;
  repo: string;
  signal?: AbortSignal | undefined;
}

export type PeerManifestAnswer =
  | { kind: 'manifest'; peer: string; body: Buffer; contentType: string | undefined }
  | { kind: 'miss'; peer: string; status: number };

export interface PeerClientOptions {
  /** This node's peer URL, sent with every request. */
  self: string;
  token: string;
  /** A peer that has not accepted the connection by then is down (a miss must cost milliseconds). */
  connectTimeoutMs: number;
  /**
   * The connect timeout of a request asked again (`patient`) of a peer that is alive: past TCP's
   * first two SYN retransmissions (1 s, then 2 s later: RFC 6298 §2.1 and §5.5, as Linux does).
   */
  patientConnectTimeoutMs: number;
  /** Wait for headers: a fetcher answers once its own upstream has answered. */
  headersTimeoutMs: number;
}

/**
 * An idle kept-alive connection is closed by this side after at most this long, and before the
 * peer's announced `Keep-Alive: timeout=N` (Node's server: 5 s) less a second. Node 20's agent
 * takes the server's hint only when it has a timeout of its own (`keepSocketAlive` keeps the
 * smaller of the two, and none means forever), so without one an idle socket outlived the peer's
 * keep-alive and the next request on it raced the peer's close: ECONNRESET before any answer,
 * which cost an ask-again (docs/peers.md). Active sockets only get a `timeout` event nobody acts
 * on: the stall guard judges progress.
 */
const KEEP_ALIVE = { keepAlive: true, maxSockets: 32, timeout: 4_000 } as const;

/**
 * Requests blobs from peer mirrors over `/peer/v1/blobs/<digest>` with the cluster token. Keeps
 * connections alive (many blobs cross the same pairs of nodes during a rollout). Never follows a
 * redirect itself: the caller decides whether to use the relay it was given.
 */
export class PeerClient {
  private readonly agent = new Agent(KEEP_ALIVE);
  private readonly httpsAgent = new HttpsAgent(KEEP_ALIVE);
  /** For `patient` requests: a new connection each, never a kept-alive one that may be closing. */
  private readonly freshAgent = new Agent({ keepAlive: false });
  private readonly freshHttpsAgent = new HttpsAgent({ keepAlive: false });

  constructor(readonly options: PeerClientOptions) {}

  async getBlob(req: PeerBlobRequest): Promise<PeerAnswer> {
    const url = new URL(`${req.peer}${PEER_PATH_PREFIX}/blobs/${req.digest}`);
    url.searchParams.set('ns', req.upstream);
    url.searchParams.set('repo', req.repo);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.options.token}`,
      [PEER_HEADERS.peer]: this.options.self,
    };
    if (req.range) headers.range = `bytes=${req.range.start}-${req.range.end ?? ''}`;
    if (req.relay) headers[PEER_HEADERS.relay] = '1';
    if (req.failedRelay) headers[PEER_HEADERS.relayFailed] = req.failedRelay;
    const res = await this.send(url, headers, req.peer, req.signal, req.patient === true);
    const status = res.statusCode ?? 0;
    if (status === 307) {
      res.resume();
      const location = res.headers.location;
      const depth = Number(res.headers[PEER_HEADERS.depth] ?? '0');
      if (!location)
        throw new PeerError('PEER_BAD_RESPONSE', req.peer, `${req.peer} redirected without a Location`);
      return { kind: 'relay', peer: req.peer, relay: new URL(location, req.peer).origin, depth };
    }
    if (status === 200 || status === 206) {
      const length = parseLength(res.headers['content-length']);
      const range = status === 206 ? parseContentRange(res.headers['content-range']) : undefined;
      if (status === 206 && !range) {
        res.destroy();
        throw new PeerError(
          'PEER_BAD_RESPONSE',
          req.peer,
          `${req.peer} sent 206 without a valid Content-Range`,
        );
      }
      if (req.range && (status !== 206 || range?.start !== req.range.start)) {
        res.destroy();
        throw new PeerError(
          'PEER_BAD_RESPONSE',
          req.peer,
          `${req.peer} did not answer the range from ${req.range.start}`,
        );
      }
      return {
        kind: 'body',
        peer: req.peer,
        status,
        offset: range?.start ?? 0,
        totalSize: status === 200 ? length : range?.total,
        contentLength: length,
        complete: res.headers[PEER_HEADERS.complete] === '1',
        body: res,
      };
    }
    const text = await readSmall(res);
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
    } catch {
      code = undefined;
    }
    if (res.headers[PEER_HEADERS.refused] === 'token') {
      throw new PeerError('PEER_REFUSED', req.peer, `${req.peer} refused this node's peer token (${status})`);
    }
    return { kind: 'miss', peer: req.peer, status, code };
  }

  /**
   * A manifest by digest from a peer's own manifest store (`/peer/v1/manifests/<digest>`): the
   * peer never fetches one for us. The caller verifies the bytes against the digest; this only
   * bounds their size (a manifest is at most MAX_MANIFEST_BYTES).
   */
  async getManifest(req: PeerManifestRequest): Promise<PeerManifestAnswer> {
    const url = new URL(`${req.peer}${PEER_PATH_PREFIX}/manifests/${req.digest}`);
    url.searchParams.set('ns', req.upstream);
    url.searchParams.set('repo', req.repo);
    const res = await this.send(
      url,
      { authorization: `Bearer ${this.options.token}`, [PEER_HEADERS.peer]: this.options.self },
      req.peer,
      req.signal,
    );
    const status = res.statusCode ?? 0;
    if (status === 200) {
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const chunk of res as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > MAX_MANIFEST_BYTES) {
          res.destroy();
          throw new PeerError(
            'PEER_BAD_RESPONSE',
            req.peer,
            `${req.peer} sent a manifest larger than ${MAX_MANIFEST_BYTES} bytes`,
          );
        }
        chunks.push(chunk);
      }
      const body = Buffer.concat(chunks);
      return { kind: 'manifest', peer: req.peer, body, contentType: res.headers['content-type'] };
    }
    await readSmall(res);
    if (res.headers[PEER_HEADERS.refused] === 'token') {
      throw new PeerError('PEER_REFUSED', req.peer, `${req.peer} refused this node's peer token (${status})`);
    }
    return { kind: 'miss', peer: req.peer, status };
  }

  /** A JSON document from a peer's `/peer/v1/...` path (status views). */
  async getJson(peer: string, path: string, signal?: AbortSignal): Promise<unknown> {
    const res = await this.send(
      new URL(`${peer}${PEER_PATH_PREFIX}${path}`),
      { authorization: `Bearer ${this.options.token}` },
      peer,
      signal,
    );
    const text = await readSmall(res, 16 * 1024 * 1024);
    if (res.statusCode !== 200)
      throw new PeerError(
        'PEER_BAD_RESPONSE',
        peer,
        `${peer} answered ${res.statusCode}: ${text.slice(0, 200)}`,
      );
    return JSON.parse(text) as unknown;
  }

  close(): void {
    this.agent.destroy();
    this.httpsAgent.destroy();
    this.freshAgent.destroy();
    this.freshHttpsAgent.destroy();
  }

  private send(
    url: URL,
    headers: Record<string, string>,
    peer: string,
    signal?: AbortSignal,
    patient = false,
  ): Promise<IncomingMessage> {
    const https = url.protocol === 'https:';
    const connectTimeoutMs = patient ? this.options.patientConnectTimeoutMs : this.options.connectTimeoutMs;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const agent = patient
        ? https
          ? this.freshHttpsAgent
          : this.freshAgent
        : https
          ? this.httpsAgent
          : this.agent;
      const req = (https ? httpsRequest : request)(url, { method: 'GET', headers, agent, signal });
      let settled = false;
      let connectVerdict: NodeJS.Immediate | undefined;
      const connected = () => {
        clearTimeout(connectTimer);
        clearImmediate(connectVerdict);
      };
      const fail = (err: PeerError) => {
        if (settled) return;
        settled = true;
        connected();
        clearTimeout(headersTimer);
        req.destroy(err);
        reject(err);
      };
      const connectTimer = setTimeout(() => {
        // After this process could not run for a while, expired timers run before the event loop
        // sees the connection complete: judge only after its I/O phase (stall-guard.ts, the same).
        connectVerdict = setImmediate(() =>
          fail(
            new PeerError(
              'PEER_TIMEOUT',
              peer,
              `${peer} did not accept a connection within ${connectTimeoutMs} ms`,
              { transient: true },
            ),
          ),
        );
      }, connectTimeoutMs);
      const headersTimer = setTimeout(
        () =>
          fail(
            new PeerError(
              'PEER_TIMEOUT',
              peer,
              `${peer} sent no answer within ${this.options.headersTimeoutMs} ms`,
            ),
          ),
        this.options.headersTimeoutMs,
      );
      req.on('socket', (socket) => {
        // A kept-alive socket is connected already.
        if (!socket.connecting) connected();
        else socket.once('connect', connected);
      });
      req.on('response', (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        settled = true;
        connected();
        clearTimeout(headersTimer);
        resolve(res);
      });
      req.on('error', (err) => {
        if (settled) return;
        if (signal?.aborted) {
          settled = true;
          connected();
          clearTimeout(headersTimer);
          reject(signal.reason);
          return;
        }
        const code = (err as NodeJS.ErrnoException).code ?? err.message;
        // A reset before any answer ("socket hang up" is ECONNRESET too) is the connection's, not
        // a refusal: the peer may have just closed a kept-alive connection as it was reused.
        const transient = code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED';
        fail(
          new PeerError('PEER_UNREACHABLE', peer, `cannot reach ${peer}: ${code}`, { cause: err, transient }),
        );
      });
      req.end();
    });
  }
}

function parseLength(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

function parseContentRange(
  value: string | undefined,
): { start: number; end: number; total: number | undefined } | undefined {
  const m = value === undefined ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? undefined : Number(m[3]) };
}

async function readSmall(res: IncomingMessage, max = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (n < max) chunks.push(chunk);
    n += chunk.length;
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max);
}
