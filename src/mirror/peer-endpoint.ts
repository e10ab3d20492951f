import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDigest, parseRepository } from '../oci/index.js';
import { PEER_HEADERS, PEER_PATH_PREFIX, normalizePeerUrl, type PeerNetwork } from '../peers/index.js';
import type { RegistryClient } from '../registry-client/index.js';
import type { BlobHandler, RequestInfo } from './blob-handler.js';
import { MirrorError } from './errors.js';
import { sendJson } from './http.js';
import type { ManifestStore } from './manifest-store.js';

/** What the manifest path reads: this node's store and its membership records, nothing upstream. */
export interface PeerManifestReader {
  store: ManifestStore;
  /** Whether `digest` is on record as belonging to `upstream/repo` (no upstream request). */
  knownMember: (upstream: string, repo: string, digest: string) => Promise<boolean>;
}

/**
 * `/peer/v1/...`: what other Hoist mirrors of the cluster ask this one (docs/peers.md).
 *
 * - `GET /peer/v1/blobs/<digest>?ns=<upstream>&repo=<name>`: the blob, whole or ranged. Asked as
 *   the blob's fetcher, this node serves it from its store or its download (starting one from its
 *   own upstream on a miss), or, when it already serves `fanout` peers, redirects (307) to a peer
 *   that is receiving it. Asked as a relay (`X-Hoist-Relay`), it serves only what it holds or is
 *   receiving, and never fetches or redirects: 404 otherwise.
 * - `GET /peer/v1/manifests/<digest>?ns=<upstream>&repo=<name>`: a manifest by digest from this
 *   node's store, with its media type, only when it is on record as belonging to that repository;
 *   404 otherwise. Never fetched for a peer: a peer asks only while its upstream is unreachable.
 * - `GET /peer/v1/status[?digest=]`: this node's view of the cluster.
 * - `GET /peer/v1/verdicts/<digest>`: whether this node's own download of the blob failed its
 *   digest, and whom it blamed (src/peers/verdicts.ts): a node it relayed to asks before blaming it.
 *
 * Every request carries the cluster token; without it, 403. Peers never read tags (an answer about
 * a tag cannot be verified), and never decide access: the node that serves a client checks that client. A peer's request for a
 * repository proves nothing about a client, so this node still serves a held blob for a repository
 * only if it belongs there (membership records, or a HEAD upstream), as it would for a client.
 */
export class PeerEndpoint {
  constructor(
    private readonly network: PeerNetwork,
    private readonly blobs: BlobHandler,
    private readonly client: (upstream: string) => RegistryClient,
    private readonly manifests?: PeerManifestReader,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, url: URL, info: RequestInfo): Promise<void> {
    info.route = 'peer';
    if (!this.network.authorized(req.headers.authorization)) {
      this.network.metrics.servedToPeers.inc({ kind: 'refused' });
      // Marked, so that a peer tells "my token is wrong" from "the upstream refused this repository".
      res.setHeader(PEER_HEADERS.refused, 'token');
      throw new MirrorError('DENIED', 'peer requests need the cluster token');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new MirrorError('METHOD_NOT_ALLOWED', 'peers only read');
    }
    if (!url.pathname.startsWith(`${PEER_PATH_PREFIX}/`)) {
      throw new MirrorError('NOT_FOUND', `no such peer endpoint ${url.pathname.slice(0, 100)}`);
    }
    const path = url.pathname.slice(PEER_PATH_PREFIX.length);
    if (path === '/status') {
      const digest = url.searchParams.get('digest');
      return sendJson(req, res, 200, this.network.status(digest ? parseDigest(digest).value : undefined));
    }
    const mm = /^\/manifests\/([^/]+)$/.exec(path);
    if (mm) return this.serveManifest(req, res, url, info, mm[1] as string);
    const verdict = /^\/verdicts\/([^/]+)$/.exec(path);
    if (verdict) {
      const digest = parseDigest(decodeURIComponent(verdict[1] as string));
      return sendJson(req, res, 200, await this.network.verdicts.verdict(digest.value));
    }
    const m = /^\/blobs\/([^/]+)$/.exec(path);
    if (!m) throw new MirrorError('NOT_FOUND', `no such peer endpoint ${path.slice(0, 100)}`);
    const digest = parseDigest(decodeURIComponent(m[1] as string));
    const upstream = url.searchParams.get('ns') ?? '';
    const repo = parseRepository(url.searchParams.get('repo') ?? '');
    const asker = peerHeader(req, PEER_HEADERS.peer);
    if (!asker) throw new MirrorError('NAME_INVALID', `peer requests need ${PEER_HEADERS.peer}`);
    const relayOnly = req.headers[PEER_HEADERS.relay] === '1';
    const client = this.client(upstream);
    const route = { kind: 'blob' as const, upstream, repo, digest };
    info.upstream = upstream;

    if (relayOnly) {
      info.cache = 'peer-relay';
      this.network.metrics.servedToPeers.inc({ kind: 'served' });
      return this.blobs.serve(req, res, route, client, info, { peer: 'relay', storedHeaders: COMPLETE });
    }
    const failedRelay = peerHeader(req, PEER_HEADERS.relayFailed);
    const assignment = this.network.board.assign(digest.value, asker, failedRelay);
    if (assignment.kind === 'relay') {
      this.network.metrics.servedToPeers.inc({ kind: 'relayed' });
      info.cache = 'peer-redirect';
      const location = new URL(`${assignment.relay}${PEER_PATH_PREFIX}/blobs/${digest.value}`);
      location.search = url.search;
      res
        .writeHead(307, {
          location: location.toString(),
          [PEER_HEADERS.depth]: String(assignment.depth),
          'content-length': 0,
        })
        .end();
      return;
    }
    this.network.metrics.servedToPeers.inc({ kind: 'served' });
    // The slot frees when this answer ends, whichever way.
    res.once('close', () => this.network.board.release(digest.value, asker));
    // A download this starts is this node's own upstream body: counted as such for slow verdicts.
    return this.blobs.serve(req, res, route, client, info, {
      peer: 'fetcher',
      source: this.network.upstreamSource(client),
      storedHeaders: COMPLETE,
    });
  }

  /**
   * A stored manifest, for a repository it is recorded in. The record is what lets this node serve
   * it to its own clients offline; an asker that gets it records it for the same repository only.
   */
  private async serveManifest(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    info: RequestInfo,
    rawDigest: string,
  ): Promise<void> {
    const digest = parseDigest(decodeURIComponent(rawDigest));
    const upstream = url.searchParams.get('ns') ?? '';
    const repo = parseRepository(url.searchParams.get('repo') ?? '');
    info.upstream = upstream;
    const stored =
      this.manifests && (await this.manifests.knownMember(upstream, repo, digest.value))
        ? await this.manifests.store.get(digest)
        : undefined;
    if (!stored) {
      this.network.metrics.servedToPeers.inc({ kind: 'manifest-miss' });
      info.cache = 'peer-miss';
      throw new MirrorError('MANIFEST_UNKNOWN', `this node holds no manifest ${digest.value} for ${repo}`);
    }
    this.network.metrics.servedToPeers.inc({ kind: 'manifest' });
    info.cache = 'peer-manifest';
    res.writeHead(200, {
      'content-type': stored.mediaType,
      'content-length': stored.body.byteLength,
      'docker-content-digest': digest.value,
    });
    res.end(req.method === 'HEAD' ? undefined : stored.body);
  }
}

/**
 * On a 200/206 served whole from the store, and no other answer: the asker may judge this node's
 * rate (docs/peers.md, "a slow peer").
 */
const COMPLETE = { [PEER_HEADERS.complete]: '1' };

function peerHeader(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  if (typeof v !== 'string' || v === '') return undefined;
  try {
    return normalizePeerUrl(v);
  } catch {
    throw new MirrorError('NAME_INVALID', `${name} must be a peer URL (http://HOST:PORT)`);
  }
}
