import type { Server } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * Accepting waiting connections before sending more bytes on the ones already accepted.
 *
 * Node 20's libuv accepts one connection per event-loop turn (libuv 1.45+, "don't accept()
 * connections in a loop", libuv PR #3696; seen with strace: one `accept4` after each
 * `epoll_pwait`, never repeated until EAGAIN). A turn in which a thousand responses
 * send takes tens of milliseconds, so a burst of new connections (a rollout: every pod's
 * containerd at once; `wrk -c1000`) left the kernel's accept queue at about 40 a second:
 * connections waited 10–20 s before their first request was even read, while the ones already
 * accepted were served again and again. Fair queueing among accepted responses (send-budget.ts)
 * cannot help a connection that is not accepted yet.
 *
 * So when a turn accepts a connection (another is probably waiting), the send budget grants no new
 * buffer until a turn accepts none. Such turns do little (writes already under way complete;
 * new requests are parsed and queue for a buffer, in order), take microseconds, and the accept
 * queue drains at thousands a second. A hold lasts at most `maxHoldMs`, and every hold is followed
 * by at least as long again of sending (never less than `minServeMs`), so a steady flood of new
 * connections (a reconnect loop, a port scan) at worst halves the time spent sending: it slows
 * responses down but cannot stop them.
 */
export interface AcceptGateOptions {
  /** Longest a hold may last (default 250 ms). */
  maxHoldMs?: number;
  /** After a hold, sending goes on at least this long, or as long as the hold if longer (default 50 ms). */
  minServeMs?: number;
  /** Called when a hold ends, with its length and whether maxHoldMs cut it short. */
  onHold?: (ms: number, capped: boolean) => void;
}

/** What the gate holds: the mirror's SendBudget. */
export interface Holdable {
  hold(): () => void;
}

export const DEFAULT_MAX_HOLD_MS = 250;
export const DEFAULT_MIN_SERVE_MS = 50;

export class AcceptGate {
  private readonly maxHoldMs: number;
  private readonly minServeMs: number;
  private accepts = 0;
  private seen = 0;
  private release: (() => void) | undefined;
  private heldSince = 0;
  /** Until when a new hold may not start (set when a hold ends). */
  private servingUntil = 0;
  private timer: NodeJS.Immediate | undefined;
  private stopped = false;

  constructor(
    private readonly server: Server,
    private readonly budget: Holdable,
    private readonly options: AcceptGateOptions = {},
  ) {
    this.maxHoldMs = options.maxHoldMs ?? DEFAULT_MAX_HOLD_MS;
    this.minServeMs = options.minServeMs ?? DEFAULT_MIN_SERVE_MS;
    server.on('connection', this.onConnection);
  }

  /** Ends any hold and stops watching the server. */
  close(): void {
    this.stopped = true;
    this.server.off('connection', this.onConnection);
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
    this.end(false);
  }

  private readonly onConnection = (): void => {
    this.accepts += 1;
    if (this.release || this.stopped) return;
    const now = performance.now();
    if (now < this.servingUntil) return;
    this.release = this.budget.hold();
    this.heldSince = now;
    // The accept that started the hold happened in this turn's poll phase; the check runs in this
    // turn's check phase and sees it, so the hold lasts at least into the next turn.
    this.seen = this.accepts - 1;
    this.timer = setImmediate(this.check);
  };

  /** Runs after each turn's poll phase while holding: goes on holding while turns accept. */
  private readonly check = (): void => {
    this.timer = undefined;
    if (this.stopped || !this.release) return;
    const accepted = this.accepts > this.seen;
    this.seen = this.accepts;
    const held = performance.now() - this.heldSince;
    if (accepted && held < this.maxHoldMs) {
      this.timer = setImmediate(this.check);
      return;
    }
    this.servingUntil = performance.now() + Math.max(this.minServeMs, held);
    this.end(accepted);
  };

  private end(capped: boolean): void {
    const release = this.release;
    if (!release) return;
    this.release = undefined;
    release();
    this.options.onHold?.(performance.now() - this.heldSince, capped);
  }
}
