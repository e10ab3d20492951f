import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { isDigest, parseAccept, parseDigest } from '../oci/index.js';
import { RegistryClient, type Credentials } from '../registry-client/index.js';
import { BlobFetcher } from './blob-fetcher.js';
import { BlobStore } from './blob-store.js';
import { GarbageCollector } from './gc.js';
import { BlobHandler, type RequestInfo } from './blob-handler.js';
import { AccessControl, CHALLENGE } from './access.js';
import { attachClientErrorHandler } from './client-errors.js';
import { checkRequest } from './request-guard.js';
import { lockStorage } from './storage-lock.js';
import type { MirrorConfig } from './config.js';
import { MirrorError } from './errors.js';
import { API_VERSION_HEADER, sendError, sendJson } from './http.js';
import { ManifestStore } from './manifest-store.js';
import { ManifestService, type ManifestPeers, type ResolvedManifest } from './manifests.js';
import { MirrorMetrics } from './metrics.js';
import { routeRequest, type Route, type RoutingTable } from './routing.js';
import { AcceptGate } from './accept-gate.js';
import { SendBudget } from './send-budget.js';
import { mirrorTagsLink, upstreamTagsQuery } from './tags-list.js';
import type { PeerEndpoint } from './peer-endpoint.js';
import type { PeerNetwork } from '../peers/index.js';
import type { ListWatchClient } from '../kube/index.js';

export interface MirrorOptions {
  config: MirrorConfig;
  logger?: Logger;
  metrics?: MirrorMetrics;
  /** API access for peer discovery through a Service's EndpointSlices (made only when configured). */
  kubeClient?: () => Promise<ListWatchClient>;
}

type ManifestRoute = Extract<Route, { kind: 'manifest' }>;

/**
 * The pull-through mirror: an HTTP server speaking the OCI distribution-spec pull API in front of
 * many upstream registries, with a verified content-addressed store.
 */
export class Mirror {
  readonly config: MirrorConfig;
  readonly metrics: MirrorMetrics;
  readonly logger: Logger;
  readonly blobs: BlobStore;
  readonly manifests: ManifestStore;
  private readonly fetcher: BlobFetcher;
  readonly gc: GarbageCollector;
  private readonly access: AccessControl;
  private readonly manifestService: ManifestService;
  private readonly blobHandler: BlobHandler;
  /** The cluster-wide cache, when peers are configured. */
  peers: PeerNetwork | undefined;
  private peerEndpoint: PeerEndpoint | undefined;
  private manifestPeers: ManifestPeers | undefined;
  private readonly clients = new Map<string, RegistryClient>();
  private readonly table: RoutingTable;
  private server: Server | undefined;
  private readonly sendBudget: SendBudget;
  private acceptGate: AcceptGate | undefined;
  private ready = false;
  private unlock: (() => Promise<void>) | undefined;
  private closing = false;

  private readonly kubeClient: (() => Promise<ListWatchClient>) | undefined;

  constructor(options: MirrorOptions) {
    this.config = options.config;
    this.kubeClient = options.kubeClient;
    this.logger = (options.logger ?? pino({ level: options.config.logLevel })).child({ module: 'mirror' });
    this.metrics = options.metrics ?? new MirrorMetrics();
    this.blobs = new BlobStore(this.config.storage, {
      // this.access is made below; this runs only once blobs are evicted.
      onRemoved: (digest) => this.forgetMembers(digest.value),
    });
    this.manifests = new ManifestStore(this.config.storage);
    this.fetcher = new BlobFetcher({
      store: this.blobs,
      metrics: this.metrics,
      logger: this.logger,
      retries: this.config.upstreamRetries,
      stallTimeoutMs: this.config.upstreamStallTimeoutSeconds * 1000,
      retry: { baseDelayMs: this.config.retryBaseDelayMs, maxDelayMs: this.config.retryMaxDelayMs },
      memoryTailBytes: this.config.gc.memoryTailBytes,
      onStored: () => void this.gc.run('stored'),
      onNoSpace: () => void this.gc.run('disk full'),
    });
    this.gc = new GarbageCollector(
      this.blobs,
      this.config.gc,
      this.metrics,
      this.logger.child({ module: 'gc' }),
    );
    this.manifestService = new ManifestService({
      store: this.manifests,
      metrics: this.metrics,
      logger: this.logger,
      tagTtlSeconds: this.config.tagTtlSeconds,
      // this.access is made below; this runs only once requests arrive.
      onFetched: (upstream, repo, digest) => this.access.recordMember(upstream, repo, digest),
      // this.peers is made in init(); asked only while an upstream is unreachable.
      peers: () => this.manifestPeers,
    });
    const makeClient = (name: string, url: string, credentials: Credentials | undefined) =>
      new RegistryClient({
        name,
        url,
        headersTimeoutMs: this.config.upstreamHeadersTimeoutSeconds * 1000,
        userAgent: 'hoist-mirror',
        retry: {
          baseDelayMs: this.config.retryBaseDelayMs,
          maxDelayMs: this.config.retryMaxDelayMs,
          clientBudgetMs: this.config.clientRetryBudgetMs,
        },
        ...(credentials ? { credentials } : {}),
      });
    for (const u of this.config.upstreams) {
      const own =
        u.username !== undefined && u.password !== undefined
          ? { username: u.username, password: u.password }
          : undefined;
      this.clients.set(u.name, makeClient(u.name, u.url, own));
    }
    this.table = { upstreams: new Set(this.clients.keys()), defaultUpstream: this.config.defaultUpstream };
    this.access = new AccessControl({
      storageRoot: this.config.storage,
      clients: this.clients,
      trusted: new Set(this.config.upstreams.filter((u) => u.clientAuth === 'trust').map((u) => u.name)),
      cacheSeconds: this.config.accessCacheSeconds,
      logger: this.logger.child({ module: 'access' }),
      // The clients' own credentials, for upstreams the mirror has none for (passthrough).
      makeClient: (base, creds) => makeClient(base.name, base.baseUrl, creds),
    });
    const sendBudget = new SendBudget({ totalBytes: this.config.sendBufferBytes });
    this.sendBudget = sendBudget;
    this.metrics.observeSendBudget(() => sendBudget.stats());
    this.blobHandler = new BlobHandler({
      blobs: this.blobs,
      fetcher: this.fetcher,
      access: this.access,
      metrics: this.metrics,
      rangeAheadBytes: this.config.rangeAheadBytes,
      sendBudget,
      sendStallTimeoutMs: this.config.sendStallTimeoutSeconds * 1000,
    });
  }

  /** Prepares the store and starts listening. Upstreams are not contacted: the mirror starts offline. */
  async listen(): Promise<AddressInfo> {
    this.unlock = await lockStorage(this.config.storage);
    await this.blobs.init();
    await this.manifests.init();
    await this.access.init(async (digest) => {
      if (!isDigest(digest)) return false; // not a record this mirror wrote: dropped
      const d = parseDigest(digest);
      return (await this.blobs.size(d)) !== undefined || (await this.manifests.get(d)) !== undefined;
    });
    this.metrics.storeBytes.set(this.blobs.totalBytes);
    this.metrics.storeBlobs.set(this.blobs.blobCount);
    if (this.config.peers) {
      // Loaded only with peers configured: a mirror without them never loads that code.
      const [{ PeerNetwork }, { PeerEndpoint }] = await Promise.all([
        import('../peers/index.js'),
        import('./peer-endpoint.js'),
      ]);
      this.peers = new PeerNetwork({
        config: this.config.peers,
        registry: this.metrics.registry,
        logger: this.logger,
        ...(this.kubeClient ? { kubeClient: this.kubeClient } : {}),
      });
      this.peerEndpoint = new PeerEndpoint(this.peers, this.blobHandler, (u) => this.client(u), {
        store: this.manifests,
        knownMember: (upstream, repo, digest) => this.access.knownMember(upstream, repo, digest),
      });
      const { manifestFromPeers } = await import('../peers/peer-manifests.js');
      const peers = this.peers;
      const deps = {
        membership: peers.membership,
        health: peers.health,
        client: peers.client,
        metrics: peers.metrics,
        logger: this.logger.child({ module: 'peers' }),
      };
      this.manifestPeers = (upstream, repo, digest) => manifestFromPeers(deps, upstream, repo, digest);
    }
    const server = createServer((req, res) => this.handle(req, res));
    // Requests refused before they parse still get counted and a log line, like every other request.
    attachClientErrorHandler(server, (answer, cause) => {
      this.metrics.requests.inc({ route: 'malformed', method: '', status: String(answer.status) });
      this.logger.info({ status: answer.status, code: answer.code, cause, route: 'malformed' }, 'request');
    });
    this.server = server;
    this.acceptGate = new AcceptGate(server, this.sendBudget, {
      onHold: (ms, capped) => {
        this.metrics.acceptHolds.inc({ capped: String(capped) });
        this.metrics.acceptHoldSeconds.inc(ms / 1000);
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A backlog like Go's (net.core.somaxconn, 4096 on current kernels) rather than Node's 511:
      // a rollout opens a connection per pod at once, and overflowing SYNs wait seconds to retry.
      server.listen({ port: this.config.listen.port, host: this.config.listen.host, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.gc.start();
    void this.gc.run('start');
    await this.peers?.start();
    this.ready = true;
    const address = server.address() as AddressInfo;
    this.logger.info(
      { address: address.address, port: address.port, upstreams: [...this.clients.keys()] },
      'listening',
    );
    return address;
  }

  /**
   * Drops the access records of a blob that left the store, unless the digest is also a stored
   * manifest (manifests are kept for good, and their records with them).
   */
  private async forgetMembers(digest: string): Promise<void> {
    try {
      if ((await this.manifests.get(parseDigest(digest))) !== undefined) return;
      await this.access.forget(digest);
    } catch (err) {
      this.logger.warn({ digest, err: String(err) }, 'could not remove access records');
    }
  }

  /**
   * Graceful shutdown: stops accepting (and reports not ready), gives open requests and downloads
   * `graceMs` to finish, then aborts the rest (their clients see aborted connections) and waits
   * until every download has settled, so that no temp file is left behind.
   */
  async close(graceMs = this.config.shutdownGraceSeconds * 1000): Promise<void> {
    this.closing = true;
    this.ready = false;
    this.gc.stop();
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    this.acceptGate?.close();
    server.closeIdleConnections();
    const timer = setTimeout(() => {
      this.logger.warn({ graceMs }, 'shutdown grace period over: aborting what is still running');
      this.fetcher.abortAll(new Error('mirror shutting down'));
      server.closeAllConnections();
    }, graceMs);
    await closed;
    clearTimeout(timer);
    this.fetcher.abortAll(new Error('mirror shut down'));
    await this.fetcher.settled();
    this.peers?.close();
    await this.unlock?.();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = process.hrtime.bigint();
    const info: RequestInfo = { route: 'unknown', bytes: 0 };
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = res.writableFinished ? res.statusCode : 0; // 0: connection aborted
      this.metrics.requests.inc({ route: info.route, method: req.method ?? '', status: String(status) });
      this.metrics.requestDuration.observe({ route: info.route }, seconds);
      this.logger.info(
        {
          method: req.method,
          path: req.url?.slice(0, 512),
          status,
          route: info.route,
          cache: info.cache,
          upstream: info.upstream,
          bytes: info.bytes,
          ms: Math.round(seconds * 1000),
        },
        'request',
      );
    });
    this.dispatch(req, res, info).catch((err: unknown) => {
      const e = sendError(req, res, err);
      if (e.status >= 500) this.logger.error({ err: e.cause ?? e, path: req.url?.slice(0, 512) }, e.message);
    });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> {
    // Hostile or malformed targets are refused before anything is parsed or looked up.
    const refused = checkRequest(req);
    if (refused) throw refused;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://mirror.invalid');
    } catch {
      throw new MirrorError('NOT_FOUND', 'malformed request target');
    }
    if (this.peerEndpoint && url.pathname.startsWith('/peer/')) {
      return this.peerEndpoint.handle(req, res, url, info);
    }
    const route = routeRequest(url.pathname, url.searchParams, this.table);
    info.route = route.kind;
    if ('upstream' in route) info.upstream = route.upstream;

    const method = req.method ?? '';
    if (route.kind === 'upload' || (method !== 'GET' && method !== 'HEAD')) {
      if (url.pathname.startsWith('/v2')) {
        throw new MirrorError(
          'UNSUPPORTED',
          'this is a read-only pull-through mirror; push to the upstream registry',
        );
      }
      throw new MirrorError('METHOD_NOT_ALLOWED', `${method.slice(0, 10)} is not allowed here`);
    }

    switch (route.kind) {
      case 'base':
        // 200 with a challenge (RFC 9110 §11.6.1 allows one on any response): containers/image
        // (skopeo, podman, CRI-O) reads it from the ping and sends credentials when it has some;
        // docker reads challenges only from a 401, so it still pulls public images anonymously.
        return sendJson(req, res, 200, {}, this.access.mayNeedLogin ? { 'www-authenticate': CHALLENGE } : {});
      case 'healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case 'readyz':
        if (!this.ready || this.closing) throw new MirrorError('UNAVAILABLE', 'not ready', { status: 503 });
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ready\n');
        return;
      case 'metrics': {
        const text = await this.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text);
        return;
      }
      case 'catalog':
        throw new MirrorError('UNSUPPORTED', 'a pull-through mirror has no catalog', { status: 404 });
      case 'tags': {
        const tags = await this.access.withSource(
          req.headers.authorization,
          route.upstream,
          route.repo,
          { kind: 'tags' },
          (source) => source.listTags(route.repo, upstreamTagsQuery(url.searchParams)),
        );
        const link = tags.link === undefined ? undefined : mirrorTagsLink(tags.link, url);
        return sendJson(req, res, 200, tags.body, link === undefined ? {} : { link });
      }
      case 'manifest':
        return this.serveManifest(req, res, route, info);
      case 'blob':
        return this.access.withSource(
          req.headers.authorization,
          route.upstream,
          route.repo,
          { kind: 'blob', digest: route.digest.value },
          // With peers, a miss asks the cluster before this client's upstream connection.
          (client) =>
            this.blobHandler.serve(req, res, route, client, info, {
              ...(this.peers ? { source: this.peers.source(route.upstream, client) } : {}),
            }),
          () => !res.headersSent,
        );
      default:
        throw new MirrorError('NOT_FOUND', 'no such endpoint');
    }
  }

  private client(name: string): RegistryClient {
    const c = this.clients.get(name);
    if (!c) throw new MirrorError('NAME_UNKNOWN', `registry "${name}" is not mirrored here`);
    return c;
  }

  private async serveManifest(
    req: IncomingMessage,
    res: ServerResponse,
    route: ManifestRoute,
    info: RequestInfo,
  ): Promise<void> {
    const accepted = parseAccept(req.headers.accept);
    const target = { kind: 'manifest', reference: route.rawReference } as const;
    const m = await this.access.withSource(
      req.headers.authorization,
      route.upstream,
      route.repo,
      target,
      (source) => this.resolveManifest(route, source, accepted),
    );
    info.cache = m.cache;
    this.writeManifest(req, res, m);
  }

  private async resolveManifest(
    route: ManifestRoute,
    source: RegistryClient,
    accepted: readonly string[],
  ): Promise<ResolvedManifest> {
    const ref = route.reference;
    if (
      ref.kind === 'digest' &&
      !(await this.access.knownMember(route.upstream, route.repo, ref.digest.value)) &&
      (await this.manifests.get(ref.digest))
    ) {
      // Cached by digest, perhaps for another repository or registry: serve it here only if it is here.
      const member = await this.access.isMember(
        route.upstream,
        route.repo,
        { kind: 'manifest', reference: ref.digest.value },
        ref.digest.value,
        source,
      );
      if (!member)
        throw new MirrorError('MANIFEST_UNKNOWN', `manifest ${ref.digest.value} is not in ${route.repo}`);
    }
    const m = await this.manifestService.resolve(source, route.repo, ref, accepted);
    if (m.cache !== 'hit' || ref.kind === 'tag')
      await this.access.recordMember(route.upstream, route.repo, m.digest);
    return m;
  }

  private writeManifest(req: IncomingMessage, res: ServerResponse, m: ResolvedManifest): void {
    const headers: Record<string, string | number> = {
      ...API_VERSION_HEADER,
      'content-type': m.mediaType,
      'content-length': m.body.byteLength,
      'docker-content-digest': m.digest,
      etag: `"${m.digest}"`,
      'x-hoist-cache': m.cache,
    };
    if (m.cache === 'stale') headers.warning = '110 hoist "tag served from cache: upstream unreachable"';
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : m.body);
  }
}
