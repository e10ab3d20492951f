import { createServer, type Server } from 'node:http';
import { chmod, lstat, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { MirrorMetrics } from './metrics.js';

/**
 * Connecting needs write permission on the socket (unix(7)), and listen() creates it 0777 less
 * the umask (0755 under the usual 022), which only its owner may connect to. 0660 lets the
 * socket's group in too, and nobody else whatever the umask: the chart's agent, uid 0 without
 * capabilities, reads a non-root mirror's socket through a group both pods share, the setgid
 * group of the socket's directory (src/install/metrics-socket.ts).
 */
export const METRICS_SOCKET_MODE = 0o660;

/**
 * `hoist mirror --metrics-socket PATH`: the mirror's /metrics, and nothing else, on a unix socket.
 * A node mirror listens on the node's 127.0.0.1 (host network), which the node agent in the pod
 * network cannot reach; a socket in a host directory both mount can be (the chart mounts it
 * read-only into the agent: connecting needs no write access to the directory). Only GET and
 * HEAD of /metrics; anything else is 404/405, so the socket never serves blobs. The socket is
 * made METRICS_SOCKET_MODE once it listens.
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
  try {
    await chmod(path, METRICS_SOCKET_MODE);
  } catch (err) {
    server.close();
    throw err;
  }
  logger.info({ path }, 'metrics socket listening');
  return server;
}
