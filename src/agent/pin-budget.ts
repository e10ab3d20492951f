/**
 * The node's pin budget (`--pin-budget-bytes`): pinned images are never garbage-collected by the
 * kubelet, so their total is capped. Pins are granted in the order images become present and
 * never taken back to make room for a later one, so a pin does not flap; withdrawing an image (or
 * its pin) frees its share. Pure.
 */
export class PinBudget {
  private readonly granted = new Map<string, number>();

  /** `limitBytes` undefined: unlimited. */
  constructor(readonly limitBytes: number | undefined) {}

  get usedBytes(): number {
    let sum = 0;
    for (const bytes of this.granted.values()) sum += bytes;
    return sum;
  }

  has(image: string): boolean {
    return this.granted.has(image);
  }

  /** Grants (or keeps) the image's share; undefined when granted, else why not (one line). */
  grant(image: string, bytes: number): string | undefined {
    if (this.granted.has(image)) {
      this.granted.set(image, bytes);
      return undefined;
    }
    const used = this.usedBytes;
    if (this.limitBytes !== undefined && used + bytes > this.limitBytes) {
      return `not pinned: its ${bytes} bytes would take the pinned images past --pin-budget-bytes ${this.limitBytes} (${used} bytes pinned)`;
    }
    this.granted.set(image, bytes);
    return undefined;
  }

  release(image: string): void {
    this.granted.delete(image);
  }
}
