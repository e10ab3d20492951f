/**
 * Copies an index entry that is not a container image (an attestation manifest, an artifact, a
 * nested index) to the destination unchanged: every blob it references, then the manifest itself
 * byte for byte under its digest (distribution-spec "Pushing Manifests": children before the
 * index that names them), so its digest, and any signature over it, stay the same.
 */
import { digestOf, MANIFEST_MEDIA_TYPES, parseManifest, type Descriptor } from '../oci/index.js';
import { pushManifest } from '../registry-client/index.js';
import { EstargzError } from './errors.js';
import { copyBlob, isNonDistributable, type RepoRef } from './layer-transfer.js';

/** Nested indexes deeper than this are refused rather than followed (a loop cannot be built by digest, but a deep one can). */
const MAX_DEPTH = 4;

export async function copyManifestTree(
  src: RepoRef,
  dst: RepoRef,
  desc: Descriptor,
  signal?: AbortSignal,
  depth = 0,
): Promise<void> {
  const digest = desc.digest.value;
  if (depth > MAX_DEPTH) {
    throw new EstargzError('UNSUPPORTED_MEDIA_TYPE', `indexes nest deeper than ${MAX_DEPTH} at ${digest}`);
  }
  const accept = [desc.mediaType, ...MANIFEST_MEDIA_TYPES.filter((t) => t !== desc.mediaType)];
  const res = await src.client.getManifest(src.repo, digest, accept, { signal });
  if (digestOf(res.body).value !== digest) {
    throw new EstargzError('DIGEST_MISMATCH', `manifest ${src.repo}@${digest} does not match its digest`);
  }
  const parsed = parseManifest(res.body, res.contentType);
  if (parsed.kind === 'index') {
    for (const child of parsed.manifests) await copyManifestTree(src, dst, child, signal, depth + 1);
  } else {
    for (const blob of [parsed.config, ...parsed.layers]) {
      if (!isNonDistributable(blob.mediaType)) await copyBlob(src, dst, blob, signal);
    }
  }
  await pushManifest(dst.client, dst.repo, digest, res.body, parsed.mediaType, { signal });
}
