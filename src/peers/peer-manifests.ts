import type { Logger } from 'pino';
import { digestOf, type Digest } from '../oci/index.js';
import { PeerError } from './errors.js';
import type { PeerClient } from './peer-client.js';
import type { PeerHealth } from './peer-health.js';
import type { PeerMetrics } from './metrics.js';
import type { Membership } from './membership.js';
import { rankPeers } from './rendezvous.js';

/**
 * Peers asked, one after another, for a manifest the upstream could not serve. A manifest is held
 * by every node that pulled it (not by a rendezvous fetcher), so the holder can rank anywhere; a
 * peer without it answers 404 from its store at once, so asking several costs milliseconds.
 */
const MAX_PEERS_PER_MANIFEST = 8;

/**
 * How long one peer has to send a manifest. A peer answers from its own store (never fetching),
 * so milliseconds; one that accepts and then says nothing must not hold the client's request for
 * the peer client's header timeout (30 s, meant for fetchers waiting on their upstream) before the
 * next peer is asked: a miss costs milliseconds, a hung peer at most this.
 */
export const PEER_MANIFEST_TIMEOUT_MS = 2_000;

export interface PeerManifest {
  body: Buffer;
  contentType: string | undefined;
  peer: string;
}

export interface PeerManifestsDeps {
  membership: Membership;
  health: PeerHealth;
  client: Pick<PeerClient, 'getManifest'>;
  metrics: PeerMetrics;
  logger: Logger;
}

/**
 * A manifest by digest from the peers' own stores (docs/peers.md, "Manifests by digest during an
 * upstream outage"), for a node whose upstream is unreachable. Only bytes whose digest matches are
 * returned; a peer that sends others is quarantined, as for a bad blob. Undefined when no peer has it.
 */
export async function manifestFromPeers(
  deps: PeerManifestsDeps,
  upstream: string,
  repo: string,
  digest: Digest,
  signal?: AbortSignal,
  timeoutMs = PEER_MANIFEST_TIMEOUT_MS,
): Promise<PeerManifest | undefined> {
  const ranked = rankPeers(digest.value, deps.membership.members()).filter((p) => deps.health.usable(p));
  for (const peer of ranked.slice(0, MAX_PEERS_PER_MANIFEST)) {
    let answer;
    const own = new AbortController();
    const timer = setTimeout(
      () => own.abort(new PeerError('PEER_TIMEOUT', peer, `${peer} sent no manifest within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const mine = signal ? AbortSignal.any([signal, own.signal]) : own.signal;
    try {
      answer = await deps.client.getManifest({ peer, digest: digest.value, upstream, repo, signal: mine });
    } catch (err) {
      if (signal?.aborted) throw err;
      const reason = err instanceof PeerError ? err.code : String(err);
      deps.health.markDown(peer, err instanceof Error ? err.message : reason);
      deps.metrics.peerErrors.inc({ peer, reason });
      deps.metrics.manifestRequests.inc({ result: 'error' });
      continue;
    } finally {
      clearTimeout(timer);
    }
    deps.health.markUp(peer);
    if (answer.kind === 'miss') {
      if (answer.status >= 500) deps.metrics.peerErrors.inc({ peer, reason: `status ${answer.status}` });
      deps.metrics.manifestRequests.inc({ result: 'miss' });
      continue;
    }
    // The digest is the only proof (OCI distribution spec: content is addressed by its digest).
    const got = digestOf(answer.body, digest.algorithm);
    if (got.value !== digest.value) {
      deps.health.quarantine(peer, `sent a manifest that failed ${digest.value}`);
      deps.metrics.peerErrors.inc({ peer, reason: 'digest' });
      deps.metrics.manifestRequests.inc({ result: 'digest' });
      deps.logger.warn(
        { peer, digest: digest.value, got: got.value },
        'peer sent a wrong manifest; quarantined',
      );
      continue;
    }
    deps.metrics.manifestRequests.inc({ result: 'ok' });
    deps.metrics.manifestBytes.inc({ peer }, answer.body.byteLength);
    return { body: answer.body, contentType: answer.contentType, peer };
  }
  return undefined;
}
