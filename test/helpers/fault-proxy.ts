// A small misbehaving HTTP front for a real upstream registry: it forwards every request, and can
// hold a blob body after N bytes until released, or flip one byte of it. Fault tests put it
// between the mirror and Debian's docker-registry.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultProxyOptions {
  /** Whole-blob GETs (no Range) send this many bytes, then wait for release(). */
  holdBlobAfterBytes?: number;
  /** Whole-blob GETs have the byte at this offset flipped. */
  corruptBlobByteAt?: number;
}

export interface FaultProxy {
  url: string;
  host: string;
  /** Blob GETs seen so far, with their Range header ('' for none). */
  blobGets: Array<{ path: string; range: string }>;
  /** Lets held bodies continue. */
  release(): void;
  /** Resolves once a whole-blob body has been held (sent its first bytes and stopped). */
  held(): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(target: string, opts: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  let releaseAll: () => void = () => {};
  const released = new Promise<void>((r) => (releaseAll = r));
  let markHeld: () => void = () => {};
  const heldPromise = new Promise<void>((r) => (markHeld = r));
  const blobGets: FaultProxy['blobGets'] = [];

  const server: Server = createServer((req, res) => {
    const isBlob = req.method === 'GET' && /\/blobs\/sha/.test(req.url ?? '');
    if (isBlob) blobGets.push({ path: req.url ?? '', range: String(req.headers.range ?? '') });
    const forward = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      (up: IncomingMessage) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const whole = isBlob && up.statusCode === 200;
        if (!whole || (opts.holdBlobAfterBytes === undefined && opts.corruptBlobByteAt === undefined)) {
          up.pipe(res);
          return;
        }
        pump(up, res).catch(() => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });

  async function pump(up: IncomingMessage, res: ServerResponse): Promise<void> {
    let offset = 0;
    let holding = opts.holdBlobAfterBytes !== undefined;
    for await (const raw of up) {
      let chunk = raw as Buffer;
      const flip = opts.corruptBlobByteAt;
      if (flip !== undefined && flip >= offset && flip < offset + chunk.byteLength) {
        chunk = Buffer.from(chunk);
        chunk[flip - offset] = (chunk[flip - offset] ?? 0) ^ 0xff;
      }
      if (holding && offset + chunk.byteLength >= (opts.holdBlobAfterBytes ?? 0)) {
        const cut = (opts.holdBlobAfterBytes ?? 0) - offset;
        res.write(chunk.subarray(0, cut));
        holding = false;
        markHeld();
        await released;
        chunk = chunk.subarray(cut);
      }
      offset += raw.byteLength;
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    blobGets,
    release: () => releaseAll(),
    held: () => heldPromise,
    close: async () => {
      releaseAll();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
