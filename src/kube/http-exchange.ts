import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { KubeConnectionError } from './errors.js';
import type { KubeConfig } from './types.js';

/** An HTTP(S) agent carrying the cluster's CA and client certificate, keeping sockets alive. */
export function createAgent(config: KubeConfig): http.Agent {
  const url = new URL(config.server);
  if (url.protocol === 'http:') return new http.Agent({ keepAlive: true });
  const opts: https.AgentOptions = { keepAlive: true, rejectUnauthorized: !config.insecureSkipTlsVerify };
  if (config.caPem) opts.ca = config.caPem;
  if (config.clientCertPem) opts.cert = config.clientCertPem;
  if (config.clientKeyPem) opts.key = config.clientKeyPem;
  if (config.tlsServerName) opts.servername = config.tlsServerName;
  return new https.Agent(opts);
}

export interface ExchangeRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
  signal?: AbortSignal;
  /** Socket inactivity limit; undefined for watches, which may be quiet for minutes. */
  idleTimeoutMs?: number;
  /** Describes the request in errors: "GET /api/v1/pods". */
  what: string;
}

/** A response whose headers arrived; read `res`, map any error through `failure`, then `close`. */
export interface Exchange {
  res: IncomingMessage;
  /** The error to surface for `err` thrown while reading: the abort reason, a timeout, or a lost connection. */
  failure(err: unknown): unknown;
  /** Ends the exchange (destroys the socket if the body was not read to its end). */
  close(): void;
  /** Fails the exchange from outside (a stalled watch), as `failure` will report. */
  fail(err: KubeConnectionError): void;
}

/**
 * Sends one request and resolves once the response headers are in. Errors: the signal's reason
 * when aborted; KubeConnectionError KUBE_TIMEOUT / KUBE_UNREACHABLE otherwise.
 */
export function exchange(agent: http.Agent, req: ExchangeRequest): Promise<Exchange> {
  const { signal } = req;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const transport = req.url.protocol === 'https:' ? https : http;
  return new Promise<Exchange>((resolve, reject) => {
    let failed: unknown;
    let settled = false;
    const r = transport.request(req.url, { method: req.method, headers: req.headers, agent });
    const failure = (err: unknown): unknown => {
      if (signal?.aborted) return signal.reason;
      if (failed !== undefined) return failed;
      if (err instanceof KubeConnectionError) return err;
      return new KubeConnectionError(
        'KUBE_UNREACHABLE',
        `${req.what}: ${(err as Error).message ?? String(err)}`,
        {
          cause: err,
        },
      );
    };
    const fail = (err: unknown) => {
      if (failed === undefined) failed = err;
      r.destroy(err instanceof Error ? err : new Error(String(err)));
    };
    const onAbort = () => fail(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanup = () => signal?.removeEventListener('abort', onAbort);
    if (req.idleTimeoutMs !== undefined) {
      r.setTimeout(req.idleTimeoutMs, () =>
        fail(new KubeConnectionError('KUBE_TIMEOUT', `${req.what}: no data for ${req.idleTimeoutMs} ms`)),
      );
    }
    r.on('error', (err) => {
      cleanup();
      if (!settled) {
        settled = true;
        reject(failure(err));
      }
    });
    r.on('response', (res) => {
      settled = true;
      res.on('close', cleanup);
      resolve({
        res,
        failure,
        fail,
        close: () => {
          cleanup();
          if (!res.complete) r.destroy();
        },
      });
    });
    r.end(req.body);
  });
}

/** The whole body as text (errors mapped through the exchange). */
export async function readText(ex: Exchange): Promise<string> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of ex.res) chunks.push(chunk as Buffer);
  } catch (err) {
    throw ex.failure(err);
  } finally {
    ex.close();
  }
  return Buffer.concat(chunks).toString('utf8');
}
