import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: every node ranks the same peers for a digest in the
 * same order, from nothing but the digest and the member list, so the cluster agrees on which node
 * fetches a blob from the upstream without talking about it. When a member joins or leaves, only
 * the digests whose top-ranked member changed move (Thaler and Ravishankar, "Using name-based
 * mappings to increase hit rates", 1998).
 */
export function rankPeers(digest: string, peers: Iterable<string>): string[] {
  const scored: Array<{ id: string; score: bigint }> = [];
  const seen = new Set<string>();
  for (const id of peers) {
    if (seen.has(id)) continue;
    seen.add(id);
    scored.push({ id, score: weight(digest, id) });
  }
  // Ties (a 64-bit collision) fall back to the id, so the order is still the same everywhere.
  scored.sort((a, b) => (a.score === b.score ? (a.id < b.id ? -1 : 1) : a.score > b.score ? -1 : 1));
  return scored.map((s) => s.id);
}

/** The peer that fetches `digest` from the upstream, or undefined with no members. */
export function fetcherFor(digest: string, peers: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const id of peers) {
    const score = weight(digest, id);
    if (score > bestScore || (score === bestScore && best !== undefined && id < best)) {
      best = id;
      bestScore = score;
    }
  }
  return best;
}

function weight(digest: string, id: string): bigint {
  // SHA-256 rather than a faster hash: a few microseconds per member and digest is nothing beside
  // a network request, and it spreads any digest and address evenly.
  return createHash('sha256').update(digest).update('\n').update(id).digest().readBigUInt64BE(0);
}
