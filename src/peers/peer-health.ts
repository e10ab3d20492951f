/**
 * What one node has seen of its peers. A peer that refused a connection or timed out is "down"
 * for a short while, so that the next miss does not pay for it again (a miss must cost
 * milliseconds: Spegel's users report seconds per miss). A peer that sent bytes failing their
 * digest, or that stalled, is "quarantined" for longer and for every blob: the digest is the only
 * proof, and evidence, not a fixed long timeout, decides whom to avoid. A peer that held a blob
 * whole but sent it too slowly is "slow" for that blob only (see `demote`).
 */
export interface PeerHealthOptions {
  downMs: number;
  quarantineMs: number;
  /** How long a peer left for being slow is avoided for that blob. */
  slowMs: number;
  /** Blobs with a slow verdict remembered at once (oldest forgotten first). */
  maxSlowBlobs?: number;
  /** A peer that answered or sent a byte within this long is alive (see `alive`). */
  aliveMs?: number;
  now?: () => number;
}

export type PeerProblem = 'down' | 'slow' | 'quarantined';

interface Entry {
  until: number;
  reason: string;
}

export class PeerHealth {
  private readonly until = new Map<string, Entry & { problem: 'down' | 'quarantined' }>();
  /** Per blob: the peers left for being slow while sending it (digest → peer → entry). */
  private readonly slow = new Map<string, Map<string, Entry>>();
  /** When each peer last answered or sent a byte. */
  private readonly lastHeard = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly options: PeerHealthOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Held the whole of `digest` yet sent it too slowly (docs/peers.md, "a slow peer"): avoided for
   * that blob only, a while. One body is evidence about one transfer; the peer stays the fetcher
   * (and a source) for every other blob, so one verdict never moves other blobs to other fetchers.
   */
  demote(peer: string, digest: string, reason: string): void {
    let peers = this.slow.get(digest);
    if (!peers) {
      const max = this.options.maxSlowBlobs ?? 10_000;
      for (const oldest of this.slow.keys()) {
        if (this.slow.size < max) break;
        this.slow.delete(oldest);
      }
      peers = new Map();
      this.slow.set(digest, peers);
    }
    peers.set(peer, { until: this.now() + this.options.slowMs, reason });
  }

  /** The peers left for being slow on `digest`, still avoided for it. */
  slowFor(digest: string): Set<string> {
    const peers = this.slow.get(digest);
    const out = new Set<string>();
    if (!peers) return out;
    const now = this.now();
    for (const [peer, entry] of peers) {
      if (entry.until <= now) peers.delete(peer);
      else out.add(peer);
    }
    if (peers.size === 0) this.slow.delete(digest);
    return out;
  }

  /** Could not reach it (refused, reset before an answer, connect timeout). */
  markDown(peer: string, reason: string): void {
    const current = this.until.get(peer);
    const until = this.now() + this.options.downMs;
    // A longer problem is not shortened by a later, milder one.
    if (current && current.problem !== 'down' && current.until > until) return;
    this.until.set(peer, { problem: 'down', until, reason });
  }

  /** Sent bytes that failed their digest, or stopped sending: avoided for every blob. */
  quarantine(peer: string, reason: string): void {
    this.until.set(peer, { problem: 'quarantined', until: this.now() + this.options.quarantineMs, reason });
  }

  /** A request to it worked: it is up again. Quarantine still runs its course. */
  markUp(peer: string): void {
    this.heard(peer);
    if (this.until.get(peer)?.problem === 'down') this.until.delete(peer);
  }

  /** It sent bytes just now. */
  heard(peer: string): void {
    this.lastHeard.set(peer, this.now());
  }

  /**
   * Answered or sent a byte within `aliveMs` (default 10 s): one failed request to it is more
   * likely the path's (a lost SYN, a kept-alive connection closing) than its death, and is worth
   * asking again before the peer is marked down and its blobs go to the upstream.
   */
  alive(peer: string): boolean {
    const at = this.lastHeard.get(peer);
    return at !== undefined && this.now() - at <= (this.options.aliveMs ?? 10_000);
  }

  /** Neither down nor quarantined (a peer slow on some blobs is still usable for the others). */
  usable(peer: string): boolean {
    return this.avoided(peer) === undefined;
  }

  private avoided(peer: string): (Entry & { problem: 'down' | 'quarantined' }) | undefined {
    const entry = this.until.get(peer);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.until.delete(peer);
      return undefined;
    }
    return entry;
  }

  /**
   * What is wrong with `peer`, for the status view: down or quarantined, else `slow` while some
   * blob avoids it (the last verdict's reason, and how many blobs).
   */
  problem(peer: string): { problem: PeerProblem; reason: string; untilMs: number } | undefined {
    const entry = this.avoided(peer);
    if (entry) return { problem: entry.problem, reason: entry.reason, untilMs: entry.until };
    let last: Entry | undefined;
    let blobs = 0;
    for (const digest of [...this.slow.keys()]) {
      if (!this.slowFor(digest).has(peer)) continue;
      const e = this.slow.get(digest)?.get(peer);
      if (!e) continue;
      blobs++;
      if (!last || e.until > last.until) last = e;
    }
    if (!last) return undefined;
    const reason = `${last.reason} (avoided for ${blobs} blob${blobs === 1 ? '' : 's'})`;
    return { problem: 'slow', reason, untilMs: last.until };
  }

  /** Forgets peers that left the membership, so the maps stay as small as the cluster. */
  retain(members: ReadonlySet<string>): void {
    for (const peer of this.until.keys()) if (!members.has(peer)) this.until.delete(peer);
    for (const peer of this.lastHeard.keys()) if (!members.has(peer)) this.lastHeard.delete(peer);
    for (const [digest, peers] of this.slow) {
      for (const peer of peers.keys()) if (!members.has(peer)) peers.delete(peer);
      if (peers.size === 0) this.slow.delete(digest);
    }
  }
}
