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
  now?: () => number;
}

export type PeerProblem = 'down' | 'quarantined';

export class PeerHealth {
  private readonly until = new Map<string, { problem: PeerProblem; until: number; reason: string }>();
  private readonly now: () => number;

  constructor(private readonly options: PeerHealthOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Could not reach it (refused, reset before an answer, connect timeout). */
  markDown(peer: string, reason: string): void {
    const current = this.until.get(peer);
    const until = this.now() + this.options.downMs;
    // A quarantine is not shortened by a later, milder problem.
    if (current?.problem === 'quarantined' && current.until > until) return;
    this.until.set(peer, { problem: 'down', until, reason });
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
