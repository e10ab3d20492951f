import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { BlobSource } from '../mirror/index.js';
import type { BlobResponse, RequestOptions } from '../registry-client/index.js';
import { PeerError } from './errors.js';
import type { PeerHealth } from './peer-health.js';
import type { PeerAnswer, PeerBlobRequest } from './peer-client.js';
import type { Membership } from './membership.js';
import { rankPeers } from './rendezvous.js';
import type { Verdict, Verdicts } from './verdicts.js';

/** A place blobs come from: the mirror's BlobSource (type only, so no import cycle at run time). */
export type BlobSourceLike = BlobSource;

export interface PeerTransport {
  getBlob(req: PeerBlobRequest): Promise<PeerAnswer>;
  /** What `peer` concluded about its own download of `digest` (`/peer/v1/verdicts`; verdicts.ts). */
  verdict?(peer: string, digest: string): Promise<Verdict>;
}

/** What the peer network reports as bytes arrive (metrics, logs). */
export interface PeerSourceEvents {
  /** Bytes received from a peer (the fetcher counts the upstream's own). */
  bytes(peer: string, n: number): void;
  peerError(peer: string, reason: string): void;
  relayDepth(depth: number): void;
  /** A download left a peer mid-body for the next source. */
  switched(reason: SwitchReason): void;
}

export type SwitchReason = 'stalled' | 'slow' | 'broken';

/** What the progress guard needs from the source for one body (stall-guard.ts). */
export interface GuardHooks {
  /** Judge the rate too: the peer said it holds the whole blob, so its rate is its own. */
  judgeRate: boolean;
  onBytes: (n: number) => void;
  onStall: () => void;
  onSlow: (bytesPerSecond: number) => void;
}

export interface PeerSourceOptions {
  membership: Membership;
  health: PeerHealth;
  transport: PeerTransport;
  events: PeerSourceEvents;
  logger: Logger;
  /** No byte from a peer for this long and it is abandoned (and quarantined). */
  stallMs: number;
  /** Peers tried for one read before the upstream (each a fetcher candidate). */
  maxPeersPerRead: number;
  /** Relays tried per fetcher before asking the fetcher to serve directly. */
  maxRelaysPerRead: number;
  guard: (body: Readable, peer: string, hooks: GuardHooks) => Readable;
  /** Counts an upstream body of this node among its incoming bodies (upstream-tap.ts). */
  tapUpstream?: ((body: Readable) => Readable) | undefined;
  /** This node's digest failures and whom it blamed, for the nodes it relayed to (verdicts.ts). */
  verdicts?: Verdicts | undefined;
}

/** Where the current attempt of one download gets its bytes, so that a resume moves on. */
interface Attempt {
  /** The peer asked for the blob (its fetcher), or undefined for the upstream. */
  peer: string | undefined;
  /** The relay the peer sent us to, when it did. */
  relay: string | undefined;
  /** Peers that failed this download: not asked again for it. */
  failed: Set<string>;
  /** Relays that failed, told to the fetcher when asking again. */
  failedRelay: string | undefined;
  /** Every peer that sent bytes of this download (quarantined if the digest fails). */
  contributors: Set<string>;
  /** Why the body now streaming was left, when the guard knows (else: it broke). */
  leftFor: SwitchReason | undefined;
  /** Peers this download left for being slow: asked again, rate unjudged, if the upstream fails. */
  slow: Set<string>;
  /** Set once the download went back to a slow peer: its rate is not judged again. */
  tolerateSlow: boolean;
  /**
   * A body of this attempt that fails can be resumed from the next source (a download, not a
   * lazy-pull range read on its own): only then is a peer's rate judged, since leaving a slow
   * body that cannot resume fails the client's answer instead of speeding it up.
   */
  resumable: boolean;
}

/**
 * The mirror's source for one upstream, with peers in front: a blob is read from the peer that
 * rendezvous hashing names as its fetcher (which serves it, or sends us to a relay that is already
 * receiving it), and from the upstream only when this node is the fetcher or no peer could serve.
 * Peer failures never reach a client: the next source is tried, from the byte we have (a resume is
 * a ranged read here). Only the upstream's own answer is ever thrown.
 */
export class PeerSource implements BlobSourceLike {
  readonly name: string;
  private readonly attempts = new Map<string, Attempt>();

  constructor(
    private readonly upstreamName: string,
    private readonly upstream: BlobSourceLike,
    private readonly options: PeerSourceOptions,
  ) {
    this.name = upstream.name;
  }

  headBlob(repo: string, digest: string, opts?: RequestOptions): Promise<{ size: number | undefined }> {
    return this.upstream.headBlob(repo, digest, opts);
  }

  async getBlob(
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } } = {},
  ): Promise<BlobResponse> {
    // A download's first read starts a fresh attempt; a background read is the fetcher resuming
    // the same download after its source failed (see BlobFetcher), so that source is struck off.
    // A failure of this blob still being attributed decides whom to avoid: wait for it.
    if (!opts.background) await this.options.verdicts?.attributed(digest);
    let attempt = this.attempts.get(digest);
    if (!opts.background || !attempt) {
      attempt = {
        peer: undefined,
        relay: undefined,
        failed: new Set(),
        failedRelay: undefined,
        contributors: new Set(),
        leftFor: undefined,
        slow: new Set(),
        tolerateSlow: false,
        // A ranged read that is not a resume (lazy pulling far ahead) is its own short-lived
        // attempt, with nothing to resume it: blob-handler.ts serveUpstreamRange.
        resumable: !opts.range || opts.background === true,
      };
      if (attempt.resumable) this.attempts.set(digest, attempt);
    } else if (attempt.relay !== undefined) {
      this.options.events.switched(attempt.leftFor ?? 'broken');
      attempt.failedRelay = attempt.relay;
      attempt.relay = undefined;
    } else if (attempt.peer !== undefined) {
      this.options.events.switched(attempt.leftFor ?? 'broken');
      attempt.failed.add(attempt.peer);
      attempt.peer = undefined;
    }
    attempt.leftFor = undefined;
    const fromPeer = await this.tryPeers(repo, digest, opts, attempt);
    if (fromPeer) return fromPeer;
    attempt.peer = undefined;
    attempt.relay = undefined;
    try {
      const res = await this.upstream.getBlob(repo, digest, opts);
      return this.options.tapUpstream ? { ...res, body: this.options.tapUpstream(res.body) } : res;
    } catch (err) {
      // A slow peer beats none: with the upstream failing (a partition), go back to a peer this
      // download left for being slow, and let it finish at its own pace.
      const back = opts.signal?.aborted ? undefined : await this.backToSlow(repo, digest, opts, attempt);
      if (back) return back;
      throw err;
    }
  }

  private backToSlow(
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } },
    attempt: Attempt,
  ): Promise<BlobResponse | undefined> {
    // Each asked once: struck off as it is tried. As a relay: it serves only what it holds,
    // which it said was the whole blob.
    const once = function* (slow: Set<string>) {
      for (const peer of slow) {
        slow.delete(peer);
        yield peer;
      }
    };
    return this.askRelays(once(attempt.slow), repo, digest, opts, attempt, {
      served: (peer) => {
        attempt.tolerateSlow = true;
        this.options.logger.info({ peer, digest }, 'upstream failed; going back to a slow peer');
      },
    });
  }

  /**
   * The download of `digest` ended. A digest failure condemns the peers that sent part of it
   * (the digest proves only the whole, so no one of them can be cleared by the bytes alone),
   * except a relay that refused the blob itself: see `attribute`.
   */
  settled(digest: string, err?: Error): void {
    const attempt = this.attempts.get(digest);
    this.attempts.delete(digest);
    if (!attempt || !err || !isVerifyFailure(err)) return;
    const blamed = this.attribute(digest, [...attempt.contributors]);
    blamed.catch(() => {});
    this.options.verdicts?.record(digest, blamed);
  }

  /**
   * Whom a failed digest is blamed on. Each sender is asked for its own verdict on the blob: a
   * relay passes on what it receives, holding back the last byte until its own check passed, so
   * an honest relay fed bad bytes by its source aborts our body and says it rejected the blob.
   * Then the failure is explained: its sources are blamed (its own attribution, so recursively
   * the upstream-most one; none when its bytes came from its upstream), not it, and not the
   * sender we resumed from after it, which sent the rest of a blob whose prefix was already bad.
   * With no such relay, every sender is blamed, as the digest proves only the whole; so is one
   * that cannot answer. A verdict is trusted as the cluster token is: a peer lying about one can
   * only make this node avoid an honest peer for a while, which costs upstream GETs, never a
   * wrong byte. Resolves once the blamed peers are quarantined.
   */
  private async attribute(digest: string, contributors: string[]): Promise<string[]> {
    const { transport, membership, health, events, logger } = this.options;
    const verdicts = await Promise.all(
      contributors.map(async (peer) => ({
        peer,
        verdict: transport.verdict ? await transport.verdict(peer, digest).catch(() => undefined) : undefined,
      })),
    );
    const rejected = verdicts.filter((v) => v.verdict?.rejected === true);
    const blamed = new Set<string>();
    if (rejected.length === 0) for (const { peer } of verdicts) blamed.add(peer);
    for (const { peer, verdict } of rejected) {
      logger.info(
        { peer, digest, blamed: verdict?.blamed },
        'the relay rejected these bytes itself; blaming its sources, not it',
      );
      for (const source of verdict?.blamed ?? []) if (source !== membership.self) blamed.add(source);
    }
    for (const peer of blamed) {
      health.quarantine(peer, `sent bytes that failed ${digest}`);
      events.peerError(peer, 'digest');
      logger.warn({ peer, digest }, 'peer sent bytes that failed the digest; avoiding it');
    }
    return [...blamed];
  }

  private async tryPeers(
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } },
    attempt: Attempt,
  ): Promise<BlobResponse | undefined> {
    const { membership, health } = this.options;
    if (membership.members().length === 0) return undefined;
    // A peer already left for being slow on this blob held it whole: after that, the others are
    // asked only as relays (whoever holds or is receiving it serves; no one fetches it anew on
    // our behalf), and else the upstream sends the rest (docs/peers.md, "a slow peer").
    const slow = health.slowFor(digest);
    for (const peer of attempt.slow) slow.add(peer);
    if (slow.size > 0) return this.tryHolders(repo, digest, opts, attempt, slow);
    let asked = 0;
    for (const peer of rankPeers(digest, membership.everyone())) {
      // Ranked below ourselves: we are the fetcher among the peers still standing.
      if (peer === membership.self) return undefined;
      if (attempt.failed.has(peer) || !health.usable(peer)) continue;
      if (asked++ >= this.options.maxPeersPerRead) return undefined;
      const res = await this.askFetcher(peer, repo, digest, opts, attempt);
      if (res) return res;
      attempt.failed.add(peer);
    }
    return undefined;
  }

  /** Asks peers, best ranked first, only for what they hold or are receiving. */
  private tryHolders(
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } },
    attempt: Attempt,
    slow: ReadonlySet<string>,
  ): Promise<BlobResponse | undefined> {
    const { membership, health, maxPeersPerRead } = this.options;
    const candidates = function* () {
      let asked = 0;
      for (const peer of rankPeers(digest, membership.members())) {
        if (slow.has(peer) || attempt.failed.has(peer) || !health.usable(peer)) continue;
        if (asked++ >= maxPeersPerRead) return;
        yield peer;
      }
    };
    return this.askRelays(candidates(), repo, digest, opts, attempt, {
      missed: (peer) => attempt.failed.add(peer),
    });
  }

  /**
   * Asks `peers` in turn as relays (`X-Hoist-Relay`: each serves only what it holds or is
   * receiving, and fetches nothing); the first that sends a body serves this read.
   */
  private async askRelays(
    peers: Iterable<string>,
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } },
    attempt: Attempt,
    on: { served?: (peer: string) => void; missed?: (peer: string) => void },
  ): Promise<BlobResponse | undefined> {
    for (const peer of peers) {
      const answer = await this.ask({
        peer,
        digest,
        upstream: this.upstreamName,
        repo,
        range: opts.range,
        relay: true,
        signal: opts.signal,
      });
      if (answer?.kind === 'body') {
        // Before accept: what `served` sets (tolerateSlow) decides how the body is guarded.
        on.served?.(peer);
        return this.accept(answer, attempt, digest, peer, undefined);
      }
      on.missed?.(peer);
    }
    return undefined;
  }

  /** Asks one fetcher, following its relay answers; undefined when it cannot serve. */
  private async askFetcher(
    peer: string,
    repo: string,
    digest: string,
    opts: RequestOptions & { range?: { start: number; end?: number } },
    attempt: Attempt,
  ): Promise<BlobResponse | undefined> {
    for (let relays = 0; relays <= this.options.maxRelaysPerRead; relays++) {
      const answer = await this.ask({
        peer,
        digest,
        upstream: this.upstreamName,
        repo,
        range: opts.range,
        failedRelay: attempt.failedRelay,
        signal: opts.signal,
      });
      if (!answer) return undefined;
      if (answer.kind === 'body') return this.accept(answer, attempt, digest, peer, undefined);
      if (answer.kind === 'miss') return undefined;
      this.options.events.relayDepth(answer.depth);
      if (relays === this.options.maxRelaysPerRead || !this.options.health.usable(answer.relay)) {
        attempt.failedRelay = answer.relay;
        continue;
      }
      const relayed = await this.ask({
        peer: answer.relay,
        digest,
        upstream: this.upstreamName,
        repo,
        range: opts.range,
        relay: true,
        signal: opts.signal,
      });
      if (relayed?.kind === 'body') return this.accept(relayed, attempt, digest, peer, answer.relay);
      // The relay does not hold it (finished and evicted, restarted) or is gone: ask again.
      attempt.failedRelay = answer.relay;
    }
    return undefined;
  }

  private async ask(req: PeerBlobRequest): Promise<PeerAnswer | undefined> {
    try {
      const answer = await this.options.transport.getBlob(req);
      this.options.health.markUp(req.peer);
      if (answer.kind === 'miss' && answer.status >= 500)
        this.options.events.peerError(req.peer, `status ${answer.status}`);
      return answer;
    } catch (err) {
      if (req.signal?.aborted) throw err;
      const reason = err instanceof PeerError ? err.code : String(err);
      if (err instanceof PeerError && err.transient && !req.patient && this.options.health.alive(req.peer)) {
        // It answered or sent bytes moments ago: a connect that did not complete in time or a
        // reset before any answer is the path's (a lost SYN on a busy link, this node too loaded
        // to see the connect in time, a kept-alive connection the peer was closing). Marking it
        // down would send every blob it fetches to the upstream from here for `downSeconds`: a
        // second upstream copy of each. Ask once more, on a new connection, patiently.
        this.options.events.peerError(req.peer, `${reason} (asked again)`);
        this.options.logger.info(
          { peer: req.peer, digest: req.digest, err: String(err) },
          'peer request failed, but the peer is alive; asking it again',
        );
        return this.ask({ ...req, patient: true });
      }
      this.options.health.markDown(req.peer, err instanceof Error ? err.message : reason);
      this.options.events.peerError(req.peer, reason);
      this.options.logger.info(
        { peer: req.peer, digest: req.digest, err: String(err) },
        'peer unusable; trying the next source',
      );
      return undefined;
    }
  }

  private accept(
    answer: Extract<PeerAnswer, { kind: 'body' }>,
    attempt: Attempt,
    digest: string,
    fetcher: string,
    relay: string | undefined,
  ): BlobResponse {
    const from = answer.peer;
    attempt.peer = fetcher;
    attempt.relay = relay;
    attempt.contributors.add(from);
    const body = this.options.guard(answer.body, from, {
      judgeRate: answer.complete && attempt.resumable && !attempt.tolerateSlow,
      onBytes: (n) => {
        this.options.health.heard(from);
        this.options.events.bytes(from, n);
      },
      onStall: () => {
        attempt.leftFor = 'stalled';
        this.options.health.quarantine(from, 'stopped sending');
        this.options.events.peerError(from, 'stalled');
      },
      onSlow: (bytesPerSecond) => {
        attempt.leftFor = 'slow';
        attempt.slow.add(from);
        const reason = `held the whole blob but sent ${Math.round(bytesPerSecond)} B/s`;
        this.options.health.demote(from, digest, reason);
        this.options.events.peerError(from, 'slow');
        this.options.logger.info({ peer: from, digest, bytesPerSecond }, 'peer too slow; switching source');
      },
    });
    return {
      status: answer.status,
      contentLength: answer.contentLength,
      offset: answer.offset,
      totalSize: answer.totalSize,
      body,
      peer: from,
    };
  }
}

function isVerifyFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'DIGEST_MISMATCH' || code === 'SIZE_MISMATCH';
}
