/**
 * Registry-to-registry image conversion: reads an image (a manifest, or an index and every
 * platform in it), converts each gzip or tar layer to eStargz, keeps layers already in eStargz,
 * and pushes OCI manifests whose layers carry the TOC digest and uncompressed size annotations
 * and whose config lists the new diff IDs (image-spec config.md "rootfs").
 */
import {
  digestOf,
  MANIFEST_MEDIA_TYPES,
  MediaType,
  parseManifest,
  type Descriptor,
  type ParsedManifest,
  type Platform,
} from '../oci/index.js';
import { pushBlob, pushManifest } from '../registry-client/index.js';
import { TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION } from './constants.js';
import type { ConvertLayerOptions } from './convert-layer.js';
import { EstargzError } from './errors.js';
import {
  convertAndUpload,
  copyBlob,
  readSmallBlob,
  type RepoRef,
  type TransferProgress,
} from './layer-transfer.js';

export interface ConvertImageOptions extends ConvertLayerOptions {
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
}

export interface ProgressEvent extends TransferProgress {
  layer: string;
  layerSize: number;
}

export type LayerOutcome =
  | {
      action: 'converted';
      source: string;
      digest: string;
      size: number;
      diffId: string;
      tocDigest: string;
      uncompressedSize: number;
      missedPrioritized: string[];
    }
  | { action: 'kept'; source: string; digest: string; size: number; reason: string };

export interface ManifestOutcome {
  platform?: Platform;
  source: string;
  digest: string;
  layers: LayerOutcome[];
}

export interface ConvertImageResult {
  /** Digest of what the destination tag now names. */
  digest: string;
  mediaType: string;
  manifests: ManifestOutcome[];
}

const GZIP_OR_TAR = new Set<string>([
  MediaType.OciLayerGzip,
  MediaType.OciLayerTar,
  MediaType.DockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
]);
const ZSTD = new Set<string>([MediaType.OciLayerZstd]);
const FOREIGN = /nondistributable|foreign/;

type Plan = { kind: 'convert' } | { kind: 'keep'; reason: string };

/** Decides per layer, before anything is pushed, so that a zstd layer fails the run up front. */
export function planLayer(layer: Descriptor): Plan {
  if (layer.annotations?.[TOC_DIGEST_ANNOTATION]) return { kind: 'keep', reason: 'already eStargz' };
  if (FOREIGN.test(layer.mediaType)) return { kind: 'keep', reason: 'non-distributable layer' };
  if (ZSTD.has(layer.mediaType)) {
    throw new EstargzError(
      'UNSUPPORTED_COMPRESSION',
      `layer ${layer.digest.value} is zstd-compressed (${layer.mediaType}); Hoist converts gzip or uncompressed layers only (Node 20 has no zstd): rebuild the image with gzip layers`,
    );
  }
  if (!GZIP_OR_TAR.has(layer.mediaType)) {
    throw new EstargzError(
      'UNSUPPORTED_MEDIA_TYPE',
      `layer ${layer.digest.value} has media type ${layer.mediaType}, which is not an image layer Hoist converts`,
    );
  }
  return { kind: 'convert' };
}

interface Fetched {
  body: Buffer;
  manifest: ParsedManifest;
}

async function fetchManifest(src: RepoRef, reference: string, signal?: AbortSignal): Promise<Fetched> {
  const res = await src.client.getManifest(src.repo, reference, MANIFEST_MEDIA_TYPES, { signal });
  if (reference.includes(':') && digestOf(res.body).value !== reference) {
    throw new EstargzError('DIGEST_MISMATCH', `manifest ${src.repo}@${reference} does not match its digest`);
  }
  return { body: res.body, manifest: parseManifest(res.body, res.contentType) };
}

/** A descriptor as JSON, keeping the source's platform and annotations. */
function descriptorJson(d: {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform | undefined;
  annotations?: Record<string, string> | undefined;
}): Record<string, unknown> {
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.platform ? { platform: d.platform } : {}),
    ...(d.annotations && Object.keys(d.annotations).length > 0 ? { annotations: d.annotations } : {}),
  };
}

export class ImageConverter {
  /** Conversions by source layer digest: platforms that share a layer convert it once. */
  private readonly layers = new Map<string, Promise<LayerOutcome>>();

  constructor(
    private readonly src: RepoRef,
    private readonly dst: RepoRef,
    private readonly options: ConvertImageOptions = {},
  ) {}

  async convert(reference: string, dstTag: string): Promise<ConvertImageResult> {
    const top = await fetchManifest(this.src, reference, this.options.signal);
    if (top.manifest.kind === 'manifest') {
      for (const l of top.manifest.layers) planLayer(l);
      const out = await this.convertManifest(top.manifest, digestOf(top.body).value, dstTag);
      return { digest: out.digest, mediaType: MediaType.OciManifest, manifests: [out] };
    }
    // Fetch and check every platform first: nothing is pushed for an image Hoist cannot convert.
    const children: Array<{ desc: Descriptor; fetched: Fetched }> = [];
    for (const desc of top.manifest.manifests) {
      const fetched = await fetchManifest(this.src, desc.digest.value, this.options.signal);
      if (fetched.manifest.kind !== 'manifest') {
        throw new EstargzError(
          'UNSUPPORTED_MEDIA_TYPE',
          `index ${reference} nests an index (${desc.digest.value})`,
        );
      }
      for (const l of fetched.manifest.layers) planLayer(l);
      children.push({ desc, fetched });
    }
    const outcomes: Array<ManifestOutcome & { size: number }> = [];
    const entries: Array<Record<string, unknown>> = [];
    for (const { desc, fetched } of children) {
      if (fetched.manifest.kind !== 'manifest') continue;
      const out = await this.convertManifest(fetched.manifest, desc.digest.value, undefined, desc.platform);
      outcomes.push(out);
      entries.push(
        descriptorJson({
          mediaType: MediaType.OciManifest,
          digest: out.digest,
          size: out.size,
          platform: desc.platform,
          annotations: desc.annotations,
        }),
      );
    }
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: entries,
        ...(top.manifest.annotations ? { annotations: top.manifest.annotations } : {}),
      }),
    );
    await pushManifest(this.dst.client, this.dst.repo, dstTag, index, MediaType.OciIndex, {
      signal: this.options.signal,
    });
    return {
      digest: digestOf(index).value,
      mediaType: MediaType.OciIndex,
      manifests: outcomes.map(({ size: _size, ...m }) => m),
    };
  }

  private async convertManifest(
    manifest: Extract<ParsedManifest, { kind: 'manifest' }>,
    sourceDigest: string,
    tag: string | undefined,
    platform?: Platform,
  ): Promise<ManifestOutcome & { size: number }> {
    const signal = this.options.signal;
    const configBytes = await readSmallBlob(this.src, manifest.config, signal);
    const config = JSON.parse(configBytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
    const diffIds = config.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || diffIds.length !== manifest.layers.length) {
      throw new EstargzError(
        'UNSUPPORTED_MEDIA_TYPE',
        `config ${manifest.config.digest.value} has ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids for ${manifest.layers.length} layers`,
      );
    }
    const outcomes: LayerOutcome[] = [];
    const layers: Array<Record<string, unknown>> = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const outcome = await this.layer(layer);
      outcomes.push(outcome);
      if (outcome.action === 'converted') {
        diffIds[i] = outcome.diffId;
        layers.push(
          descriptorJson({
            mediaType: MediaType.OciLayerGzip,
            digest: outcome.digest,
            size: outcome.size,
            annotations: {
              ...layer.annotations,
              [TOC_DIGEST_ANNOTATION]: outcome.tocDigest,
              [UNCOMPRESSED_SIZE_ANNOTATION]: String(outcome.uncompressedSize),
            },
          }),
        );
      } else {
        const mediaType =
          layer.mediaType === MediaType.DockerLayerGzip ? MediaType.OciLayerGzip : layer.mediaType;
        layers.push(descriptorJson({ ...layer, mediaType, digest: layer.digest.value }));
      }
    }
    const newConfig = Buffer.from(JSON.stringify(config));
    const configDigest = digestOf(newConfig).value;
    await pushBlob(this.dst.client, this.dst.repo, configDigest, newConfig, { signal });
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: configDigest, size: newConfig.length },
        layers,
        ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
      }),
    );
    const digest = digestOf(body).value;
    await pushManifest(this.dst.client, this.dst.repo, tag ?? digest, body, MediaType.OciManifest, {
      signal,
    });
    return {
      ...(platform ? { platform } : {}),
      source: sourceDigest,
      digest,
      size: body.length,
      layers: outcomes,
    };
  }

  private layer(layer: Descriptor): Promise<LayerOutcome> {
    const key = layer.digest.value;
    let pending = this.layers.get(key);
    if (!pending) {
      pending = this.transfer(layer);
      this.layers.set(key, pending);
    }
    return pending;
  }

  private async transfer(layer: Descriptor): Promise<LayerOutcome> {
    const plan = planLayer(layer);
    const source = layer.digest.value;
    if (plan.kind === 'keep') {
      if (!FOREIGN.test(layer.mediaType)) await copyBlob(this.src, this.dst, layer, this.options.signal);
      return { action: 'kept', source, digest: source, size: layer.size, reason: plan.reason };
    }
    const { onProgress, ...options } = this.options;
    const result = await convertAndUpload(this.src, this.dst, layer, {
      ...options,
      ...(onProgress
        ? { onProgress: (p: TransferProgress) => onProgress({ ...p, layer: source, layerSize: layer.size }) }
        : {}),
    });
    return {
      action: 'converted',
      source,
      digest: result.digest,
      size: result.size,
      diffId: result.diffId,
      tocDigest: result.tocDigest,
      uncompressedSize: result.uncompressedSize,
      missedPrioritized: result.missedPrioritized,
    };
  }
}
