import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AssignmentError, parseAssignmentBody } from './assignments.js';
import type { AgentMetrics } from './metrics.js';
import type { PullQueue } from './pull-queue.js';

/**
 * The agent's local HTTP API (loopback only: it takes assignments without authentication).
 *   POST /v1/pulls   {"images": ["ref", ...]}  -> 202 {"images": [status, ...]}
 *   GET  /v1/images[?wait=idle]               -> {"images": [status, ...], "counts": {...}}
 *   GET  /healthz  /readyz  /metrics
 * Errors are {"error": {"code", "message"}} with 400 (bad input), 404, 405 or 413.
 */

const MAX_BODY_BYTES = 1024 * 1024;

export interface AgentServerOptions {
  queue: PullQueue;
  metrics: AgentMetrics;
  /** undefined when ready, else why not. */
  notReadyReason: () => string | undefined;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'TOO_LARGE', `body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function createAgentServer(opts: AgentServerOptions): Server {
  const { queue, metrics } = opts;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/healthz') return send(res, 200, 'ok\n', 'text/plain');
    if (path === '/readyz') {
      const reason = opts.notReadyReason();
      return reason
        ? send(res, 503, `not ready: ${reason}\n`, 'text/plain')
        : send(res, 200, 'ok\n', 'text/plain');
    }
    if (path === '/metrics')
      return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    if (path === '/v1/images') {
      if (method !== 'GET') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use GET /v1/images');
      // ?wait=idle answers once nothing is pending or pulling (a long poll for callers and tests).
      if (url.searchParams.get('wait') === 'idle') await queue.idle();
      const images = queue.list();
      const counts = { pending: 0, pulling: 0, present: 0, failed: 0 };
      for (const s of images) counts[s.state]++;
      return send(res, 200, { images, counts });
    }
    if (path === '/v1/pulls') {
      if (method !== 'POST') throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'use POST /v1/pulls');
      let images: string[];
      try {
        images = parseAssignmentBody(await readJson(req));
      } catch (err) {
        if (err instanceof AssignmentError) throw new HttpError(400, 'BAD_REQUEST', err.message);
        throw err;
      }
      return send(res, 202, { images: queue.assign(images, 'http') });
    }
    throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`);
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      const e = err instanceof HttpError ? err : new HttpError(500, 'INTERNAL', (err as Error).message);
      send(res, e.status, { error: { code: e.code, message: e.message } });
    });
  });
}

export async function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
