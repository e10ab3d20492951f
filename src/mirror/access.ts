import { mkdir, open, rm, rmdir } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { syncDir } from '../fs/index.js';
import { MANIFEST_MEDIA_TYPES } from '../oci/index.js';
import { RegistryClient, UpstreamError, type Credentials } from '../registry-client/index.js';
import {
  learnsPrivate,
  nextStep,
  upstreamMode,
  type AccessFacts,
  type ClientCheck,
  type UpstreamMode,
} from './access-decision.js';
import { exists, privateMarkPath, walkRecords } from './access-records.js';
import { credentialKey, CredentialClients, parseClientCredentials } from './client-credentials.js';
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
 * 2. Private repositories (see access-decision.ts for the modes): a repository that anonymous
 *    clients cannot read upstream is served, even from the cache, only to a client whose own
 *    credentials the upstream accepts for it (checked with a HEAD, cached for `cacheSeconds`). A
 *    client without credentials gets `401` with a Basic challenge, as a registry would. With no
 *    credentials of its own the mirror uses the client's upstream; a repository it fetched so is
 *    recorded as private (`access/<upstream>/<repo>/_private`) before anything is fetched, so
 *    that after a restart its cached content still needs a checked client.
 */
export interface AccessOptions {
  storageRoot: string;
  clients: ReadonlyMap<string, RegistryClient>;
  /** Upstreams whose private repositories are served to every client (the operator trusts the node). */
  trusted: ReadonlySet<string>;
  cacheSeconds: number;
  logger: Logger;
  /** Makes the upstream client for a client's credentials (same timeouts and retries as `base`). */
  makeClient?: (base: RegistryClient, creds: Credentials) => RegistryClient;
  now?: () => number;
}

export type AccessTarget =
  { kind: 'manifest'; reference: string } | { kind: 'blob'; digest: string } | { kind: 'tags' };

/** What a request may use upstream, once authorized. */
export interface Source {
  client: RegistryClient;
  /** `mirror`: the mirror's own client (its credentials, or anonymous); `client`: the client's credentials. */
  via: 'mirror' | 'client';
}

export const CHALLENGE = 'Basic realm="hoist mirror", charset="UTF-8"';

export class AccessControl {
  private readonly dir: string;
  private readonly anonymous = new Map<string, RegistryClient>();
  private readonly withClientCreds: CredentialClients;
  private readonly decisions = new Map<string, { allowed: boolean; until: number }>();
  private readonly now: () => number;
  /** Memberships known this run, so that a hit costs no disk look-up. */
  private readonly known = new Set<string>();
  /**
   * Every record on disk, by digest: built by one walk in `init` and kept current by
   * `recordMember` and `forget`, so that an eviction removes its records without walking the tree.
   */
  private readonly byDigest = new Map<string, Set<string>>();
  /** passthrough repositories recorded as private on disk (`upstream\nrepo`). */
  private readonly privateRepos = new Set<string>();
  /** passthrough repositories whose anonymous request the upstream refused this run. */
  private readonly refusedAnonymous = new Set<string>();

  constructor(private readonly options: AccessOptions) {
    this.dir = join(options.storageRoot, 'access');
    this.now = options.now ?? Date.now;
    const now = this.now;
    this.withClientCreds = new CredentialClients({
      make:
        options.makeClient ??
        ((base, credentials) =>
          new RegistryClient({ name: base.name, url: base.baseUrl, credentials, userAgent: 'hoist-mirror' })),
      now,
    });
  }

  /**
   * Whether some repositories may need the client's credentials. The `/v2/` ping then carries a
   * Basic challenge, so that skopeo, podman and CRI-O send credentials when they hold some.
   */
  get mayNeedLogin(): boolean {
    for (const name of this.options.clients.keys()) {
      if (this.mode(name) !== 'trust') return true;
    }
    return false;
  }

  private mode(upstream: string): UpstreamMode {
    const client = this.options.clients.get(upstream);
    return upstreamMode(
      client?.hasCredentials ?? false,
      this.options.trusted.has(upstream) ? 'trust' : 'verify',
    );
  }

  /**
   * Runs `use` with what the client may use upstream for `target` in `upstream/repo`, and throws
   * unless the client may read it. When an anonymous request of a passthrough upstream is refused
   * (and `canRetry`: nothing was sent to the client yet), the repository is known private from
   * then on and `use` runs again with the client's own credentials (or the client is challenged).
   */
  async withSource<T>(
    authorization: string | undefined,
    upstream: string,
    repo: string,
    target: AccessTarget,
    use: (client: RegistryClient) => Promise<T>,
    canRetry: () => boolean = () => true,
  ): Promise<T> {
    const first = await this.authorize(authorization, upstream, repo, target);
    try {
      return await use(first.client);
    } catch (err) {
      const code = err instanceof UpstreamError ? err.code : undefined;
      if (code === undefined || !learnsPrivate(this.mode(upstream), first.via, code) || !canRetry())
        throw err;
      this.learnPrivate(upstream, repo);
    }
    const second = await this.authorize(authorization, upstream, repo, target);
    return use(second.client);
  }

  /**
   * Decides whether the client may read `target` in `upstream/repo` (throws when not), and with
   * which client the mirror reaches the upstream for it.
   */
  async authorize(
    authorization: string | undefined,
    upstream: string,
    repo: string,
    target: AccessTarget,
  ): Promise<Source> {
    const base = this.options.clients.get(upstream);
    if (!base) throw new MirrorError('NAME_UNKNOWN', `registry "${upstream}" is not mirrored here`);
    const mode = this.mode(upstream);
    const repoKey = `${upstream}\n${repo}`;
    const facts: AccessFacts = {
      mode,
      knownPrivate: this.privateRepos.has(repoKey) || this.refusedAnonymous.has(repoKey),
      clientHasCredentials: false,
    };
    let creds: Credentials | undefined;
    let credsParsed = false;
    for (;;) {
      const step = nextStep(facts);
      switch (step.kind) {
        case 'serve':
          if (step.via === 'mirror') return { client: base, via: 'mirror' };
          if (!creds) throw new Error('unreachable: serving with client credentials needs some');
          if (!this.privateRepos.has(repoKey)) await this.markPrivate(upstream, repo);
          return { client: this.withClientCreds.get(base, creds), via: 'client' };
        case 'ask':
          if (step.question === 'public') {
            facts.isPublic = await this.isPublic(base, mode, upstream, repo, target);
            // Parsed only now: a public repository ignores whatever the client sent.
            if (!credsParsed) {
              creds = parseClientCredentials(authorization);
              credsParsed = true;
              facts.clientHasCredentials = creds !== undefined;
            }
          } else if (creds) {
            facts.clientCheck = await this.checkClient(base, creds, upstream, repo, target);
          }
          break;
        case 'challenge':
          throw new MirrorError(
            'UNAUTHORIZED',
            `${upstream}/${repo} is private: log in to this mirror with your registry credentials`,
          );
        case 'refuse':
          throw new MirrorError(
            'UNAUTHORIZED',
            `the upstream refused these credentials for ${upstream}/${repo}`,
          );
        case 'missing':
          throw new MirrorError(
            target.kind === 'blob' ? 'BLOB_UNKNOWN' : 'MANIFEST_UNKNOWN',
            `${upstream}/${repo} has no ${target.kind === 'blob' ? target.digest : 'such manifest'}`,
          );
      }
    }
  }

  /** The upstream's answer to the client's own credentials, cached for `cacheSeconds`. */
  private async checkClient(
    base: RegistryClient,
    creds: Credentials,
    upstream: string,
    repo: string,
    target: AccessTarget,
  ): Promise<ClientCheck> {
    const key = `client\n${upstream}\n${repo}\n${credentialKey(upstream, creds)}`;
    const cached = this.decisions.get(key);
    if (cached && cached.until > this.now()) return cached.allowed ? 'ok' : 'denied';
    const result = await this.probe(this.withClientCreds.get(base, creds), repo, target);
    if (result === 'error') throw new Error('unreachable: a loud probe throws');
    // `missing`: the credentials work, but the upstream has no such thing in this repository.
    this.remember(key, result !== 'denied');
    return result;
  }

  /** Anonymous requests for `upstream/repo` are refused upstream: ask with the client's credentials. */
  private learnPrivate(upstream: string, repo: string): void {
    if (this.refusedAnonymous.size > MAX_DECISIONS) this.refusedAnonymous.clear();
    this.refusedAnonymous.add(`${upstream}\n${repo}`);
    this.remember(`public\n${upstream}\n${repo}`, false);
  }

  /**
   * Records on disk that `upstream/repo` is private, before anything is fetched with a client's
   * credentials: a restarted mirror must not take its cached content for public.
   */
  private async markPrivate(upstream: string, repo: string): Promise<void> {
    const path = privateMarkPath(this.dir, upstream, repo);
    // Twice: a concurrent `forget` may remove the new, still empty directory between the calls.
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        await (await open(path, 'a')).close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 0) throw err;
      }
    }
    // Durable before any private content is: fsync every directory from the mark's up to the
    // storage root (the directories may be new), as for the store's own writes.
    const root = resolve(dirname(this.dir));
    for (let d = resolve(dirname(path)); ; d = dirname(d)) {
      await syncDir(d);
      if (d === root || !d.startsWith(root + sep)) break;
    }
    this.privateRepos.add(`${upstream}\n${repo}`);
    this.options.logger.info(
      { upstream, repo },
      'private repository: fetched with each checked client’s own credentials',
    );
  }

  /**
   * Indexes the records on disk, and removes those whose content is no longer stored (`isStored`
   * false): left by a blob removed while the mirror was stopped (`hoist mirror verify`) or by a
   * version of the mirror that kept records of evicted blobs. Call before serving.
   */
  async init(isStored: (digest: string) => Promise<boolean>): Promise<void> {
    this.byDigest.clear();
    this.known.clear();
    this.privateRepos.clear();
    const stale = new Set<string>();
    const { members, privateRepos } = await walkRecords(this.dir);
    for (const repo of privateRepos) this.privateRepos.add(repo);
    for (const { digest, path } of members) {
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
   * HEAD upstream with `source` (what `authorize` chose for this request: the mirror's access, or
   * the client's own). Unknown and unconfirmable (upstream down) is a no. An anonymous HEAD that a
   * passthrough upstream refuses throws UNAUTHORIZED, so that `withSource` asks the client.
   */
  async isMember(
    upstream: string,
    repo: string,
    target: AccessTarget & { digest?: string },
    digest: string,
    source?: RegistryClient,
  ): Promise<boolean> {
    if (await exists(this.memberPath(upstream, repo, digest))) return true;
    const client = source ?? this.options.clients.get(upstream);
    if (!client) return false;
    const result = await this.probe(client, repo, target, true);
    if (result === 'denied' && !client.hasCredentials && this.mode(upstream) === 'passthrough') {
      throw new UpstreamError('UNAUTHORIZED', `${upstream}/${repo} refuses anonymous requests`);
    }
    const confirmed = result === 'ok';
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
    mode: UpstreamMode,
    upstream: string,
    repo: string,
    target: AccessTarget,
  ): Promise<boolean> {
    const key = `public\n${upstream}\n${repo}`;
    const cached = this.decisions.get(key);
    if (cached && cached.until > this.now()) return cached.allowed;
    // A passthrough upstream's own client is anonymous already.
    let anon = mode === 'passthrough' ? client : this.anonymous.get(upstream);
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
   * Other failures (unreachable) throw, unless `quiet` (then `error`).
   */
  private async probe(
    client: RegistryClient,
    repo: string,
    target: AccessTarget,
    quiet = false,
  ): Promise<ClientCheck | 'error'> {
    try {
      if (target.kind === 'blob') await client.headBlob(repo, target.digest);
      else if (target.kind === 'tags') await client.listTags(repo, '?n=1');
      else await client.headManifest(repo, target.reference, MANIFEST_MEDIA_TYPES);
      return 'ok';
    } catch (err) {
      if (err instanceof UpstreamError && MISSING.has(err.code)) return 'missing';
      if (err instanceof UpstreamError && DENIALS.has(err.code)) return 'denied';
      if (quiet) return 'error';
      throw err;
    }
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

const DENIALS = new Set(['UNAUTHORIZED', 'DENIED']);
const MISSING = new Set(['MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN']);
const MAX_DECISIONS = 100_000;
