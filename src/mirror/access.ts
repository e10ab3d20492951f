import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Logger } from 'pino';
import { MANIFEST_MEDIA_TYPES } from '../oci/index.js';
import { RegistryClient, UpstreamError, type Credentials } from '../registry-client/index.js';
import { MirrorError } from './errors.js';

/**
 * Who may see what. The store is shared by every upstream and repository, so "it is cached" must
 * never be enough to serve it:
 *
 * 1. Membership: a blob or manifest (by digest) is served for `upstream/repo` only when it is
 *    known to belong there: the mirror fetched it for that repository, or the upstream confirmed
 *    it with a HEAD. Otherwise a client could read a private layer through any public repository
 *    by naming its digest. Recorded on disk (`access/<upstream>/<repo>/<alg>/<hex>`), so a
 *    restarted mirror serves offline what it knew. A record lives as long as its content: when a
 *    blob leaves the store, `forget` removes every record of its digest (see `byDigest`).
 * 2. Private repositories: when the mirror uses credentials for an upstream, a repository that
 *    anonymous clients cannot read upstream is served only to a client whose own credentials the
 *    upstream accepts for it (checked with a HEAD, cached for `cacheSeconds`). A client without
 *    credentials gets `401` with a Basic challenge, as a registry would. `trust` mode skips this
 *    check: a node-local mirror then serves what its own credentials can read to every client.
 */
export interface AccessOptions {
  storageRoot: string;
  clients: ReadonlyMap<string, RegistryClient>;
  /** Upstreams whose private repositories are served to every client (the operator trusts the node). */
  trusted: ReadonlySet<string>;
  cacheSeconds: number;
  logger: Logger;
  now?: () => number;
}

export type AccessTarget =
  { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };

export const CHALLENGE = 'Basic realm="hoist mirror", charset="UTF-8"';

export class AccessControl {
  private readonly dir: string;
  private readonly anonymous = new Map<string, RegistryClient>();
  private readonly withClientCreds = new Map<string, RegistryClient>();
  private readonly decisions = new Map<string, { allowed: boolean; until: number }>();
  private readonly now: () => number;
  /** Memberships known this run, so that a hit costs no disk look-up. */
  private readonly known = new Set<string>();
  /**
   * Every record on disk, by digest: built by one walk in `init` and kept current by
   * `recordMember` and `forget`, so that an eviction removes its records without walking the tree.
   */
  private readonly byDigest = new Map<string, Set<string>>();

  constructor(private readonly options: AccessOptions) {
    this.dir = join(options.storageRoot, 'access');
    this.now = options.now ?? Date.now;
  }

  /**
   * Whether some repositories may need the client's credentials. The `/v2/` ping then challenges
   * clients that sent none: skopeo and docker decide from the ping whether to send credentials at
   * all, and a client without credentials still pulls public content (it ignores the challenge).
   */
  get mayNeedLogin(): boolean {
    for (const [name, client] of this.options.clients) {
      if (client.hasCredentials && !this.options.trusted.has(name)) return true;
    }
    return false;
  }

  /**
   * Throws unless the client may read `target` in `upstream/repo`. Only upstreams the mirror
   * reaches with credentials can hold private content; for the others everything the mirror
   * holds was fetched anonymously, and any client could fetch it upstream too.
   */
  async authorize(
    authorization: string | undefined,
    upstream: string,
    repo: string,
    target: AccessTarget,
  ): Promise<void> {
    const client = this.options.clients.get(upstream);
    if (!client?.hasCredentials || this.options.trusted.has(upstream)) return;
    if (await this.isPublic(client, upstream, repo, target)) return;
    if (!authorization) {
      throw new MirrorError(
        'UNAUTHORIZED',
        `${upstream}/${repo} is private: log in to this mirror with your registry credentials`,
      );
    }
    const key = `client\n${upstream}\n${repo}\n${createHash('sha256').update(authorization).digest('hex')}`;
    const cached = this.decisions.get(key);
    if (cached && cached.until > this.now()) {
      if (cached.allowed) return;
      throw new MirrorError('UNAUTHORIZED', `the upstream refused these credentials for ${upstream}/${repo}`);
    }
    const result = await this.probe(this.clientFor(client, authorization), repo, target);
    if (result === 'missing') {
      // The credentials work, but the upstream has no such thing in this repository.
      this.remember(key, true);
      throw new MirrorError(
        target.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
        `${upstream}/${repo} has no ${target.kind === 'blob' ? target.digest : 'such manifest'}`,
      );
    }
    this.remember(key, result === 'ok');
    if (result !== 'ok') {
      throw new MirrorError('UNAUTHORIZED', `the upstream refused these credentials for ${upstream}/${repo}`);
    }
  }

  /**
   * Indexes the records on disk, and removes those whose content is no longer stored (`isStored`
   * false): left by a blob removed while the mirror was stopped (`hoist mirror verify`) or by a
   * version of the mirror that kept records of evicted blobs. Call before serving.
   */
  async init(isStored: (digest: string) => Promise<boolean>): Promise<void> {
    this.byDigest.clear();
    this.known.clear();
    const stale = new Set<string>();
    for (const { digest, path } of await walkRecords(this.dir)) {
      this.index(digest, path);
      if (!stale.has(digest) && !(await isStored(digest))) stale.add(digest);
    }
    for (const digest of stale) await this.forget(digest);
    if (stale.size > 0) {
      this.options.logger.info({ digests: stale.size }, 'removed access records of content no longer stored');
    }
  }

  /**
   * Removes every record of `digest` (all upstreams and repositories), and the repository
   * directories that leaves empty. Called when the content leaves the store: a later fetch records
   * it again.
   */
  async forget(digest: string): Promise<void> {
    const paths = this.byDigest.get(digest);
    if (!paths) return;
    this.byDigest.delete(digest);
    for (const path of paths) {
      this.known.delete(path);
      await rm(path, { force: true });
      await this.removeEmptyDirs(dirname(path));
    }
  }

  /** Removes `dir` and its parents up to (not including) the access root while they are empty. */
  private async removeEmptyDirs(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(this.dir + sep); d = dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (ENOTEMPTY), or gone already
      }
    }
  }

  private index(digest: string, path: string): void {
    let paths = this.byDigest.get(digest);
    if (!paths) {
      paths = new Set();
      this.byDigest.set(digest, paths);
    }
    paths.add(path);
  }

  /** Records that `digest` belongs to `upstream/repo` (the upstream just served it for that repository). */
  async recordMember(upstream: string, repo: string, digest: string): Promise<void> {
    const path = this.memberPath(upstream, repo, digest);
    if (this.known.has(path)) return;
    this.rememberKnown(path);
    this.index(digest, path);
    // Twice: a concurrent `forget` of another record may remove the directory between the two calls.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        const handle = await open(path, 'a');
        await handle.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
      }
    }
  }

  /**
   * Whether `digest` may be served for `upstream/repo`: recorded before, or confirmed now with a
   * HEAD upstream (with the mirror's own access). Unknown and unconfirmable (upstream down) is a no.
   */
  async isMember(
    upstream: string,
    repo: string,
    target: AccessTarget & { digest?: string },
    digest: string,
  ): Promise<boolean> {
    if (await exists(this.memberPath(upstream, repo, digest))) return true;
    const client = this.options.clients.get(upstream);
    if (!client) return false;
    const confirmed = (await this.probe(client, repo, target, true)) === 'ok';
    if (confirmed) await this.recordMember(upstream, repo, digest);
    return confirmed;
  }

  /** Whether the membership is on record (no upstream request). */
  async knownMember(upstream: string, repo: string, digest: string): Promise<boolean> {
    const path = this.memberPath(upstream, repo, digest);
    if (this.known.has(path)) return true;
    if (!(await exists(path))) return false;
    this.rememberKnown(path);
    return true;
  }

  private rememberKnown(path: string): void {
    if (this.known.size > MAX_DECISIONS) this.known.clear();
    this.known.add(path);
  }

  private async isPublic(
    client: RegistryClient,
    upstream: string,
    repo: string,
    target: AccessTarget,
  ): Promise<boolean> {
    const key = `public\n${upstream}\n${repo}`;
    const cached = this.decisions.get(key);
    if (cached && cached.until > this.now()) return cached.allowed;
    let anon = this.anonymous.get(upstream);
    if (!anon) {
      anon = new RegistryClient({ name: upstream, url: client.baseUrl, userAgent: 'hoist-mirror' });
      this.anonymous.set(upstream, anon);
    }
    let isPublic: boolean;
    try {
      // A 404 to an anonymous client still means the repository is readable anonymously.
      isPublic = (await this.probe(anon, repo, target)) !== 'denied';
    } catch (err) {
      // Unknown (upstream unreachable): treat as private, so that only proven clients are served.
      this.options.logger.warn(
        { upstream, repo, err: String(err) },
        'cannot tell whether the repository is public',
      );
      return false;
    }
    this.remember(key, isPublic);
    return isPublic;
  }

  /**
   * HEADs the target with `client`'s access: `ok` when the upstream serves it, `denied` when it
   * refuses these credentials (401, 403), `missing` when it says there is no such thing (404).
   * Other failures (unreachable) throw, unless `quiet` (then `denied`).
   */
  private async probe(
    client: RegistryClient,
    repo: string,
    target: AccessTarget,
    quiet = false,
  ): Promise<Probe> {
    try {
      if (target.kind === 'blob') await client.headBlob(repo, target.digest);
      else if (target.kind === 'tags') await client.listTags(repo, '?n=1');
      else await client.headManifest(repo, target.reference, MANIFEST_MEDIA_TYPES);
      return 'ok';
    } catch (err) {
      if (err instanceof UpstreamError && MISSING.has(err.code)) return 'missing';
      if (err instanceof UpstreamError && DENIALS.has(err.code)) return 'denied';
      if (quiet) return 'denied';
      throw err;
    }
  }

  private clientFor(base: RegistryClient, authorization: string): RegistryClient {
    const creds = parseBasic(authorization);
    if (!creds)
      throw new MirrorError('UNAUTHORIZED', 'send registry credentials as HTTP Basic authorization');
    const key = `${base.name}\n${createHash('sha256').update(authorization).digest('hex')}`;
    let c = this.withClientCreds.get(key);
    if (!c) {
      if (this.withClientCreds.size > MAX_CLIENTS) this.withClientCreds.clear();
      c = new RegistryClient({
        name: base.name,
        url: base.baseUrl,
        credentials: creds,
        userAgent: 'hoist-mirror',
      });
      this.withClientCreds.set(key, c);
    }
    return c;
  }

  private remember(key: string, allowed: boolean): void {
    if (this.decisions.size > MAX_DECISIONS) this.decisions.clear();
    this.decisions.set(key, { allowed, until: this.now() + this.options.cacheSeconds * 1000 });
  }

  private memberPath(upstream: string, repo: string, digest: string): string {
    const [algorithm, hex] = digest.split(':');
    return join(this.dir, encodeURIComponent(upstream), repo, '_members', algorithm ?? '', hex ?? '');
  }
}

type Probe = 'ok' | 'denied' | 'missing';
const DENIALS = new Set(['UNAUTHORIZED', 'DENIED']);
const MISSING = new Set(['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN']);
const MAX_CLIENTS = 1000;
const MAX_DECISIONS = 100_000;

function parseBasic(authorization: string): Credentials | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Every record under the access root (`<upstream>/<repo...>/_members/<alg>/<hex>`). Repository
 * components cannot start with `_` (distribution-spec name grammar), so `_members` is unambiguous.
 */
async function walkRecords(root: string): Promise<Array<{ digest: string; path: string }>> {
  const found: Array<{ digest: string; path: string }> = [];
  const visit = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      const path = join(dir, entry.name);
      if (entry.name !== '_members') {
        await visit(path);
        continue;
      }
      for (const algorithm of await readdir(path).catch(() => [])) {
        for (const hex of await readdir(join(path, algorithm)).catch(() => [])) {
          found.push({ digest: `${algorithm}:${hex}`, path: join(path, algorithm, hex) });
        }
      }
    }
  };
  await visit(root);
  return found;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
