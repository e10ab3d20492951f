import { timingSafeEqual, createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ListWatchClient } from '../kube/index.js';
import type { PeersConfig } from './config.js';
import { watchDnsPeers } from './dns-peers.js';
import { Membership } from './membership.js';
import { PeerMetrics } from './metrics.js';
import { PeerClient } from './peer-client.js';
import { PeerHealth } from './peer-health.js';
import { PeerSource, type BlobSourceLike } from './peer-source.js';
import { RelayBoard } from './relay-board.js';
import { rankPeers } from './rendezvous.js';
import { IncomingRates } from './incoming-rates.js';
import { guardStall } from './stall-guard.js';
import { tapUpstream } from './upstream-tap.js';
import { parseVerdict, Verdicts, type Verdict } from './verdicts.js';

export interface PeerNetworkOptions {
  config: PeersConfig;
  registry: Registry;
  logger: Logger;
  /** For the EndpointSlice source (in-cluster): made only when configured. */
  kubeClient?: () => Promise<ListWatchClient>;
  now?: () => number;
}

/** Peers tried for one read before the upstream, and relays per fetcher. */
const MAX_PEERS_PER_READ = 3;
const MAX_RELAYS_PER_READ = 3;
/**
 * A peer heard from (an answer, a byte) this recently is alive: a transient failure of one request
 * to it is asked again before it is marked down (peer-source.ts, docs/peers.md "a miss costs time").
 */
const ALIVE_MS = 10_000;
/** Covers TCP's first two SYN retransmissions (1 s, then 3 s after the first SYN). */
const PATIENT_CONNECT_TIMEOUT_MS = 3_500;
/**
 * A peer asked for its verdict on a failed digest answers within this, or it is blamed: it covers
 * a connect and the peer's own attribution (one such round per relay above it, each a few ms).
 */
const VERDICT_TIMEOUT_MS = 2_000;
/** Relay trees remembered at once (a few bytes each). */
const MAX_TREES = 10_000;

/**
 * One node's part in the cluster-wide cache: who its peers are, how they have behaved, the relay
 * trees of the blobs it hands out, and the sources that put peers in front of each upstream.
 */
export class PeerNetwork {
  readonly membership: Membership;
  readonly health: PeerHealth;
  readonly board: RelayBoard;
  readonly metrics: PeerMetrics;
  readonly client: PeerClient;
  /** This node's own digest failures, for the nodes it relayed to (`/peer/v1/verdicts`). */
  readonly verdicts: Verdicts;
  private readonly log: Logger;
  private readonly tokenHash: Buffer;
  private readonly stop = new AbortController();
  /** Every peer body this node receives, for telling a slow peer from a slow self. */
  private readonly incoming: IncomingRates | undefined;

  constructor(private readonly options: PeerNetworkOptions) {
    const { config } = options;
    this.log = options.logger.child({ module: 'peers' });
    this.membership = new Membership(config.self, this.log);
    this.health = new PeerHealth({
      downMs: config.downSeconds * 1000,
      quarantineMs: config.quarantineSeconds * 1000,
      slowMs: config.slowAvoidSeconds * 1000,
      aliveMs: ALIVE_MS,
      ...(options.now ? { now: options.now } : {}),
    });
    this.board = new RelayBoard({
      fanout: config.fanout,
      idleMs: 10 * 60_000,
      maxBlobs: MAX_TREES,
      ...(options.now ? { now: options.now } : {}),
    });
    this.metrics = new PeerMetrics(options.registry);
    this.verdicts = new Verdicts({
      keepMs: config.quarantineSeconds * 1000,
      ...(options.now ? { now: options.now } : {}),
    });
    this.client = new PeerClient({
      self: this.membership.self,
      token: config.token,
      connectTimeoutMs: config.connectTimeoutMs,
      patientConnectTimeoutMs: Math.max(config.connectTimeoutMs, PATIENT_CONNECT_TIMEOUT_MS),
      // A fetcher answers once its own upstream has: as long as an upstream may take.
      headersTimeoutMs: 30_000,
    });
    this.tokenHash = createHash('sha256').update(config.token).digest();
    this.incoming =
      config.minBytesPerSecond > 0 ? new IncomingRates(config.slowWindowSeconds * 1000) : undefined;
    this.membership.onChange((members) => {
      this.metrics.peers.set(members.length);
      this.health.retain(new Set(members));
    });
  }

  /** Starts discovery; resolves once every source has answered once (or failed to). */
  async start(): Promise<void> {
    const { config } = this.options;
    const signal = this.stop.signal;
    if (config.urls.length > 0) this.membership.set('static', config.urls);
    const first: Promise<unknown>[] = [];
    if (config.dns) {
      first.push(
        watchDnsPeers(
          this.membership,
          { target: config.dns, intervalMs: config.dnsIntervalSeconds * 1000, logger: this.log },
          signal,
        ),
      );
    }
    if (config.kubernetes) {
      if (!this.options.kubeClient) throw new Error('peer discovery through Kubernetes needs API access');
      // Loaded only here: a mirror without Kubernetes discovery never loads the API client.
      const { watchEndpointSlicePeers } = await import('./endpoint-slice-peers.js');
      const client = await this.options.kubeClient();
      const informer = watchEndpointSlicePeers(
        client,
        this.membership,
        { ...config.kubernetes, logger: this.log },
        signal,
      );
      first.push(informer.synced().catch(() => undefined));
    }
    await Promise.all(first);
    this.metrics.peers.set(this.membership.members().length);
    this.log.info({ self: this.membership.self, members: this.membership.members() }, 'peer sharing on');
  }

  close(): void {
    this.stop.abort();
    this.client.close();
  }

  /**
   * The source for one upstream, with peers in front of it. Cheap: one per request is fine, as a
   * download keeps the source it started with (resumes and `settled` reach the same one).
   */
  source(upstreamName: string, upstream: BlobSourceLike): PeerSource {
    const { config } = this.options;
    const stallMs = config.stallSeconds * 1000;
    const slow =
      config.minBytesPerSecond > 0
        ? { minBytesPerSecond: config.minBytesPerSecond, windowMs: config.slowWindowSeconds * 1000 }
        : undefined;
    const source = new PeerSource(upstreamName, upstream, {
      membership: this.membership,
      health: this.health,
      transport: {
        getBlob: (req) => this.client.getBlob(req),
        verdict: (peer, digest) => this.askVerdict(peer, digest),
      },
      verdicts: this.verdicts,
      logger: this.log,
      stallMs,
      maxPeersPerRead: MAX_PEERS_PER_READ,
      maxRelaysPerRead: MAX_RELAYS_PER_READ,
      tapUpstream: this.tapUpstream,
      guard: (body, peer, hooks) =>
        guardStall(body, peer, {
          stallMs,
          slow: hooks.judgeRate ? slow : undefined,
          incoming: this.incoming,
          onBytes: hooks.onBytes,
          onStall: hooks.onStall,
          onSlow: hooks.onSlow,
        }),
      events: {
        bytes: (peer, n) => this.metrics.peerBytes.inc({ peer }, n),
        peerError: (peer, reason) => this.metrics.peerErrors.inc({ peer, reason }),
        relayDepth: (depth) => this.metrics.relayDepth.observe(depth),
        switched: (reason) => this.metrics.switches.inc({ reason }),
      },
    });
    return source;
  }

  /**
   * Counts an upstream body of this node (a download through `source`, or one this node runs as
   * a blob's fetcher for a peer) among the bodies a slow verdict compares with; undefined when
   * the slow-peer rule is off.
   */
  get tapUpstream(): ((body: Readable) => Readable) | undefined {
    const incoming = this.incoming;
    if (!incoming) return undefined;
    // The stall guard's clock: IncomingRates compares the bodies' windows at one time.
    return (body) => tapUpstream(body, incoming, () => performance.now());
  }

  /** `upstream` with its blob bodies counted as this node's (`tapUpstream`): a fetcher's source. */
  upstreamSource(upstream: BlobSourceLike): BlobSourceLike {
    const tap = this.tapUpstream;
    if (!tap) return upstream;
    return {
      name: upstream.name,
      headBlob: (repo, digest, opts) => upstream.headBlob(repo, digest, opts),
      getBlob: async (repo, digest, opts) => {
        const res = await upstream.getBlob(repo, digest, opts);
        return { ...res, body: tap(res.body) };
      },
    };
  }

  /** `peer`'s verdict on its own download of `digest`; rejects when it gave none in time. */
  private async askVerdict(peer: string, digest: string): Promise<Verdict> {
    const signal = AbortSignal.any([this.stop.signal, AbortSignal.timeout(VERDICT_TIMEOUT_MS)]);
    const verdict = parseVerdict(await this.client.getJson(peer, `/verdicts/${digest}`, signal));
    if (!verdict) throw new Error(`${peer} sent no verdict on ${digest}`);
    return verdict;
  }

  /** Whether an `Authorization` header carries the cluster token (constant-time compare). */
  authorized(header: string | undefined): boolean {
    const m = header === undefined ? null : /^Bearer (.+)$/.exec(header);
    if (!m) return false;
    const given = createHash('sha256')
      .update(m[1] as string)
      .digest();
    return timingSafeEqual(given, this.tokenHash);
  }

  /** Whether this node is the first choice to fetch `digest` among the members it knows. */
  isFetcher(digest: string): boolean {
    return rankPeers(digest, this.membership.everyone())[0] === this.membership.self;
  }

  /** One node's view, for `hoist mirror peers` and `/peer/v1/status`. */
  status(digest?: string): PeerStatus {
    const members = this.membership.members().map((url) => {
      const problem = this.health.problem(url);
      return {
        url,
        state: problem?.problem ?? ('up' as const),
        ...(problem ? { reason: problem.reason, untilMs: problem.untilMs } : {}),
      };
    });
    return {
      self: this.membership.self,
      fanout: this.options.config.fanout,
      members,
      relayTrees: this.board.size,
      ...(digest ? { digest, ranking: rankPeers(digest, this.membership.everyone()) } : {}),
    };
  }
}

export interface PeerStatus {
  self: string;
  fanout: number;
  members: Array<{
    url: string;
    state: 'up' | 'down' | 'slow' | 'quarantined';
    reason?: string;
    untilMs?: number;
  }>;
  relayTrees: number;
  digest?: string;
  ranking?: string[];
}
