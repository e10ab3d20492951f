import { PassThrough, type Readable } from 'node:stream';
import { PeerError } from './errors.js';

/**
 * Passes a peer's body through, failing it when no byte arrives for `stallMs`: a peer that stops
 * sending is abandoned on progress, within a couple of seconds, never on a total deadline (a 40 GB
 * layer takes as long as it takes). `onBytes` counts what arrived, for metrics.
 */
export function guardStall(
  body: Readable,
  peer: string,
  stallMs: number,
  onBytes: (n: number) => void,
  onStall: () => void,
): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      onStall();
      const err = new PeerError('PEER_STALLED', peer, `${peer} sent nothing for ${stallMs} ms`);
      body.destroy(err);
      out.destroy(err);
    }, stallMs);
  };
  arm();
  body.on('data', (chunk: Buffer) => {
    onBytes(chunk.length);
    arm();
    // Backpressure: the timer waits on the peer, not on our own slow consumer.
    if (!out.write(chunk)) {
      clearTimeout(timer);
      body.pause();
      out.once('drain', () => {
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
