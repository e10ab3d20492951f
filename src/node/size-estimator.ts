import { readFile } from 'node:fs/promises';
import {
  digestOf,
  formatImageReference,
  formatPlatform,
  MANIFEST_MEDIA_TYPES,
  parseImageReference,
  parseManifest,
  type ImageReference,
  type ParsedManifest,
  type Platform,
} from '../oci/index.js';
import { RegistryClient } from '../registry-client/index.js';
import type { RegistryCredentials } from './auth-file.js';
import { hostsTomlPath } from './hosts-config.js';
import { defaultOrigin, parseHostsToml, type HostsToml } from './hosts-toml.js';
import {
  estimateFromManifest,
  nodePlatform,
  selectPlatformManifest,
  type ImageSizeEstimate,
} from './image-size.js';

/**
 * Estimates an image's size before it is pulled by reading its manifest through the hosts the
 * runtime would use: the mirror given (--mirror), then the hosts of the registry's hosts.toml
 * in their order, then its `server` (the registry itself), trying the next on any failure as
 * containerd does (docs/hosts.md). Mirrors get the `ns` query parameter containerd sends
 * (remotes/docker/resolver.go addNamespace), so a Hoist mirror picks the right upstream.
 */

export interface SizeEstimatorOptions {
  /** containerd's config_path, to read `<certsDir>/<registry>/hosts.toml`. */
  certsDir?: string;
  /** The mirror to try first. */
  mirrorUrl?: string;
  /** Credentials for an image's registry, answered to any host that challenges (as containerd does). */
  credentials?: (registry: string) => RegistryCredentials | undefined;
  /** Digests already in the runtime's content store (containerd); rejected or absent: none known. */
  presentDigests?: () => Promise<ReadonlySet<string>>;
  /** Default: linux and this machine's architecture. */
  platform?: Platform;
  /** How long one host may take to answer (milliseconds). */
  headersTimeoutMs?: number;
}

interface Host {
  url: string;
  /** A mirror rather than the registry itself: gets `?ns=<registry>`. */
  mirror: boolean;
}

const norm = (url: string) => url.replace(/\/+$/, '');

/**
 * The server containerd uses when hosts.toml names none (remotes/docker/config/hosts.go
 * ConfigureHosts): Docker Hub's API host, plain HTTP for a loopback registry, else HTTPS.
 */
export function defaultServer(registry: string): string {
  const host = registry.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1') {
    return `http://${registry}`;
  }
  return defaultOrigin(registry);
}

/** Pure: the hosts containerd would try for `registry`, given its hosts.toml (if any). */
export function registryHosts(
  registry: string,
  doc: HostsToml | undefined,
  opts: { mirrorUrl?: string; needResolve: boolean },
): Host[] {
  const server = norm(doc?.server ?? defaultServer(registry));
  const out: Host[] = [];
  const add = (url: string) => {
    const u = norm(url);
    if (!out.some((h) => h.url === u)) out.push({ url: u, mirror: u !== server });
  };
  if (opts.mirrorUrl) add(opts.mirrorUrl);
  for (const [url, entry] of Object.entries(doc?.host ?? {})) {
    // override_path hosts take the API path in their URL; containerd's default capabilities
    // are pull, resolve and push. A tag needs "resolve", a digest "pull".
    if (entry.override_path === true) continue;
    const caps = Array.isArray(entry.capabilities) ? entry.capabilities : ['pull', 'resolve', 'push'];
    if (!caps.includes(opts.needResolve ? 'resolve' : 'pull')) continue;
    add(url);
  }
  add(server);
  return out;
}

async function readHostsToml(certsDir: string, registry: string): Promise<HostsToml | undefined> {
  const path = hostsTomlPath(certsDir, registry);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  return parseHostsToml(text, path);
}

export class ImageSizeEstimator {
  private readonly opts: SizeEstimatorOptions;
  /** One client per host and registry, so tokens are reused across pulls. */
  private readonly clients = new Map<string, RegistryClient>();

  constructor(opts: SizeEstimatorOptions = {}) {
    this.opts = opts;
  }

  /** Throws (one line naming every host tried) when no host answers with a usable manifest. */
  async estimate(image: string, signal?: AbortSignal): Promise<ImageSizeEstimate> {
    const ref = parseImageReference(image);
    const doc = this.opts.certsDir ? await readHostsToml(this.opts.certsDir, ref.registry) : undefined;
    const hosts = registryHosts(ref.registry, doc, {
      ...(this.opts.mirrorUrl ? { mirrorUrl: this.opts.mirrorUrl } : {}),
      needResolve: ref.digest === undefined,
    });
    const present = this.opts.presentDigests
      ? this.opts.presentDigests().catch(() => new Set<string>())
      : Promise.resolve(new Set<string>());
    const failures: string[] = [];
    for (const host of hosts) {
      try {
        const found = await this.resolve(host, ref, signal);
        return estimateFromManifest(
          found.manifest,
          {
            image,
            source: host.url,
            manifestDigest: found.digest,
            ...(found.platform ? { platform: found.platform } : {}),
          },
          await present,
        );
      } catch (err) {
        if (signal?.aborted) throw err;
        failures.push(`${host.url}: ${(err as Error).message}`);
      }
    }
    throw new Error(`cannot read the manifest of ${formatImageReference(ref)} (${failures.join('; ')})`);
  }

  private client(host: Host, registry: string): RegistryClient {
    const key = `${host.url} ${registry}`;
    let client = this.clients.get(key);
    if (!client) {
      const credentials = this.opts.credentials?.(registry);
      client = new RegistryClient({
        name: new URL(host.url).host,
        url: host.url,
        headersTimeoutMs: this.opts.headersTimeoutMs ?? 10_000,
        userAgent: 'hoist-agent',
        ...(credentials ? { credentials } : {}),
      });
      this.clients.set(key, client);
    }
    return client;
  }

  private async fetch(
    host: Host,
    ref: ImageReference,
    reference: string,
    signal: AbortSignal | undefined,
  ): Promise<{ manifest: ParsedManifest; digest: string }> {
    const client = this.client(host, ref.registry);
    const query = host.mirror ? `?ns=${encodeURIComponent(ref.registry)}` : '';
    const res = await client.request(
      'GET',
      `/v2/${ref.repository}/manifests/${reference}${query}`,
      ref.repository,
      { headers: { accept: MANIFEST_MEDIA_TYPES.join(', ') }, signal },
    );
    if (res.status !== 200) {
      await res.discard();
      throw new Error(`answered ${res.status} for manifest ${ref.repository}:${reference}`);
    }
    const body = await res.bytes();
    const digest = digestOf(body).value;
    // Fetched by digest: the bytes must be that digest (distribution-spec "Pulling manifests").
    if (reference.includes(':') && digest !== reference) {
      throw new Error(`sent manifest ${digest} for ${reference}`);
    }
    return { manifest: parseManifest(body, res.headers.get('content-type') ?? undefined), digest };
  }

  private async resolve(
    host: Host,
    ref: ImageReference,
    signal: AbortSignal | undefined,
  ): Promise<{
    manifest: Extract<ParsedManifest, { kind: 'manifest' }>;
    digest: string;
    platform?: string;
  }> {
    // containerd pulls by digest when the reference has one, whatever its tag.
    const top = await this.fetch(host, ref, ref.digest?.value ?? ref.tag ?? 'latest', signal);
    if (top.manifest.kind === 'manifest') return { manifest: top.manifest, digest: top.digest };
    const platform = this.opts.platform ?? nodePlatform();
    const entry = selectPlatformManifest(top.manifest.manifests, platform);
    if (!entry) {
      const have = top.manifest.manifests.flatMap((m) => (m.platform ? [formatPlatform(m.platform)] : []));
      throw new Error(
        `index has no ${formatPlatform(platform)} manifest (has: ${have.join(', ') || 'none'})`,
      );
    }
    const child = await this.fetch(host, ref, entry.digest.value, signal);
    if (child.manifest.kind !== 'manifest') throw new Error(`${entry.digest.value} is not an image manifest`);
    return {
      manifest: child.manifest,
      digest: child.digest,
      platform: formatPlatform(entry.platform ?? platform),
    };
  }
}
