// A fake for the agent's injectable timers (src/agent/timers.ts): nothing fires until the test
// advances time, so retries, timeouts and reading intervals are tested without sleeping.
import type { Timers } from '../../src/agent/timers.js';

/** Timers that fire only when the test advances time. */
export class ManualClock implements Timers {
  nowMs = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  private nextId = 1;
  now = (): number => this.nowMs;
  date = (): Date => new Date(Date.UTC(2026, 0, 1) + this.nowMs);
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.nowMs + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Delays of the timers waiting, soonest first. */
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.nowMs).sort((a, b) => a - b);
  }
  /** Fires every timer due within `ms`, in order, letting the promises each one starts settle. */
  async advance(ms: number): Promise<void> {
    const until = this.nowMs + ms;
    while (true) {
      const due = [...this.pending.entries()]
        .filter(([, t]) => t.at <= until)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.nowMs = due[1].at;
      due[1].fn();
      await settle();
    }
    this.nowMs = until;
    await settle();
  }
}

/** Lets pending promise chains run: a few turns of the event loop, no wall-clock wait. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}
