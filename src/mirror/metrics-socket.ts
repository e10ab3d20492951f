import { createServer, type Server } from 'node:http';
import { lstat, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { MirrorMetrics } from './metrics.js';

/**
 * `hoist mirror --metrics-socket PATH`: the mirror's /metrics, and nothing else, on a unix socket.
 * A node mirror listens on the node's 127.0.0.1 (host network), which the node agent in the pod
 * network cannot reach; a socket in a host directory both mount can be (the chart mounts it
 * read-only into the agent: connecting needs no write access to the directory). Only GET and
 * HEAD of /metrics; anything else is 404/405, so the socket never serves blobs.
 */
export async function serveMetricsSocket(
  path: string,
  metrics: MirrorMetrics,
  logger: Logger,
): Promise<Server> {
  // A socket left by an earlier run (a crash leaves it) blocks listen with EADDRINUSE; anything
  // else at the path is not ours to remove.
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isSocket()) await unlink(path);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end();
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (err: unknown) => {
        logger.warn({ err: String(err) }, 'metrics socket: cannot render /metrics');
        res.writeHead(500).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  logger.info({ path }, 'metrics socket listening');
  return server;
}
