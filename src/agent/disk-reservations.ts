import type { DiskReading } from './disk-mark.js';

/**
 * Space promised to pulls that the disk readings do not show yet, so that pulls running side by
 * side, or one right after another, cannot each count on the same free space.
 *
 * - statfs (percent marks) is live: a pull's bytes count from its start until it ends.
 * - ImageFsInfo (byte marks) lags: containerd's CRI plugin re-measures snapshots every
 *   stats_collect_period (10 s by default) and reports the oldest measurement time as the
 *   timestamp (pkg/cri/server/imagefs_info.go). A finished pull's bytes therefore stay reserved
 *   until a reading shows it: two readings with different timestamps, both after the pull ended.
 *   The first may come from a sync whose snapshot walk began before the pull ended; the second
 *   comes from a later sync, which began after the first one finished. (On a node with no
 *   snapshots at all containerd stamps the reading "now", so there the release can come one
 *   stats period early.)
 */

interface Reservation {
  imageFsBytes: number;
  diskBytes: number;
  /** Set when the pull succeeded (ns since the epoch). */
  finishedAtNs?: number;
  /** The first reading timestamp seen after the pull finished. */
  firstTimestampAfterNs?: number;
}

export class DiskReservations {
  private readonly entries = new Map<number, Reservation>();
  private nextId = 1;

  constructor(private readonly nowNs: () => number) {}

  reserve(imageFsBytes: number, diskBytes: number): number {
    const id = this.nextId++;
    this.entries.set(id, { imageFsBytes, diskBytes });
    return id;
  }

  /** The pull ended: a failed one frees its reservation, a pulled one waits for the runtime to count it. */
  finish(id: number, ok: boolean): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (!ok) this.entries.delete(id);
    else entry.finishedAtNs = this.nowNs();
  }

  /** Bytes reserved beyond what `reading` counts; drops reservations the readings now show. */
  outstanding(reading: Pick<DiskReading, 'timestampNs'>): { imageFsBytes: number; diskBytes: number } {
    let imageFsBytes = 0;
    let diskBytes = 0;
    const ts = reading.timestampNs;
    for (const [id, entry] of this.entries) {
      if (entry.finishedAtNs === undefined) {
        imageFsBytes += entry.imageFsBytes;
        diskBytes += entry.diskBytes;
        continue;
      }
      if (ts !== undefined && ts > entry.finishedAtNs) {
        if (entry.firstTimestampAfterNs === undefined) entry.firstTimestampAfterNs = ts;
        else if (ts !== entry.firstTimestampAfterNs) {
          this.entries.delete(id);
          continue;
        }
      }
      imageFsBytes += entry.imageFsBytes;
    }
    return { imageFsBytes, diskBytes };
  }

  get size(): number {
    return this.entries.size;
  }
}
