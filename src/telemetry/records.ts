/** The records pull telemetry keeps and the summaries built from them. Pure. */

export interface PullRecord {
  namespace: string;
  pod: string;
  node: string;
  image: string;
  registry: string;
  via: 'hoist' | 'direct';
  outcome: 'pulled' | 'failed';
  cause?: string;
  seconds?: number;
  bytes?: number;
  /** ISO time: the event's last timestamp, else when it was seen. */
  at: string;
}

export interface PullSummary {
  image: string;
  via: 'hoist' | 'direct';
  count: number;
  medianSeconds: number;
  p90Seconds: number;
}

export interface PullTelemetrySource {
  /** Newest first. */
  recent(limit: number): PullRecord[];
  /** Slowest successful pulls among the recent ones (the ring buffer). */
  slowest(limit: number): PullRecord[];
  /** Per image and via, over the recent pulls: the same image before and after Hoist. */
  summary(): PullSummary[];
  /** Live updates; returns the unsubscribe function. */
  onRecord(cb: (r: PullRecord) => void): () => void;
}

/** A fixed-size ring: the newest `capacity` items, memory bounded whatever the cluster emits. */
export class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`ring capacity ${capacity}`);
  }

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else this.items[this.next] = item;
    this.next = (this.next + 1) % this.capacity;
  }

  clear(): void {
    this.items.length = 0;
    this.next = 0;
  }

  get size(): number {
    return this.items.length;
  }

  /** Oldest first. */
  toArray(): T[] {
    if (this.items.length < this.capacity) return [...this.items];
    return [...this.items.slice(this.next), ...this.items.slice(0, this.next)];
  }
}

/** Nearest-rank quantile of sorted values (the analyzer's pull report uses the same rule). */
function quantile(sorted: readonly number[], q: number): number {
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? 0;
}

const byTimeDesc = (a: PullRecord, b: PullRecord) => b.at.localeCompare(a.at);

export function newest(records: readonly PullRecord[], limit: number): PullRecord[] {
  return [...records].sort(byTimeDesc).slice(0, Math.max(0, limit));
}

export function slowest(records: readonly PullRecord[], limit: number): PullRecord[] {
  return records
    .filter((r) => r.outcome === 'pulled' && r.seconds !== undefined)
    .sort((a, b) => (b.seconds ?? 0) - (a.seconds ?? 0) || byTimeDesc(a, b))
    .slice(0, Math.max(0, limit));
}

/** Successful, timed pulls per image and via; sorted by image, then hoist before direct. */
export function summarise(records: readonly PullRecord[]): PullSummary[] {
  const groups = new Map<string, { image: string; via: PullRecord['via']; seconds: number[] }>();
  for (const r of records) {
    if (r.outcome !== 'pulled' || r.seconds === undefined) continue;
    const key = `${r.image}\n${r.via}`;
    const g = groups.get(key) ?? { image: r.image, via: r.via, seconds: [] };
    g.seconds.push(r.seconds);
    groups.set(key, g);
  }
  return [...groups.values()]
    .map((g) => {
      const sorted = g.seconds.sort((a, b) => a - b);
      return {
        image: g.image,
        via: g.via,
        count: sorted.length,
        medianSeconds: quantile(sorted, 0.5),
        p90Seconds: quantile(sorted, 0.9),
      };
    })
    .sort((a, b) => a.image.localeCompare(b.image) || a.via.localeCompare(b.via));
}
