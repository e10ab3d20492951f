import {
  MAX_NAME_LENGTH,
  OciParseError,
  parseManifestReference,
  parseRepository,
  parseDigest,
} from '../oci/index.js';
import { MirrorError } from './errors.js';
import type { Digest, ManifestReference } from '../oci/index.js';

/**
 * Maps a request path and query to what it asks for and which upstream serves it (pure).
 *
 * Upstream choice (DESIGN.md "Fixed contracts"): the `ns` query parameter that containerd adds
 * (hosts.toml mirrors), else a first path segment that names a configured upstream
 * (`/v2/ghcr.io/org/app/...`), else the default upstream. An `ns` naming no configured
 * upstream is a fast 404, so that containerd falls back to its next host; the mirror never
 * fetches from a host it was not configured for.
 */
export type Route =
  | { kind: 'base' }
  | { kind: 'manifest'; upstream: string; repo: string; reference: ManifestReference; rawReference: string }
  | { kind: 'blob'; upstream: string; repo: string; digest: Digest }
  | { kind: 'tags'; upstream: string; repo: string }
  | { kind: 'catalog' }
  | { kind: 'metrics' }
  | { kind: 'healthz' }
  | { kind: 'readyz' }
  | { kind: 'upload'; upstream: string; repo: string };

export interface RoutingTable {
  upstreams: ReadonlySet<string>;
  defaultUpstream: string;
}

/** Longest request target accepted (a name of 255 plus a reference, with room to spare). */
export const MAX_PATH_LENGTH = 2048;

export function routeRequest(path: string, query: URLSearchParams, table: RoutingTable): Route {
  if (path.length > MAX_PATH_LENGTH) throw new MirrorError('NAME_INVALID', 'request path is too long');
  switch (path) {
    case '/metrics':
      return { kind: 'metrics' };
    case '/healthz':
      return { kind: 'healthz' };
    case '/readyz':
      return { kind: 'readyz' };
    case '/v2':
    case '/v2/':
      return { kind: 'base' };
    case '/v2/_catalog':
      return { kind: 'catalog' };
  }
  if (!path.startsWith('/v2/')) throw new MirrorError('NOT_FOUND', `no such endpoint ${path.slice(0, 100)}`);
  const rest = path.slice(4);

  let kind: 'manifests' | 'blobs' | 'tags' | 'uploads';
  let m: RegExpExecArray | null;
  if ((m = /^(.+)\/manifests\/([^/]+)$/.exec(rest))) {
    kind = 'manifests';
  } else if ((m = /^(.+)\/blobs\/uploads(?:\/([^/]*))?$/.exec(rest))) {
    kind = 'uploads';
  } else if ((m = /^(.+)\/blobs\/([^/]+)$/.exec(rest))) {
    kind = 'blobs';
  } else if ((m = /^(.+)\/tags\/list$/.exec(rest))) {
    kind = 'tags';
  } else {
    throw new MirrorError('NOT_FOUND', `no such endpoint ${path.slice(0, 100)}`);
  }
  const name = m[1] ?? '';
  const tail = m[2] ?? '';

  const { upstream, repo } = chooseUpstream(name, query, table);
  switch (kind) {
    case 'manifests':
      return {
        kind: 'manifest',
        upstream,
        repo,
        reference: manifestReference(tail),
        rawReference: tail,
      };
    case 'blobs':
      return { kind: 'blob', upstream, repo, digest: parseDigest(tail) };
    case 'tags':
      return { kind: 'tags', upstream, repo };
    case 'uploads':
      return { kind: 'upload', upstream, repo };
  }
}

function chooseUpstream(
  name: string,
  query: URLSearchParams,
  table: RoutingTable,
): { upstream: string; repo: string } {
  if (name.length > MAX_NAME_LENGTH + 256)
    throw new MirrorError('NAME_INVALID', 'repository name is too long');
  const ns = query.get('ns');
  if (ns !== null) {
    if (!table.upstreams.has(ns)) {
      throw new MirrorError('NAME_UNKNOWN', `registry "${ns.slice(0, 100)}" is not mirrored here`);
    }
    return { upstream: ns, repo: normalizeRepo(ns, parseRepository(name)) };
  }
  const slash = name.indexOf('/');
  if (slash > 0) {
    const first = name.slice(0, slash);
    if (table.upstreams.has(first)) {
      return { upstream: first, repo: normalizeRepo(first, parseRepository(name.slice(slash + 1))) };
    }
  }
  return {
    upstream: table.defaultUpstream,
    repo: normalizeRepo(table.defaultUpstream, parseRepository(name)),
  };
}

/** Docker Hub's official images live under `library/` (what `docker pull alpine` means). */
function normalizeRepo(upstream: string, repo: string): string {
  return upstream === 'docker.io' && !repo.includes('/') ? `library/${repo}` : repo;
}

/**
 * A manifest reference from the path. A malformed tag names no manifest: 404 MANIFEST_UNKNOWN,
 * as distribution answers and the OCI conformance suite's pull workflow expects
 * (`GET /v2/<name>/manifests/.INVALID_MANIFEST_NAME`); a malformed digest stays 400.
 */
function manifestReference(tail: string): ReturnType<typeof parseManifestReference> {
  try {
    return parseManifestReference(tail);
  } catch (err) {
    if (err instanceof OciParseError && err.code === 'TAG_INVALID') {
      throw new MirrorError('MANIFEST_UNKNOWN', `manifest unknown: ${err.message}`, { cause: err });
    }
    throw err;
  }
}
