// A registry that answers one blob in small, paced writes, as a shaped or slow link delivers it:
// one `--chunk-kib` write per `--interval-ms` timer tick, Nagle off, so that each write reaches the
// mirror as a read of its own. Run by bench/inflight-cpu.ts as a process of its own, so that the
// bench's clients do not disturb the pacing. It prints `ready PORT DIGEST SIZE` once it listens.
//
// Only what the mirror asks of an upstream for one blob: `GET /v2/` and `GET|HEAD
// /v2/<repo>/blobs/<digest>` (no Range: the mirror's in-flight path never asks for one here).
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const size = Number(arg('--size-mib', '64')) * 1024 * 1024;
const chunk = Number(arg('--chunk-kib', '8')) * 1024;
const intervalMs = Number(arg('--interval-ms', '1'));
if (!(size > 0 && chunk > 0 && intervalMs >= 0)) {
  process.stderr.write('paced-upstream: --size-mib and --chunk-kib must be > 0, --interval-ms >= 0\n');
  process.exit(2);
}
const blob = randomBytes(size);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;

async function sendPaced(res: ServerResponse): Promise<void> {
  for (let pos = 0; pos < size && !res.destroyed; pos += chunk) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    if (!res.write(blob.subarray(pos, Math.min(size, pos + chunk)))) {
      await new Promise((resolve) => res.once('drain', resolve));
    }
  }
  res.end();
}

const server = createServer((req, res) => {
  req.socket.setNoDelay(true);
  const url = req.url ?? '/';
  if (url === '/v2/' || url === '/v2') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    return;
  }
  if (/^\/v2\/.+\/blobs\//.test(url) && url.endsWith(digest)) {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': size,
      'docker-content-digest': digest,
    });
    if (req.method === 'HEAD') res.end();
    else void sendPaced(res);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'unknown blob' }] }));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  process.stdout.write(`ready ${address.port} ${digest} ${size}\n`);
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
