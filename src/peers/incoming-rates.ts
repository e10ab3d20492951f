import { RateWindow } from './rate-window.js';

/** One peer body being received, as IncomingRates sees it. */
export interface IncomingBody {
  readonly peer: string;
  add(bytes: number, nowMs: number): void;
  /** Time spent waiting on our own consumer is not the link's: measure afresh. */
  restart(nowMs: number): void;
  /** Its rate over the last full window (rate-window.ts), or undefined before one was measured. */
  bytesPerSecond(nowMs: number): number | undefined;
  close(nowMs: number): void;
}

/**
 * The peer bodies this node receives at once, each with its rate over the slow-peer window, so a
 * slow verdict can tell "that peer is slow" from "this node is" (docs/peers.md, "a slow peer",
 * failure cases): when every other body this node is receiving from other peers is below the
 * floor too, the common factor is this node's own downlink (parallel layer pulls sharing it), its
 * CPU or disk, and leaving the peer would only send the same saturated link to the upstream. A
 * body from another peer at or above the floor is the evidence that this node's link can do better.
 */
export class IncomingRates {
  private readonly bodies = new Map<IncomingBody, RateWindow>();

  constructor(private readonly windowMs: number) {}

  track(peer: string, nowMs: number): IncomingBody {
    const rate = new RateWindow(this.windowMs, nowMs);
    const body: IncomingBody = {
      peer,
      add: (bytes, t) => rate.add(bytes, t),
      restart: (t) => rate.restart(t),
      bytesPerSecond: (t) => rate.bytesPerSecond(t),
      close: (t) => {
        if (!this.bodies.delete(body)) return;
        // The link is shared by one body fewer: what the others measured while sharing it no
        // longer says what they get now, so they measure afresh (else the last body of a
        // parallel pull would be judged alone on a rate it got while sharing).
        for (const other of this.bodies.values()) other.restart(t);
      },
    };
    this.bodies.set(body, rate);
    return body;
  }

  /**
   * Whether a slow verdict on `body` should wait: other bodies from other peers are running, and
   * none of them shows a rate at or above `floor` (one not yet measured shows nothing either way).
   * With no other body running, there is nothing to compare with, and the verdict stands.
   */
  contended(body: IncomingBody, floor: number, nowMs: number): boolean {
    let others = 0;
    for (const [other, rate] of this.bodies) {
      if (other === body || other.peer === body.peer) continue;
      others++;
      const bps = rate.bytesPerSecond(nowMs);
      if (bps !== undefined && bps >= floor) return false;
    }
    return others > 0;
  }

  get size(): number {
    return this.bodies.size;
  }
}
