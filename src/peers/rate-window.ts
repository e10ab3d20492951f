/**
 * Bytes per second over a sliding window, for judging a peer slow on progress rather than on a
 * total deadline (docs/peers.md, "a slow peer"). The window is cut into slots; the rate is the sum
 * of the last `slots` complete slots over the window, so one burst or one gap of a slot's length
 * does not decide. Until a whole window has been measured there is no rate, and `restart` begins
 * measuring afresh: the caller restarts after time spent waiting on its own consumer, which must
 * not count against the peer. Pure: the caller passes the clock.
 */
export class RateWindow {
  private readonly slotMs: number;
  /** Bytes per slot, oldest first; the last is the slot now running. */
  private counts: number[] = [0];
  private slotStart: number;

  constructor(
    private readonly windowMs: number,
    nowMs: number,
    private readonly slots = 4,
  ) {
    if (!(windowMs > 0) || !Number.isInteger(slots) || slots < 1)
      throw new RangeError('RateWindow needs windowMs > 0 and a whole number of slots >= 1');
    this.slotMs = windowMs / slots;
    this.slotStart = nowMs;
  }

  restart(nowMs: number): void {
    this.counts = [0];
    this.slotStart = nowMs;
  }

  add(bytes: number, nowMs: number): void {
    this.advance(nowMs);
    this.counts[this.counts.length - 1] = (this.counts.at(-1) ?? 0) + bytes;
  }

  /** Bytes per second over the last full window, or undefined while less than one was measured. */
  bytesPerSecond(nowMs: number): number | undefined {
    this.advance(nowMs);
    if (this.counts.length <= this.slots) return undefined;
    let sum = 0;
    for (let i = this.counts.length - 1 - this.slots; i < this.counts.length - 1; i++)
      sum += this.counts[i] ?? 0;
    return (sum * 1000) / this.windowMs;
  }

  private advance(nowMs: number): void {
    const passed = Math.floor((nowMs - this.slotStart) / this.slotMs);
    if (passed <= 0) return;
    // A gap longer than the window adds empty slots only up to what the window can hold.
    for (let i = 0; i < Math.min(passed, this.slots + 1); i++) this.counts.push(0);
    this.slotStart += passed * this.slotMs;
    if (this.counts.length > this.slots + 1) this.counts.splice(0, this.counts.length - this.slots - 1);
  }
}
