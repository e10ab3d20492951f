import { PassThrough, type Readable } from 'node:stream';
import { PeerError } from './errors.js';
import { RateWindow } from './rate-window.js';

export interface ProgressGuardOptions {
  /** No byte for this long and the body fails (PEER_STALLED). */
  stallMs: number;
  /**
   * Judge the rate too (only for a peer that holds the whole blob: docs/peers.md, "a slow peer"):
   * below `minBytesPerSecond` over `windowMs` and the body fails (PEER_SLOW). Absent: never.
   */
  slow?: { minBytesPerSecond: number; windowMs: number } | undefined;
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
  const rate = slow ? new RateWindow(slow.windowMs, now()) : undefined;
  let timer: NodeJS.Timeout | undefined;
  const fail = (err: PeerError) => {
    clearTimeout(timer);
    body.destroy(err);
    out.destroy(err);
  };
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      options.onStall();
      fail(new PeerError('PEER_STALLED', peer, `${peer} sent nothing for ${stallMs} ms`));
    }, stallMs);
  };
  arm();
  body.on('data', (chunk: Buffer) => {
    options.onBytes(chunk.length);
    arm();
    if (rate && slow) {
      const t = now();
      rate.add(chunk.length, t);
      const bps = rate.bytesPerSecond(t);
      if (bps !== undefined && bps < slow.minBytesPerSecond) {
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
      clearTimeout(timer);
      body.pause();
      out.once('drain', () => {
        rate?.restart(now());
        arm();
        body.resume();
      });
    }
  });
  body.once('end', () => {
    clearTimeout(timer);
    out.end();
  });
  body.once('error', (err) => {
    clearTimeout(timer);
    out.destroy(err);
  });
  body.once('close', () => {
    clearTimeout(timer);
    // A body closed without 'end' (the socket died) must not end cleanly downstream.
    if (!body.readableEnded && !out.destroyed)
      out.destroy(new PeerError('PEER_UNREACHABLE', peer, `${peer} closed the connection mid-body`));
  });
  out.once('close', () => {
    clearTimeout(timer);
    if (!body.destroyed) body.destroy();
  });
  return out;
}
