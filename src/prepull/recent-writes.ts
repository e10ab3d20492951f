/**
 * What this controller wrote and its informers may not show yet. A reconcile that ran on a cache
 * still missing our last write would see a node we just started as waiting and start another,
 * past maxConcurrentNodes; so until the cache shows the write (or `ttlMs` passes: someone else
 * changed the object since), reads go through this.
 */
export class RecentWrites<T> {
  private readonly entries = new Map<string, { value: T | null; at: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a write of `value` (null: a delete). */
  set(key: string, value: T | null): void {
    this.entries.set(key, { value, at: this.now() });
  }

  /**
   * What to believe about `key`: the cache's value once it shows the write (`shows`), else the
   * written one (undefined for a delete) until it expires.
   */
  read(key: string, cached: T | undefined, shows: (written: T, cached: T) => boolean): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return cached;
    const caughtUp =
      entry.value === null ? cached === undefined : cached !== undefined && shows(entry.value, cached);
    if (caughtUp || this.now() - entry.at > this.ttlMs) {
      this.entries.delete(key);
      return cached;
    }
    return entry.value ?? undefined;
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
