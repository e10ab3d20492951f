import { PassThrough, type Readable } from 'node:stream';
import type { IncomingRates } from './incoming-rates.js';

/**
 * The name this node's upstream bodies carry in IncomingRates: never a peer URL, so a slow verdict
 * on a peer compares with them as with another peer's body.
 */
export const UPSTREAM_BODY = 'upstream';

/**
 * Counts an upstream body of this node in `incoming`, so that a slow verdict on a peer can compare
 * with it (docs/peers.md, "a slow self"). It matters most with one peer (a 2-node cluster), where
 * no other peer's body exists to compare with: the only other source is the upstream, and when
 * this node's own upstream body runs below the floor too, the common factor is this node (its
 * downlink, its CPU), and leaving the peer for a ranged upstream GET would gain nothing and cost
 * an upstream copy. Never judged, never stalled here (the upstream has its own stall timer); time
 * spent waiting on our own consumer restarts its window, as for a peer body.
 */
export function tapUpstream(body: Readable, incoming: IncomingRates, now: () => number): Readable {
  const tracked = incoming.track(UPSTREAM_BODY, now());
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const close = () => tracked.close(now());
  body.on('data', (chunk: Buffer) => {
    tracked.add(chunk.length, now());
    if (!out.write(chunk)) {
      body.pause();
      out.once('drain', () => {
        tracked.restart(now());
        body.resume();
      });
    }
  });
  body.once('end', () => {
    close();
    out.end();
  });
  body.once('error', (err) => {
    close();
    out.destroy(err);
  });
  body.once('close', () => {
    close();
    // A body closed without 'end' (the socket died) must not end cleanly downstream.
    if (!body.readableEnded && !out.destroyed) out.destroy(new Error('upstream body closed before its end'));
  });
  out.once('close', () => {
    close();
    if (!body.destroyed) body.destroy();
  });
  return out;
}
