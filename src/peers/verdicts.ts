/**
 * This node's own downloads that failed their digest, and whom it blamed for them, so that the
 * nodes it relayed those bytes to can ask (`GET /peer/v1/verdicts/<digest>`, docs/peers.md "a
 * peer sends bad bytes"). A relay holds back a blob's last byte until its own check passed, so a
 * node below it never gets a complete bad body from it: it gets an aborted one, resumes elsewhere,
 * and its own check fails on the prefix. Only then does it know that something it received was
 * wrong, and from the digest alone (which proves only the whole) it cannot tell which sender. The
 * relay's own verdict tells it: "I refused this blob myself; my sources were these".
 */
export interface Verdict {
  /** This node's own download of the blob failed its digest (or its size). */
  rejected: boolean;
  /** The sources it blamed (peer URLs; none when its bytes came from its upstream). */
  blamed: string[];
}

export interface VerdictsOptions {
  /** How long a verdict is kept: as long as the peers it blamed are avoided. */
  keepMs: number;
  /** Verdicts kept at once (oldest forgotten first). */
  max?: number;
  now?: () => number;
}

interface Entry {
  at: number;
  /** Resolves once this node has attributed the failure (asked its own senders in turn). */
  blamed: Promise<string[]>;
}

export class Verdicts {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(private readonly options: VerdictsOptions) {
    this.now = options.now ?? Date.now;
  }

  /** This node's download of `digest` failed its check; `blamed` settles once attributed. */
  record(digest: string, blamed: Promise<string[]>): void {
    this.entries.delete(digest);
    const max = this.options.max ?? 1_000;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size < max) break;
      this.entries.delete(oldest);
    }
    // Never rejects: an attribution that failed blames every sender (peer-source.ts).
    this.entries.set(digest, { at: this.now(), blamed: blamed.catch(() => []) });
  }

  /**
   * Resolves when a failure of `digest` recorded here has been attributed (at once if there is
   * none): a new download of it waits, so that it does not ask a peer about to be quarantined,
   * nor avoid one about to be cleared.
   */
  async attributed(digest: string): Promise<void> {
    const entry = this.live(digest);
    if (entry) await entry.blamed;
  }

  /** What this node concluded about its own download of `digest` (waits for the attribution). */
  async verdict(digest: string): Promise<Verdict> {
    const entry = this.live(digest);
    if (!entry) return { rejected: false, blamed: [] };
    return { rejected: true, blamed: await entry.blamed };
  }

  private live(digest: string): Entry | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    if (this.now() - entry.at > this.options.keepMs) {
      this.entries.delete(digest);
      return undefined;
    }
    return entry;
  }
}

/** A verdict as a peer sent it, or undefined when it is not one (then its sender is blamed). */
export function parseVerdict(value: unknown): Verdict | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { rejected, blamed } = value as { rejected?: unknown; blamed?: unknown };
  if (typeof rejected !== 'boolean' || !Array.isArray(blamed)) return undefined;
  if (!blamed.every((b): b is string => typeof b === 'string')) return undefined;
  return { rejected, blamed };
}
