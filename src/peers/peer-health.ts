/**
 * What one node has seen of its peers. A peer that refused a connection or timed out is "down"
 * for a short while, so that the next miss does not pay for it again (a miss must cost
 * milliseconds: Spegel's users report seconds per miss). A peer that sent bytes failing their
 * digest, or that stalled, is "quarantined" for longer and for every blob: the digest is the only
 * proof, and evidence, not a fixed long timeout, decides whom to avoid.
 */
export interface PeerHealthOptions {
  downMs: number;
  quarantineMs: number;
  /** How long a peer left for being slow is avoided. */
  slowMs: number;
  now?: () => number;
}

export type PeerProblem = 'down' | 'slow' | 'quarantined';

export class PeerHealth {
  private readonly until = new Map<string, { problem: PeerProblem; until: number; reason: string }>();
  private readonly now: () => number;

  constructor(private readonly options: PeerHealthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Could not reach it (refused, reset before an answer, connect timeout). */
  markDown(peer: string, reason: string): void {
    this.mark(peer, 'down', this.options.downMs, reason);
  }

  /** Held the whole blob yet sent it too slowly (docs/peers.md, "a slow peer"): avoided a while. */
  demote(peer: string, reason: string): void {
    this.mark(peer, 'slow', this.options.slowMs, reason);
  }

  private mark(peer: string, problem: 'down' | 'slow', ms: number, reason: string): void {
    const current = this.until.get(peer);
    const until = this.now() + ms;
    // A longer problem is not shortened by a later, milder one.
    if (current && current.problem !== 'down' && current.until > until) return;
    this.until.set(peer, { problem, until, reason });
  }

  /** Sent bytes that failed their digest, or stopped sending: avoided for every blob. */
  quarantine(peer: string, reason: string): void {
    this.until.set(peer, { problem: 'quarantined', until: this.now() + this.options.quarantineMs, reason });
  }

  /** A request to it worked: it is up again. Quarantine still runs its course. */
  markUp(peer: string): void {
    if (this.until.get(peer)?.problem === 'down') this.until.delete(peer);
  }

  usable(peer: string): boolean {
    return this.problem(peer) === undefined;
  }

  problem(peer: string): { problem: PeerProblem; reason: string; untilMs: number } | undefined {
    const entry = this.until.get(peer);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.until.delete(peer);
      return undefined;
    }
    return { problem: entry.problem, reason: entry.reason, untilMs: entry.until };
  }

  /** Forgets peers that left the membership, so the map stays as small as the cluster. */
  retain(members: ReadonlySet<string>): void {
    for (const peer of this.until.keys()) if (!members.has(peer)) this.until.delete(peer);
  }
}
