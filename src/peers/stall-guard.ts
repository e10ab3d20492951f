import { PassThrough, type Readable } from 'node:stream';
import { PeerError } from './errors.js';
import type { IncomingRates } from './incoming-rates.js';
import { RateWindow } from './rate-window.js';

export interface ProgressGuardOptions {
  /** No byte for this long and the body fails (PEER_STALLED). */
  stallMs: number;
  /**
   * Judge the rate too (only for a peer that holds the whole blob: docs/peers.md, "a slow peer"):
   * below `minBytesPerSecond` over `windowMs` and the body fails (PEER_SLOW). Absent: never.
   */
  slow?: { minBytesPerSecond: number; windowMs: number } | undefined;
  /**
   * This node's concurrent peer bodies (incoming-rates.ts): this body is counted there, judged or
   * not, and a slow verdict on it waits while every other peer's body is as slow.
   */
  incoming?: IncomingRates | undefined;
  onBytes: (n: number) => void;
  onStall: () => void;
  onSlow: (bytesPerSecond: number) => void;
  now?: () => number;
}

/**
 * Passes a peer's body through, failing it when no byte arrives for `stallMs`, or, when asked,
 * when it arrives too slowly: a peer is abandoned on progress, within seconds, never on a total
 * deadline (a 40 GB layer takes as long as it takes). Time spent waiting on our own consumer
 * (backpressure) counts against neither.
 */
export function guardStall(body: Readable, peer: string, options: ProgressGuardOptions): Readable {
  const { stallMs, slow } = options;
  const now = options.now ?? (() => performance.now());
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const tracked = options.incoming?.track(peer, now());
  // Judged over this node's record of the body when there is one (it restarts when the link's
  // sharing changes), else over a window of its own.
  const rate = slow ? (tracked ?? new RateWindow(slow.windowMs, now())) : undefined;
  let timer: NodeJS.Timeout | undefined;
  let verdict: NodeJS.Immediate | undefined;
  const disarm = () => {
    clearTimeout(timer);
    clearImmediate(verdict);
  };
  const fail = (err: PeerError) => {
    disarm();
    tracked?.close(now());
    body.destroy(err);
    out.destroy(err);
  };
  const arm = () => {
    disarm();
    timer = setTimeout(() => {
      // Not yet: after this process could not run for a while (a loaded machine), the event loop
      // runs expired timers before it reads the sockets, so bytes that did arrive meanwhile are
      // not seen yet. The verdict waits for the I/O phase: a byte found there re-arms the timer
      // and cancels it (Node's event loop: timers, then poll, then setImmediate callbacks).
      verdict = setImmediate(() => {
        options.onStall();
        fail(new PeerError('PEER_STALLED', peer, `${peer} sent nothing for ${stallMs} ms`));
      });
    }, stallMs);
  };
  arm();
  body.on('data', (chunk: Buffer) => {
    options.onBytes(chunk.length);
    arm();
    const t = now();
    (tracked ?? rate)?.add(chunk.length, t);
    if (rate && slow) {
      const bps = rate.bytesPerSecond(t);
      if (
        bps !== undefined &&
        bps < slow.minBytesPerSecond &&
        !(tracked && options.incoming?.contended(tracked, slow.minBytesPerSecond, t))
      ) {
        options.onSlow(bps);
        fail(
          new PeerError(
            'PEER_SLOW',
            peer,
            `${peer} sent ${Math.round(bps)} B/s over ${slow.windowMs} ms, below ${slow.minBytesPerSecond}`,
          ),
        );
        return;
      }
    }
    // Backpressure: the timers wait on the peer, not on our own slow consumer.
    if (!out.write(chunk)) {
      disarm();
      body.pause();
      out.once('drain', () => {
        (tracked ?? rate)?.restart(now());
        arm();
        body.resume();
      });
    }
  });
  body.once('end', () => {
    disarm();
    tracked?.close(now());
    out.end();
  });
  body.once('error', (err) => {
    disarm();
    tracked?.close(now());
    out.destroy(err);
  });
  body.once('close', () => {
    disarm();
    tracked?.close(now());
    // A body closed without 'end' (the socket died) must not end cleanly downstream.
    if (!body.readableEnded && !out.destroyed)
      out.destroy(new PeerError('PEER_UNREACHABLE', peer, `${peer} closed the connection mid-body`));
  });
  out.once('close', () => {
    disarm();
    tracked?.close(now());
    if (!body.destroyed) body.destroy();
  });
  return out;
}
