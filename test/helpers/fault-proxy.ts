// A small misbehaving HTTP front for a real upstream registry. It forwards every request to the
// registry, and can, for chosen requests: hold a blob body after N bytes until released, flip a
// byte, cut the connection after N bytes, stall (stop sending, keep the connection open), send
// slowly (throttle to a rate), drop the connection before answering (reset), or
// answer with a status of its own (429, 503...) without forwarding. Fault tests put it between
// the mirror and Debian's docker-registry.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { NetnsHost } from './netns.js';

export interface FaultProxyOptions {
  /** Whole-blob GETs (no Range) send this many bytes, then wait for release(). */
  holdBlobAfterBytes?: number;
  /** Whole-blob GETs have the byte at this offset flipped. */
  corruptBlobByteAt?: number;
  /** Where to listen; default 127.0.0.1 on a free port. */
  listen?: { host: string; port: number };
}

/** A fault for the next matching request (queued with inject()). */
export type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'stall'; afterBytes: number }
  | { kind: 'corrupt'; at: number }
  /** Drops the connection before any answer (a reset, as a reused keep-alive connection can get). */
  | { kind: 'reset' }
  /** Sends the body at about this rate, in small pieces, until it ends or the client leaves. */
  | { kind: 'throttle'; bytesPerSecond: number };

/** 'blob' / 'manifest' / 'any', or `{ pathIncludes }`: a request whose path contains that text. */
export type FaultTarget = 'blob' | 'manifest' | 'any' | { pathIncludes: string };

export interface ProxiedRequest {
  method: string;
  path: string;
  range: string;
  /** The Authorization header the request carried ('' for none), to tell whose credentials it used. */
  authorization: string;
  /** The fault applied, if any. */
  fault?: Fault['kind'];
}

export interface FaultProxy {
  url: string;
  host: string;
  /** Blob GETs seen so far, with their Range header ('' for none). */
  blobGets: Array<{ path: string; range: string }>;
  /** Every request seen so far. */
  requests: ProxiedRequest[];
  /** Queues `fault` for the next `count` requests that match `target`. */
  inject(target: FaultTarget, fault: Fault, count?: number): void;
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
  const requests: ProxiedRequest[] = [];
  const queue: Array<{ target: FaultTarget; fault: Fault }> = [];
  const stalled = new Set<ServerResponse>();

  function takeFault(isBlob: boolean, isManifest: boolean, path: string): Fault | undefined {
    const i = queue.findIndex(
      (q) =>
        q.target === 'any' ||
        (q.target === 'blob' && isBlob) ||
        (q.target === 'manifest' && isManifest) ||
        (typeof q.target === 'object' && path.includes(q.target.pathIncludes)),
    );
    if (i < 0) return undefined;
    return queue.splice(i, 1)[0]?.fault;
  }

  const server: Server = createServer((req, res) => {
    const path = req.url ?? '';
    const isBlob = req.method === 'GET' && /\/blobs\/sha/.test(path);
    const isManifest = /\/manifests\//.test(path);
    const range = String(req.headers.range ?? '');
    if (isBlob) blobGets.push({ path, range });
    const fault = takeFault(isBlob, isManifest, path);
    requests.push({
      method: req.method ?? '',
      path,
      range,
      authorization: req.headers.authorization ?? '',
      ...(fault ? { fault: fault.kind } : {}),
    });
    if (fault?.kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${fault.status}` }] }));
      req.resume();
      return;
    }
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
        const hold = whole ? opts.holdBlobAfterBytes : undefined;
        const corrupt = whole ? opts.corruptBlobByteAt : undefined;
        if (!fault && hold === undefined && corrupt === undefined) {
          up.pipe(res);
          return;
        }
        pump(up, res, { fault, hold, corrupt }).catch(() => res.destroy());
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });

  async function pump(
    up: IncomingMessage,
    res: ServerResponse,
    f: { fault: Fault | undefined; hold: number | undefined; corrupt: number | undefined },
  ): Promise<void> {
    let offset = 0;
    let holding = f.hold !== undefined;
    const flip = f.fault?.kind === 'corrupt' ? f.fault.at : f.corrupt;
    const stopAt = f.fault?.kind === 'cut' || f.fault?.kind === 'stall' ? f.fault.afterBytes : undefined;
    const throttle = f.fault?.kind === 'throttle' ? f.fault.bytesPerSecond : undefined;
    for await (const raw of up) {
      if (throttle !== undefined) {
        // Pieces of 1/20 s each; a wall-clock pace is the point of this fault.
        const piece = Math.max(1024, Math.floor(throttle / 20));
        for (let i = 0; i < raw.byteLength && !res.destroyed; i += piece) {
          const part = (raw as Buffer).subarray(i, i + piece);
          res.write(part);
          await new Promise((r) => setTimeout(r, (part.byteLength * 1000) / throttle));
        }
        if (res.destroyed) {
          up.destroy();
          return;
        }
        offset += raw.byteLength;
        continue;
      }
      let chunk = raw as Buffer;
      if (flip !== undefined && flip >= offset && flip < offset + chunk.byteLength) {
        chunk = Buffer.from(chunk);
        chunk[flip - offset] = (chunk[flip - offset] ?? 0) ^ 0xff;
      }
      if (stopAt !== undefined && offset + chunk.byteLength >= stopAt) {
        res.write(chunk.subarray(0, stopAt - offset));
        up.destroy();
        if (f.fault?.kind === 'cut') {
          // Let the bytes leave before the connection drops.
          await new Promise((r) => setTimeout(r, 20));
          res.socket?.destroy();
        } else {
          stalled.add(res); // keeps the connection open, sending nothing, until close()
        }
        return;
      }
      if (holding && offset + chunk.byteLength >= (f.hold ?? 0)) {
        const cut = (f.hold ?? 0) - offset;
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

  const bind = opts.listen ?? { host: '127.0.0.1', port: 0 };
  await new Promise<void>((r) => server.listen(bind.port, bind.host, r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${bind.host}:${port}`,
    host: `${bind.host}:${port}`,
    blobGets,
    requests,
    inject: (t, fault, count = 1) => {
      for (let i = 0; i < count; i++) queue.push({ target: t, fault });
    },
    release: () => releaseAll(),
    held: () => heldPromise,
    close: async () => {
      releaseAll();
      for (const r of stalled) r.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A fault proxy running as its own process on another host (a network namespace). */
export interface RemoteFaultProxy {
  url: string;
  /** Its log so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts the fault proxy on `host` (test/helpers/netns.ts), listening on `listen`, in front of
 * `target`: the same proxy as startFaultProxy, for faults on hosts the test process cannot
 * listen on. Only the options that are fixed at start (not inject/hold) make sense there.
 */
export async function startFaultProxyOn(
  host: { startDaemon: NetnsHost['startDaemon'] },
  target: string,
  listen: { host: string; port: number },
  opts: Pick<FaultProxyOptions, 'corruptBlobByteAt'> = {},
): Promise<RemoteFaultProxy> {
  const main = fileURLToPath(new URL('./fault-proxy-main.ts', import.meta.url));
  const args = ['--import', 'tsx', main, target, `${listen.host}:${listen.port}`];
  if (opts.corruptBlobByteAt !== undefined)
    args.push('--corrupt-blob-byte-at', String(opts.corruptBlobByteAt));
  const daemon = host.startDaemon(process.execPath, args);
  const url = await new Promise<string>((resolve, reject) => {
    daemon.onStdoutLine((line) => {
      const m = /^listening on (\S+)$/.exec(line);
      if (m) resolve(m[1] as string);
    });
    void daemon.exited.then(({ code, signal }) =>
      reject(new Error(`fault proxy exited (${code ?? signal}) before listening: ${daemon.output()}`)),
    );
  });
  return { url, output: () => daemon.output(), stop: () => daemon.stop(2000) };
}
