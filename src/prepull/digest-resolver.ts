import { createHash } from 'node:crypto';
import { isLoopbackHost } from '../estargz/index.js';
import { digestOf, isDigest, MediaType, parseImageReference } from '../oci/index.js';
import { RegistryClient, UpstreamError, type Credentials } from '../registry-client/index.js';
import type { Resolution } from './plan.js';

/**
 * Tag -> digest, as containerd will see it: the manifest digest the registry serves for the tag
 * under containerd's Accept list (remotes/docker resolver), so a multi-arch image resolves to its
 * index, and a node that holds that digest needs no pull. HEAD first (no body, and no pull-rate
 * count on Docker Hub); a registry that sends no Docker-Content-Digest gets a GET and the body's
 * digest. Failures become `resolveError` text (registry words, never credentials).
 */

/** containerd's resolver Accept list, in its order. */
export const CONTAINERD_ACCEPT = [
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.OciIndex,
  '*/*',
];

export interface DigestResolverOptions {
  /** Registries reached over plain HTTP besides loopback ones (which always are, as in containerd). */
  plainHttp?: readonly string[];
  headersTimeoutMs?: number;
  userAgent?: string;
}

export class DigestResolver {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly opts: DigestResolverOptions = {}) {}

  private client(registry: string, credentials: Credentials | undefined): RegistryClient {
    // Keyed by a hash of the credentials, so a rotated password gets a fresh client (and tokens).
    const who = credentials
      ? createHash('sha256')
          .update(`${credentials.username}\0${credentials.password}`)
          .digest('hex')
          .slice(0, 16)
      : '';
    const key = `${registry}\0${who}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      const http = isLoopbackHost(registry) || (this.opts.plainHttp ?? []).includes(registry);
      const url =
        registry === 'docker.io'
          ? 'https://registry-1.docker.io'
          : `${http ? 'http' : 'https'}://${registry}`;
      client = new RegistryClient({
        name: registry,
        url,
        ...(credentials ? { credentials } : {}),
        headersTimeoutMs: this.opts.headersTimeoutMs ?? 15_000,
        userAgent: this.opts.userAgent ?? 'hoist-controller',
        // The controller retries at its next reconcile; a resolution should fail fast.
        retry: { baseDelayMs: 250, maxDelayMs: 2_000, clientBudgetMs: 3_000 },
      });
      if (this.clients.size > 256) this.clients.clear();
      this.clients.set(key, client);
    }
    return client;
  }

  async resolve(
    image: string,
    credentials: ReadonlyMap<string, Credentials>,
    signal?: AbortSignal,
  ): Promise<Resolution> {
    let ref;
    try {
      ref = parseImageReference(image);
    } catch (err) {
      return { resolveError: (err as Error).message };
    }
    if (ref.digest) return { digest: ref.digest.value };
    const client = this.client(ref.registry, credentials.get(ref.registry));
    const tag = ref.tag ?? 'latest';
    try {
      const head = await client.headManifest(ref.repository, tag, CONTAINERD_ACCEPT, { signal });
      if (head.digestHeader !== undefined && isDigest(head.digestHeader))
        return { digest: head.digestHeader };
      const res = await client.getManifest(ref.repository, tag, CONTAINERD_ACCEPT, { signal });
      return { digest: digestOf(res.body).value };
    } catch (err) {
      if (signal?.aborted) throw err;
      const message = err instanceof UpstreamError ? `${err.code}: ${err.message}` : (err as Error).message;
      return { resolveError: message.slice(0, 1000) };
    }
  }
}
