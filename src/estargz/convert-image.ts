/**
 * Registry-to-registry image conversion: reads an image (a manifest, or an index and every
 * platform in it, or those `--platform` selects; entries that are not images, such as BuildKit
 * attestations, are copied unchanged: see index-entries.ts), converts each gzip or tar layer to
 * eStargz, keeps layers already in eStargz,
 * and pushes OCI manifests whose layers carry the TOC digest and uncompressed size annotations
 * and whose config lists the new diff IDs (image-spec config.md "rootfs").
 */
import {
  digestOf,
  formatPlatform,
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
import { copyManifestTree } from './copy-manifest.js';
import { EstargzError } from './errors.js';
import {
  artifactReason,
  classifyEntry,
  planIndex,
  rewriteReference,
  type EntryKind,
} from './index-entries.js';
import {
  convertAndUpload,
  copyBlob,
  isNonDistributable,
  readSmallBlob,
  type RepoRef,
  type TransferProgress,
} from './layer-transfer.js';
import { platformMatches, type PlatformSpec } from './platforms.js';

export interface ConvertImageOptions extends ConvertLayerOptions {
  signal?: AbortSignal;
  /** Convert only these platforms of an index (empty: every platform). */
  platforms?: readonly PlatformSpec[];
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

/** An index entry that is not a converted image: copied unchanged, or left out. */
export interface OtherEntryOutcome {
  action: 'copied' | 'dropped';
  /** The source entry's digest (a copied entry keeps it). */
  digest: string;
  mediaType: string;
  platform?: Platform;
  reason: string;
  /** An attestation's `vnd.docker.reference.digest`: the source manifest, and the converted one it now names. */
  reference?: { source: string; destination: string };
}

export interface ConvertImageResult {
  /** Digest of what the destination tag now names. */
  digest: string;
  mediaType: string;
  manifests: ManifestOutcome[];
  others: OtherEntryOutcome[];
}

const GZIP_OR_TAR = new Set<string>([
  MediaType.OciLayerGzip,
  MediaType.OciLayerTar,
  MediaType.DockerLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar',
]);
const ZSTD = new Set<string>([MediaType.OciLayerZstd]);

type Plan = { kind: 'convert' } | { kind: 'keep'; reason: string };

/** Where a layer sits: its index in a manifest's `layers`, and that manifest's source digest. */
interface LayerPosition {
  index: number;
  manifest: string;
}

/** Decides per layer, before anything is pushed, so that a zstd layer fails the run up front. */
export function planLayer(layer: Descriptor): Plan {
  if (layer.annotations?.[TOC_DIGEST_ANNOTATION]) return { kind: 'keep', reason: 'already eStargz' };
  if (isNonDistributable(layer.mediaType)) return { kind: 'keep', reason: 'non-distributable layer' };
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
    const signal = this.options.signal;
    const top = await fetchManifest(this.src, reference, signal);
    if (top.manifest.kind === 'manifest') {
      await this.checkSingleImage(top);
      for (const l of top.manifest.layers) planLayer(l);
      const out = await this.convertManifest(top.manifest, digestOf(top.body).value, dstTag);
      return { digest: out.digest, mediaType: MediaType.OciManifest, manifests: [out], others: [] };
    }
    // Fetch and check every platform first: nothing is pushed for an image Hoist cannot convert.
    const entries: Array<{ desc: Descriptor; kind: EntryKind; fetched?: Fetched }> = [];
    for (const desc of top.manifest.manifests) {
      let kind = classifyEntry(desc);
      let fetched: Fetched | undefined;
      if (kind.kind === 'image') {
        fetched = await fetchManifest(this.src, desc.digest.value, signal);
        const reason =
          fetched.manifest.kind === 'manifest'
            ? artifactReason(fetched.body, fetched.manifest.config.mediaType)
            : 'nested index';
        if (reason !== undefined) kind = { kind: 'other', reason };
      }
      entries.push({ desc, kind, ...(fetched ? { fetched } : {}) });
    }
    const steps = planIndex(entries, this.options.platforms ?? []);
    for (const [i, { fetched }] of entries.entries()) {
      if (steps[i]?.action === 'convert' && fetched?.manifest.kind === 'manifest') {
        for (const l of fetched.manifest.layers) planLayer(l);
      }
    }
    // Images first: a copied attestation's reference is rewritten to its image's new digest.
    const converted = new Map<string, ManifestOutcome & { size: number }>();
    for (const [i, { desc, fetched }] of entries.entries()) {
      if (steps[i]?.action !== 'convert' || fetched?.manifest.kind !== 'manifest') continue;
      const out = await this.convertManifest(fetched.manifest, desc.digest.value, undefined, desc.platform);
      converted.set(desc.digest.value, out);
    }
    const newDigests = new Map([...converted].map(([source, out]) => [source, out.digest]));
    const index: Array<Record<string, unknown>> = [];
    const others: OtherEntryOutcome[] = [];
    for (const [i, { desc }] of entries.entries()) {
      const step = steps[i];
      const out = converted.get(desc.digest.value);
      const base = {
        digest: desc.digest.value,
        mediaType: desc.mediaType,
        ...(desc.platform ? { platform: desc.platform } : {}),
      };
      if (step?.action === 'convert' && out) {
        index.push(
          descriptorJson({
            mediaType: MediaType.OciManifest,
            digest: out.digest,
            size: out.size,
            platform: desc.platform,
            annotations: desc.annotations,
          }),
        );
      } else if (step?.action === 'copy') {
        await copyManifestTree(this.src, this.dst, desc, signal);
        const ref = rewriteReference(desc.annotations, newDigests);
        index.push(descriptorJson({ ...desc, digest: desc.digest.value, annotations: ref.annotations }));
        others.push({
          ...base,
          action: 'copied',
          reason: step.reason,
          ...(ref.from !== undefined && ref.to !== undefined
            ? { reference: { source: ref.from, destination: ref.to } }
            : {}),
        });
      } else if (step?.action === 'drop') {
        others.push({ ...base, action: 'dropped', reason: step.reason });
      }
    }
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: index,
        ...(top.manifest.annotations ? { annotations: top.manifest.annotations } : {}),
      }),
    );
    await pushManifest(this.dst.client, this.dst.repo, dstTag, body, MediaType.OciIndex, { signal });
    return {
      digest: digestOf(body).value,
      mediaType: MediaType.OciIndex,
      manifests: [...converted.values()].map(({ size: _size, ...m }) => m),
      others,
    };
  }

  /** A single manifest must be a container image, of the `--platform` asked for if any. */
  private async checkSingleImage(top: Fetched): Promise<void> {
    if (top.manifest.kind !== 'manifest') return;
    const reason = artifactReason(top.body, top.manifest.config.mediaType);
    if (reason !== undefined) {
      throw new EstargzError('UNSUPPORTED_MEDIA_TYPE', `the source is not a container image (${reason})`);
    }
    const wanted = this.options.platforms ?? [];
    if (wanted.length === 0) return;
    const config = JSON.parse(
      (await readSmallBlob(this.src, top.manifest.config, this.options.signal)).toString('utf8'),
    ) as { os?: unknown; architecture?: unknown; variant?: unknown };
    const platform = {
      os: String(config.os ?? ''),
      architecture: String(config.architecture ?? ''),
      ...(typeof config.variant === 'string' ? { variant: config.variant } : {}),
    };
    if (!wanted.some((p) => platformMatches(p, platform))) {
      throw new EstargzError(
        'PLATFORM_NOT_FOUND',
        `the source is a single ${formatPlatform(platform)} image, not ${wanted.map(formatPlatform).join(' or ')}`,
      );
    }
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
      const outcome = await this.layer(layer, { index: i, manifest: sourceDigest });
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

  /** `where` names the layer in errors (the first manifest that asked for it). */
  private layer(layer: Descriptor, where: LayerPosition): Promise<LayerOutcome> {
    const key = layer.digest.value;
    let pending = this.layers.get(key);
    if (!pending) {
      pending = this.transfer(layer, where);
      this.layers.set(key, pending);
    }
    return pending;
  }

  private async transfer(layer: Descriptor, where: LayerPosition): Promise<LayerOutcome> {
    const plan = planLayer(layer);
    const source = layer.digest.value;
    if (plan.kind === 'keep') {
      if (!isNonDistributable(layer.mediaType))
        await copyBlob(this.src, this.dst, layer, this.options.signal);
      return { action: 'kept', source, digest: source, size: layer.size, reason: plan.reason };
    }
    const { onProgress, ...options } = this.options;
    let result: Awaited<ReturnType<typeof convertAndUpload>>;
    try {
      result = await convertAndUpload(this.src, this.dst, layer, {
        ...options,
        ...(onProgress
          ? {
              onProgress: (p: TransferProgress) => onProgress({ ...p, layer: source, layerSize: layer.size }),
            }
          : {}),
      });
    } catch (err) {
      // The tar reader knows bytes, not layers: say which layer of which manifest is broken.
      if (err instanceof EstargzError && err.code === 'TAR_INVALID') {
        throw new EstargzError(
          'TAR_INVALID',
          `layer ${source} (layers[${where.index}] of manifest ${where.manifest}) is not a readable tar: ${err.message}; rebuild or re-push the image`,
          { cause: err },
        );
      }
      throw err;
    }
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
