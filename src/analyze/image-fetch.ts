import { createHash } from 'node:crypto';
import {
  formatImageReference,
  MANIFEST_MEDIA_TYPES,
  OciParseError,
  parseImageReference,
  parseManifest,
  type Descriptor,
  type ImageReference,
} from '../oci/index.js';
import { RegistryClient, UpstreamError, type Credentials } from '../registry-client/index.js';
import { AnalyzeError } from './errors.js';
import type { ImageInfo, LayerInfo } from './image-set.js';

/**
 * Reads what analysis needs of an image from its registry: the manifest (the platform's, from an
 * index), the config with its history, and each layer's uncompressed size from the gzip trailer
 * (RFC 1952 §2.3.1: ISIZE, the input size modulo 2^32, in the last four bytes), fetched with a
 * 4-byte range request instead of the layer.
 */

export interface FetchOptions {
  /** os/arch[/variant]; default linux/<this machine's arch>. */
  platform?: string;
  /** Registries reached over plain HTTP besides loopback ones. */
  plainHttp?: string[];
  credentials?: Record<string, Credentials>;
  /** Skip the per-layer range requests for uncompressed sizes. */
  skipUncompressed?: boolean;
  signal?: AbortSignal;
}

const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';
const ESTARGZ_UNCOMPRESSED = 'io.containers.estargz.uncompressed-size';
const BASE_NAME = 'org.opencontainers.image.base.name';

export function defaultPlatform(): string {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  return `linux/${arch[process.arch] ?? process.arch}`;
}

function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export class RegistryPool {
  private readonly clients = new Map<string, RegistryClient>();
  constructor(private readonly opts: FetchOptions) {}

  client(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      const http = isLoopback(registry) || (this.opts.plainHttp ?? []).includes(registry);
      const url =
        registry === 'docker.io'
          ? 'https://registry-1.docker.io'
          : `${http ? 'http' : 'https'}://${registry}`;
      const credentials = this.opts.credentials?.[registry];
      c = new RegistryClient({
        name: registry,
        url,
        ...(credentials ? { credentials } : {}),
        userAgent: 'hoist-analyze',
      });
      this.clients.set(registry, c);
    }
    return c;
  }
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function platformOf(d: Descriptor): string {
  const p = d.platform;
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '';
}

async function readBlob(
  client: RegistryClient,
  repo: string,
  digest: string,
  max: number,
  signal?: AbortSignal,
) {
  const res = await client.getBlob(repo, digest, signal ? { signal } : {});
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) {
      res.body.destroy();
      throw new AnalyzeError(
        'IMAGE_INVALID',
        `${repo}@${digest} is larger than ${max} bytes; not an image config`,
      );
    }
    chunks.push(chunk);
  }
  const body = Buffer.concat(chunks);
  if (sha256(body) !== digest)
    throw new AnalyzeError('IMAGE_CORRUPT', `${repo}@${digest}: content does not match its digest`);
  return body;
}

/** Uncompressed size of a layer: annotation, plain tar size, or the gzip ISIZE trailer. */
async function uncompressedSize(
  client: RegistryClient,
  repo: string,
  layer: Descriptor,
  signal?: AbortSignal,
) {
  const annotated = layer.annotations?.[ESTARGZ_UNCOMPRESSED];
  if (annotated && /^\d+$/.test(annotated)) return Number(annotated);
  if (/\.tar$/.test(layer.mediaType) || layer.mediaType.endsWith('.tar')) return layer.size;
  // ISIZE is modulo 2^32: only exact below 4 GiB of input; a larger layer stays unknown.
  if (!/gzip/.test(layer.mediaType) || layer.size < 18 || layer.size >= 2 ** 32) return null;
  const res = await client.getBlob(repo, layer.digest.value, {
    range: { start: layer.size - 4, end: layer.size - 1 },
    ...(signal ? { signal } : {}),
  });
  if (res.status !== 206) {
    res.body.destroy(); // the registry ignored the range: do not download the whole layer for this
    return null;
  }
  const chunks: Buffer[] = [];
  for await (const c of res.body as AsyncIterable<Buffer>) chunks.push(c);
  const tail = Buffer.concat(chunks);
  if (tail.length !== 4) return null;
  const isize = tail.readUInt32LE(0);
  // gzip never shrinks data by more than a few bytes' overhead, so an ISIZE well below the
  // compressed size means the input passed 4 GiB and wrapped: unknown rather than wrong.
  return isize + 1024 >= layer.size ? isize : null;
}

function describe(err: unknown): string {
  if (err instanceof UpstreamError || err instanceof OciParseError || err instanceof AnalyzeError)
    return err.message;
  return err instanceof Error ? err.message : String(err);
}

export async function fetchImage(
  pool: RegistryPool,
  input: string,
  opts: FetchOptions = {},
): Promise<ImageInfo> {
  let ref: ImageReference;
  try {
    ref = parseImageReference(input);
  } catch (err) {
    throw new AnalyzeError('INPUT_INVALID', `"${input}" is not an image reference: ${describe(err)}`, {
      cause: err,
    });
  }
  const client = pool.client(ref.registry);
  const repo = ref.repository;
  const signal = opts.signal;
  const wanted = opts.platform ?? defaultPlatform();
  try {
    const top = await client.getManifest(
      repo,
      ref.digest?.value ?? ref.tag ?? 'latest',
      MANIFEST_MEDIA_TYPES,
      signal ? { signal } : {},
    );
    const digest = sha256(top.body);
    if (ref.digest && ref.digest.value !== digest) {
      throw new AnalyzeError('IMAGE_CORRUPT', `${input}: the registry sent a manifest with digest ${digest}`);
    }
    let manifest = parseManifest(top.body, top.contentType);
    let manifestDigest = digest;
    if (manifest.kind === 'index') {
      const pick =
        manifest.manifests.find((m) => platformOf(m) === wanted) ??
        manifest.manifests.find((m) => platformOf(m).startsWith(`${wanted}/`));
      if (!pick) {
        const have = manifest.manifests.map(platformOf).filter(Boolean).join(', ');
        throw new AnalyzeError(
          'IMAGE_INVALID',
          `${input} has no ${wanted} image (it has ${have || 'none'}); choose one with --platform`,
        );
      }
      const sub = await client.getManifest(
        repo,
        pick.digest.value,
        MANIFEST_MEDIA_TYPES,
        signal ? { signal } : {},
      );
      manifestDigest = sha256(sub.body);
      if (manifestDigest !== pick.digest.value) {
        throw new AnalyzeError('IMAGE_CORRUPT', `${input}: platform manifest does not match its digest`);
      }
      manifest = parseManifest(sub.body, sub.contentType);
      if (manifest.kind !== 'manifest')
        throw new AnalyzeError('IMAGE_INVALID', `${input}: an index inside an index`);
    }
    const config = JSON.parse(
      (await readBlob(client, repo, manifest.config.digest.value, MAX_CONFIG_BYTES, signal)).toString('utf8'),
    ) as {
      created?: string;
      os?: string;
      architecture?: string;
      variant?: string;
      history?: Array<{ created_by?: string; empty_layer?: boolean }>;
    };
    const history = (config.history ?? []).filter((h) => h.empty_layer !== true);
    const aligned = history.length === manifest.layers.length;
    const layers: LayerInfo[] = [];
    for (const [i, l] of manifest.layers.entries()) {
      layers.push({
        digest: l.digest.value,
        size: l.size,
        mediaType: l.mediaType,
        uncompressedSize: opts.skipUncompressed ? null : await uncompressedSize(client, repo, l, signal),
        createdBy: aligned ? (history[i]?.created_by ?? null) : null,
      });
    }
    const platform = [config.os, config.architecture, config.variant].filter(Boolean).join('/');
    return {
      ref: input,
      repository: `${ref.registry}/${ref.repository}`,
      digest,
      manifestDigest,
      platform,
      created: typeof config.created === 'string' ? config.created : null,
      layers,
      lazy:
        manifest.layers.length > 0 && manifest.layers.every((l) => l.annotations?.[TOC_DIGEST] !== undefined),
      baseName: manifest.annotations?.[BASE_NAME] ?? null,
    };
  } catch (err) {
    if (err instanceof AnalyzeError) throw err;
    if (err instanceof SyntaxError || err instanceof OciParseError) {
      throw new AnalyzeError('IMAGE_INVALID', `${formatImageReference(ref)}: ${describe(err)}`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** Fetches every image, a few at a time, in the order given. */
export async function fetchImages(
  inputs: string[],
  opts: FetchOptions = {},
  concurrency = 4,
): Promise<ImageInfo[]> {
  const pool = new RegistryPool(opts);
  const out: ImageInfo[] = new Array<ImageInfo>(inputs.length);
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const i = next++;
      out[i] = await fetchImage(pool, inputs[i] ?? '', opts);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, inputs.length) }, worker));
  return out;
}
