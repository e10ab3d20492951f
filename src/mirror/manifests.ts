import type { Logger } from 'pino';
import {
  acceptsMediaType,
  detectManifestMediaType,
  digestOf,
  MANIFEST_MEDIA_TYPES,
  parseDigest,
  type Digest,
  type ManifestReference,
} from '../oci/index.js';
import { UpstreamError, type ManifestResponse, type RegistryClient } from '../registry-client/index.js';
import { MirrorError } from './errors.js';
import type { ManifestStore } from './manifest-store.js';
import type { MirrorMetrics } from './metrics.js';
import { SingleFlight } from './single-flight.js';

export interface ResolvedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  /**
   * hit: served from cache; miss: fetched now; stale: upstream unreachable, served from cache past
   * its TTL; peer: upstream unreachable, by digest from a peer's store (verified).
   */
  cache: 'hit' | 'miss' | 'stale' | 'peer';
}

/**
 * Asks the cluster's other mirrors for a manifest by digest. Returns only bytes whose digest is
 * `digest` (the peer code verifies, and quarantines a peer that sends others), or undefined.
 */
export type ManifestPeers = (
  upstream: string,
  repo: string,
  digest: Digest,
) => Promise<{ body: Buffer; contentType: string | undefined; peer: string } | undefined>;

export interface ManifestServiceOptions {
  store: ManifestStore;
  metrics: MirrorMetrics;
  logger: Logger;
  tagTtlSeconds: number;
  now?: () => number;
  /**
   * Called with a fetched, verified manifest before it becomes visible in the store, so that a
   * request finding it there also finds which repository it came from (and does not ask upstream).
   */
  onFetched?: (upstream: string, repo: string, digest: string) => Promise<void>;
  /**
   * The peers, when configured: asked for a manifest by digest only when the upstream cannot be
   * reached (a network error, a timeout, a 5xx or 429; never after a 401/403/404, which stand).
   */
  peers?: () => ManifestPeers | undefined;
}

/**
 * Resolves manifests: by digest from the store (immutable, cached for good), by tag through a
 * tag→digest mapping re-checked upstream with a HEAD once older than the TTL. Concurrent
 * requests for the same manifest share one upstream request.
 */
export class ManifestService {
  private readonly store: ManifestStore;
  private readonly metrics: MirrorMetrics;
  private readonly logger: Logger;
  private readonly tagTtlMs: number;
  private readonly now: () => number;
  private readonly onFetched: ManifestServiceOptions['onFetched'];
  private readonly peers: ManifestServiceOptions['peers'];
  private readonly flights = new SingleFlight<ResolvedManifest>();

  constructor(options: ManifestServiceOptions) {
    this.store = options.store;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.tagTtlMs = options.tagTtlSeconds * 1000;
    this.now = options.now ?? Date.now;
    this.onFetched = options.onFetched;
    this.peers = options.peers;
  }

  async resolve(
    client: RegistryClient,
    repo: string,
    reference: ManifestReference,
    accepted: readonly string[],
  ): Promise<ResolvedManifest> {
    // Upstream requests are shared by every client asking for the same manifest, so none of them
    // is tied to one client's connection.
    const result =
      reference.kind === 'digest'
        ? await this.byDigest(client, repo, reference.digest, accepted)
        : await this.byTag(client, repo, reference.tag, accepted);
    if (!acceptsMediaType(accepted, result.mediaType)) {
      // Only reached by digest, or when upstream ignored Accept: the spec says 404 then.
      throw new MirrorError(
        'MANIFEST_UNKNOWN',
        `manifest ${result.digest} is ${result.mediaType}, which the request's Accept header does not include`,
      );
    }
    return result;
  }

  private async byDigest(
    client: RegistryClient,
    repo: string,
    digest: Digest,
    accepted: readonly string[],
  ): Promise<ResolvedManifest> {
    const stored = await this.store.get(digest);
    if (stored) {
      this.metrics.cacheLookups.inc({ kind: 'manifest', result: 'hit' });
      return { digest: digest.value, mediaType: stored.mediaType, body: stored.body, cache: 'hit' };
    }
    this.metrics.cacheLookups.inc({ kind: 'manifest', result: 'miss' });
    // Joined only by requests for the same repository: the caller checked each one's access to it
    // (a client of a public repository must not receive, by naming its digest, a manifest being
    // fetched for a private one with another client's credentials).
    return this.flights.run(`digest ${client.name}/${repo}@${digest.value}`, async () => {
      let res: ManifestResponse;
      try {
        res = await this.fetchUpstream(
          client,
          repo,
          digest.value,
          accepted.length ? accepted : MANIFEST_MEDIA_TYPES,
        );
      } catch (err) {
        const fromPeer = isUnreachable(err) ? await this.fromPeers(client, repo, digest) : undefined;
        if (fromPeer) return fromPeer;
        throw err;
      }
      const got = digestOf(res.body, digest.algorithm);
      if (got.value !== digest.value) {
        throw new UpstreamError(
          'DIGEST_MISMATCH',
          `upstream manifest ${digest.value} has content digest ${got.value}`,
        );
      }
      const mediaType = detectManifestMediaType(res.body, res.contentType);
      await this.onFetched?.(client.name, repo, digest.value);
      await this.store.put(digest, mediaType, res.body);
      return { digest: digest.value, mediaType, body: res.body, cache: 'miss' };
    });
  }

  /**
   * The upstream could not answer: a peer's stored copy, verified by digest, stored and recorded as
   * fetched for `repo` (the peer serves it only for a repository it holds it for). The caller has
   * checked the client's access as for any cached manifest while the upstream is down.
   */
  private async fromPeers(
    client: RegistryClient,
    repo: string,
    digest: Digest,
  ): Promise<ResolvedManifest | undefined> {
    const ask = this.peers?.();
    if (!ask) return undefined;
    const got = await ask(client.name, repo, digest);
    if (!got) return undefined;
    const mediaType = detectManifestMediaType(got.body, got.contentType);
    this.logger.info(
      { upstream: client.name, repo, digest: digest.value, peer: got.peer },
      'upstream unreachable; manifest from a peer',
    );
    await this.onFetched?.(client.name, repo, digest.value);
    await this.store.put(digest, mediaType, got.body);
    return { digest: digest.value, mediaType, body: got.body, cache: 'peer' };
  }

  private async byTag(
    client: RegistryClient,
    repo: string,
    tag: string,
    accepted: readonly string[],
  ): Promise<ResolvedManifest> {
    const upstream = client.name;
    const entry = await this.store.getTag(upstream, repo, tag);
    const stored = entry ? await this.store.get(parseDigest(entry.digest)) : undefined;

    if (entry && stored && this.now() - entry.checkedAt < this.tagTtlMs) {
      if (acceptsMediaType(accepted, stored.mediaType)) {
        this.metrics.cacheLookups.inc({ kind: 'tag', result: 'hit' });
        return { digest: entry.digest, mediaType: stored.mediaType, body: stored.body, cache: 'hit' };
      }
      // The client cannot take what the tag points at (say, an index to an old client): ask
      // upstream with the client's own Accept, as the client would have without the mirror.
      return this.flights.run(`tag ${upstream}/${repo}:${tag} ${accepted.join(',')}`, () =>
        this.fetchTagFor(client, repo, tag, accepted),
      );
    }

    return this.flights.run(`tag ${upstream}/${repo}:${tag}`, async () => {
      if (entry && stored) {
        // Stale: a HEAD is enough to learn whether the tag moved, and is not rate-limited by Docker Hub.
        try {
          const head = await client.headManifest(repo, tag, MANIFEST_MEDIA_TYPES);
          if (head.digestHeader === entry.digest) {
            await this.store.putTag(upstream, repo, tag, { ...entry, checkedAt: this.now() });
            this.metrics.cacheLookups.inc({ kind: 'tag', result: 'hit' });
            return { digest: entry.digest, mediaType: stored.mediaType, body: stored.body, cache: 'hit' };
          }
        } catch (err) {
          if (isUnreachable(err)) {
            this.logger.warn(
              { upstream, repo, tag, err: String(err) },
              'upstream unreachable; serving stale tag',
            );
            this.metrics.cacheLookups.inc({ kind: 'tag', result: 'stale' });
            return { digest: entry.digest, mediaType: stored.mediaType, body: stored.body, cache: 'stale' };
          }
          throw err;
        }
      }
      this.metrics.cacheLookups.inc({ kind: 'tag', result: 'miss' });
      try {
        return await this.fetchTag(client, repo, tag);
      } catch (err) {
        if (entry && stored && isUnreachable(err)) {
          this.metrics.cacheLookups.inc({ kind: 'tag', result: 'stale' });
          return { digest: entry.digest, mediaType: stored.mediaType, body: stored.body, cache: 'stale' };
        }
        throw err;
      }
    });
  }

  /** GETs a tag with every manifest type accepted, stores it by digest and records the tag. */
  private async fetchTag(client: RegistryClient, repo: string, tag: string): Promise<ResolvedManifest> {
    const res = await this.fetchUpstream(client, repo, tag, MANIFEST_MEDIA_TYPES);
    const { digest, mediaType } = await this.storeFetched(client, repo, res);
    await this.store.putTag(client.name, repo, tag, {
      digest: digest.value,
      mediaType,
      size: res.body.byteLength,
      checkedAt: this.now(),
    });
    return { digest: digest.value, mediaType, body: res.body, cache: 'miss' };
  }

  private async fetchTagFor(
    client: RegistryClient,
    repo: string,
    tag: string,
    accepted: readonly string[],
  ): Promise<ResolvedManifest> {
    this.metrics.cacheLookups.inc({ kind: 'tag', result: 'miss' });
    const res = await this.fetchUpstream(client, repo, tag, accepted);
    const { digest, mediaType } = await this.storeFetched(client, repo, res);
    return { digest: digest.value, mediaType, body: res.body, cache: 'miss' };
  }

  private async storeFetched(
    client: RegistryClient,
    repo: string,
    res: ManifestResponse,
  ): Promise<{ digest: Digest; mediaType: string }> {
    const digest = digestOf(res.body);
    if (res.digestHeader?.startsWith('sha256:') && res.digestHeader !== digest.value) {
      throw new UpstreamError(
        'DIGEST_MISMATCH',
        `upstream said manifest digest ${res.digestHeader} but its content digest is ${digest.value}`,
      );
    }
    const mediaType = detectManifestMediaType(res.body, res.contentType);
    await this.onFetched?.(client.name, repo, digest.value);
    await this.store.put(digest, mediaType, res.body);
    return { digest, mediaType };
  }

  private async fetchUpstream(
    client: RegistryClient,
    repo: string,
    reference: string,
    accept: readonly string[],
  ): Promise<ManifestResponse> {
    const end = this.metrics.upstreamFetchDuration.startTimer({ upstream: client.name, kind: 'manifest' });
    try {
      const res = await client.getManifest(repo, reference, accept);
      end({ outcome: 'ok' });
      return res;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }
}

/** Network failures, timeouts and 5xx: the upstream could not answer, as opposed to answering "no". */
export function isUnreachable(err: unknown): boolean {
  return (
    err instanceof UpstreamError &&
    (err.code === 'UPSTREAM_UNAVAILABLE' || err.code === 'UPSTREAM_TIMEOUT' || err.code === 'TOOMANYREQUESTS')
  );
}
