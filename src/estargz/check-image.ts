/**
 * `hoist convert --check`: reads an image (every platform of an index) and checks each layer
 * with verify.ts, against its `containerd.io/snapshot/stargz/toc.digest` annotation, its
 * `io.containers.estargz.uncompressed-size` annotation and the config's diff ID.
 */
import {
  digestOf,
  MANIFEST_MEDIA_TYPES,
  parseManifest,
  type Descriptor,
  type Platform,
} from '../oci/index.js';
import type { RegistryClient } from '../registry-client/index.js';
import { TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION } from './constants.js';
import { EstargzError } from './errors.js';
import { artifactReason, classifyEntry } from './index-entries.js';
import { readSmallBlob, type RepoRef } from './layer-transfer.js';
import { checkBlob, type BlobAccess } from './verify.js';

export interface LayerCheck {
  digest: string;
  size: number;
  valid: boolean;
  /** Why the layer is not valid eStargz (first problem found). */
  error?: string;
  tocDigest?: string;
  chunksVerified?: number;
  entries?: number;
}

export interface ManifestCheck {
  digest: string;
  platform?: Platform;
  layers: LayerCheck[];
}

/** An index entry that is not a container image (an attestation, an artifact): not checked. */
export interface SkippedEntry {
  digest: string;
  platform?: Platform;
  reason: string;
}

export interface ImageCheck {
  reference: string;
  valid: boolean;
  manifests: ManifestCheck[];
  skipped: SkippedEntry[];
}

function blobAccess(
  client: RegistryClient,
  repo: string,
  desc: Descriptor,
  signal?: AbortSignal,
): BlobAccess {
  const digest = desc.digest.value;
  return {
    size: desc.size,
    async readRange(start, end) {
      const res = await client.getBlob(repo, digest, { signal, range: { start, end: end - 1 } });
      const parts: Buffer[] = [];
      let skip = start - res.offset; // a registry that ignores Range sends the whole blob
      let got = 0;
      for await (const chunk of res.body) {
        let buf = chunk as Buffer;
        if (skip > 0) {
          const n = Math.min(skip, buf.length);
          buf = buf.subarray(n);
          skip -= n;
        }
        const want = end - start - got;
        if (buf.length >= want) {
          parts.push(buf.subarray(0, want));
          got += want;
          res.body.destroy();
          break;
        }
        parts.push(buf);
        got += buf.length;
      }
      if (got !== end - start)
        throw new EstargzError('ESTARGZ_INVALID', `blob ${digest} is shorter than its descriptor`);
      return Buffer.concat(parts);
    },
    async *stream() {
      const res = await client.getBlob(repo, digest, { signal });
      yield* res.body as AsyncIterable<Buffer>;
    },
  };
}

async function checkLayer(
  src: RepoRef,
  layer: Descriptor,
  diffId: unknown,
  signal?: AbortSignal,
): Promise<LayerCheck> {
  const base = { digest: layer.digest.value, size: layer.size };
  const annotation = layer.annotations?.[TOC_DIGEST_ANNOTATION];
  if (!annotation) return { ...base, valid: false, error: `no ${TOC_DIGEST_ANNOTATION} annotation` };
  try {
    const result = await checkBlob(blobAccess(src.client, src.repo, layer, signal), annotation);
    const problems: string[] = [];
    if (typeof diffId === 'string' && diffId !== result.diffId) {
      problems.push(`decompressed digest ${result.diffId} is not the config's diff ID ${diffId}`);
    }
    const size = layer.annotations?.[UNCOMPRESSED_SIZE_ANNOTATION];
    if (size !== undefined && size !== String(result.uncompressedSize)) {
      problems.push(
        `${UNCOMPRESSED_SIZE_ANNOTATION} is ${size}, the blob decompresses to ${result.uncompressedSize} bytes`,
      );
    }
    return {
      ...base,
      valid: problems.length === 0,
      ...(problems.length > 0 ? { error: problems.join('; ') } : {}),
      tocDigest: result.tocDigest,
      chunksVerified: result.chunksVerified,
      entries: result.entries,
    };
  } catch (err) {
    if (err instanceof EstargzError) return { ...base, valid: false, error: err.message };
    throw err;
  }
}

export async function checkImage(src: RepoRef, reference: string, signal?: AbortSignal): Promise<ImageCheck> {
  const top = await src.client.getManifest(src.repo, reference, MANIFEST_MEDIA_TYPES, { signal });
  const parsed = parseManifest(top.body, top.contentType);
  const skipped: SkippedEntry[] = [];
  const targets: Array<{ digest: string; platform?: Platform }> = [];
  if (parsed.kind === 'index') {
    // Attestations and artifacts carry no image layers (index-entries.ts): listed, not checked.
    for (const m of parsed.manifests) {
      const kind = classifyEntry(m);
      const entry = { digest: m.digest.value, ...(m.platform ? { platform: m.platform } : {}) };
      if (kind.kind === 'other') skipped.push({ ...entry, reason: kind.reason });
      else targets.push(entry);
    }
  } else {
    targets.push({ digest: digestOf(top.body).value });
  }
  const manifests: ManifestCheck[] = [];
  for (const target of targets) {
    const res =
      parsed.kind === 'index'
        ? await src.client.getManifest(src.repo, target.digest, MANIFEST_MEDIA_TYPES, { signal })
        : top;
    const m = parseManifest(res.body, res.contentType);
    const reason = m.kind === 'manifest' ? artifactReason(res.body, m.config.mediaType) : 'nested index';
    if (m.kind !== 'manifest' || (reason !== undefined && parsed.kind === 'index')) {
      skipped.push({ ...target, reason: reason ?? 'nested index' });
      continue;
    }
    const config = JSON.parse((await readSmallBlob(src, m.config, signal)).toString('utf8')) as {
      rootfs?: { diff_ids?: unknown[] };
    };
    const layers: LayerCheck[] = [];
    for (const [i, layer] of m.layers.entries()) {
      layers.push(await checkLayer(src, layer, config.rootfs?.diff_ids?.[i], signal));
    }
    manifests.push({ ...target, layers });
  }
  return {
    reference,
    valid: manifests.length > 0 && manifests.every((m) => m.layers.every((l) => l.valid)),
    manifests,
    skipped,
  };
}
