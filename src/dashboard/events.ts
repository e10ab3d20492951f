import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Server-Sent Events for the dashboard (HTML Living Standard, "Server-sent events"): each stream
 * gets a `state` event at once, then whenever its state changes, at most once per `throttleMs`
 * however fast the cluster changes; a comment line every `heartbeatMs` keeps proxies from closing
 * an idle stream. Streams are capped: past `maxStreams` a new one gets 503 and the browser's
 * EventSource retries later. A client that reads too slowly is dropped rather than buffered.
 */

export interface EventHubOptions {
  throttleMs: number;
  heartbeatMs: number;
  maxStreams: number;
  /** Bytes queued for one client before it is dropped. */
  maxBufferedBytes: number;
}

export const EVENT_DEFAULTS: EventHubOptions = {
  throttleMs: 500,
  heartbeatMs: 15_000,
  maxStreams: 32,
  maxBufferedBytes: 4 * 1024 * 1024,
};

interface Stream {
  res: ServerResponse;
  /** The stream's own view (its node filter), rendered as JSON without the volatile timestamp. */
  render: () => { json: string; key: string };
  lastKey: string | undefined;
}

export class EventHub {
  private readonly streams = new Set<Stream>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private lastFlush = 0;
  private closed = false;

  constructor(private readonly opts: EventHubOptions = EVENT_DEFAULTS) {}

  get size(): number {
    return this.streams.size;
  }

  /** Opens a stream on `res`; `render` gives its current state. */
  open(req: IncomingMessage, res: ServerResponse, render: Stream['render']): void {
    if (this.closed || this.streams.size >= this.opts.maxStreams) {
      const body = `too many dashboard streams (at most ${this.opts.maxStreams}); retry later\n`;
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '10' });
      res.end(body);
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    const stream: Stream = { res, render, lastKey: undefined };
    this.streams.add(stream);
    const drop = () => this.streams.delete(stream);
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    this.send(stream);
    this.heartbeat ??= setInterval(() => this.beat(), this.opts.heartbeatMs).unref();
  }

  /** Something changed: send to every stream whose state differs, throttled. */
  poke(): void {
    if (this.closed || this.timer || this.streams.size === 0) return;
    const wait = Math.max(0, this.lastFlush + this.opts.throttleMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastFlush = Date.now();
      for (const s of this.streams) this.send(s);
    }, wait);
    this.timer.unref();
  }

  /** Ends every stream (shutdown), so the server can close. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    for (const s of this.streams) s.res.end();
    this.streams.clear();
  }

  private send(s: Stream): void {
    const { json, key } = s.render();
    if (key === s.lastKey) return;
    s.lastKey = key;
    this.write(s, `event: state\ndata: ${json}\n\n`);
  }

  private beat(): void {
    if (this.streams.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
      return;
    }
    for (const s of this.streams) this.write(s, ': heartbeat\n\n');
    // The replica's role is in the state and has no event of its own: look again on each beat.
    this.poke();
  }

  private write(s: Stream, chunk: string): void {
    if (s.res.writableLength > this.opts.maxBufferedBytes) {
      this.streams.delete(s);
      s.res.destroy();
      return;
    }
    s.res.write(chunk);
  }
}
