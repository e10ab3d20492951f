import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControllerMetrics } from './metrics.js';

/** Extra read-only routes on the same listener (the dashboard): true when it served the request. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean;

/**
 * The controller's listener: GET /healthz (the process serves), /readyz (a standby, or a leader
 * with synced caches), /metrics (Prometheus text), and the dashboard's routes when given
 * (src/dashboard). Read-only: any method but GET (and HEAD, which RFC 9110 §9.3.2 makes part of
 * GET) is 405.
 */
export function createControllerServer(opts: {
  metrics: ControllerMetrics;
  ready: () => boolean;
  routes?: RouteHandler;
}): Server {
  const send = (res: ServerResponse, status: number, body: string, type = 'text/plain') => {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://controller');
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'read-only: use GET\n');
    }
    if (path === '/healthz') return send(res, 200, 'ok\n');
    if (path === '/readyz')
      return opts.ready() ? send(res, 200, 'ok\n') : send(res, 503, 'not ready: caches syncing\n');
    if (path === '/metrics')
      return send(res, 200, await opts.metrics.registry.metrics(), opts.metrics.registry.contentType);
    if (opts.routes?.(req, res, url)) return;
    return send(res, 404, `no route ${path}\n`);
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      send(res, 500, `${(err as Error).message}\n`);
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
