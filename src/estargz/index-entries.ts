/**
 * What happens to each entry of an image index (image-spec image-index.md): container images are
 * converted, everything else (BuildKit attestation manifests, artifacts, nested indexes) is copied
 * unchanged, and `--platform` leaves out the platforms it does not name.
 *
 * Attestations. BuildKit stores provenance and SBOMs as an index entry with platform
 * `unknown/unknown` and the annotations `vnd.docker.reference.type: attestation-manifest` and
 * `vnd.docker.reference.digest: <the platform manifest it describes>` (BuildKit
 * docs/attestations/attestation-storage.md). Converting changes every platform manifest's digest,
 * so a copied entry would point at a manifest the new index no longer holds. `ctr-remote image
 * convert` (containerd 1.6 images/converter/default.go convertIndex) either drops the entry (its
 * default platform matcher does not match `unknown/unknown`) or, with `--all-platforms`, keeps it
 * with the stale reference. Hoist keeps the attestation manifest byte for byte and rewrites the
 * index entry's `vnd.docker.reference.digest` to the converted manifest, so tools that walk the
 * index (buildx imagetools, Docker Scout) still find the provenance of each platform. What it
 * cannot change: the in-toto statements inside still name the source manifest as their subject,
 * and a signature over the source index does not cover the new one; the output says so. An
 * attestation of a platform that `--platform` leaves out is dropped, since it would point at
 * nothing.
 */
import {
  formatPlatform,
  isIndexMediaType,
  isManifestMediaType,
  MediaType,
  type Descriptor,
} from '../oci/index.js';
import { EstargzError } from './errors.js';
import { platformMatches, type PlatformSpec } from './platforms.js';

export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';

const IMAGE_CONFIG_TYPES = new Set<string>([MediaType.OciConfig, MediaType.DockerConfig]);

export type EntryKind =
  | { kind: 'image' }
  /** Not a container image: copied unchanged. `refersTo` is the manifest it describes, if any. */
  | { kind: 'other'; reason: string; refersTo?: string };

/** Classifies an index entry from its descriptor alone (before its manifest is fetched). */
export function classifyEntry(desc: Descriptor): EntryKind {
  const refType = desc.annotations?.[REFERENCE_TYPE_ANNOTATION];
  if (refType !== undefined) {
    const refersTo = desc.annotations?.[REFERENCE_DIGEST_ANNOTATION];
    return { kind: 'other', reason: refType, ...(refersTo ? { refersTo } : {}) };
  }
  if (isIndexMediaType(desc.mediaType)) return { kind: 'other', reason: 'nested index' };
  if (!isManifestMediaType(desc.mediaType)) return { kind: 'other', reason: `media type ${desc.mediaType}` };
  if (desc.platform?.os === 'unknown' && desc.platform.architecture === 'unknown') {
    return { kind: 'other', reason: 'platform unknown/unknown' };
  }
  return { kind: 'image' };
}

/**
 * Why a fetched manifest is an artifact rather than a container image (image-spec manifest.md
 * "Guidelines for Artifact Usage": an `artifactType`, or a config that is not an image config),
 * or undefined for an image.
 */
export function artifactReason(manifestBody: Buffer, configMediaType: string): string | undefined {
  const json = JSON.parse(manifestBody.toString('utf8')) as { artifactType?: unknown };
  if (typeof json.artifactType === 'string') return `artifact ${json.artifactType}`;
  if (!IMAGE_CONFIG_TYPES.has(configMediaType)) return `artifact with config ${configMediaType}`;
  return undefined;
}

export type EntryStep =
  | { action: 'convert' }
  | { action: 'copy'; reason: string; refersTo?: string }
  | { action: 'drop'; reason: string };

/**
 * Decides every entry, in index order. `platforms` empty converts every image; otherwise only
 * images whose platform matches one of them (an entry without a platform is kept, as
 * containerd's converter does). Every `--platform` must match an image of the index.
 */
export function planIndex(
  entries: ReadonlyArray<{ desc: Descriptor; kind: EntryKind }>,
  platforms: readonly PlatformSpec[],
): EntryStep[] {
  const dropped = new Map<string, string>();
  const steps: Array<EntryStep | undefined> = entries.map(({ desc, kind }) => {
    if (kind.kind !== 'image') return undefined;
    if (platforms.length === 0 || !desc.platform) return { action: 'convert' };
    if (platforms.some((p) => platformMatches(p, desc.platform!))) return { action: 'convert' };
    dropped.set(desc.digest.value, formatPlatform(desc.platform));
    return { action: 'drop', reason: 'platform not selected by --platform' };
  });
  const images = entries.filter((e) => e.kind.kind === 'image');
  for (const p of platforms) {
    if (images.some((e) => e.desc.platform && platformMatches(p, e.desc.platform))) continue;
    const have = images.map((e) => (e.desc.platform ? formatPlatform(e.desc.platform) : 'no platform'));
    throw new EstargzError(
      'PLATFORM_NOT_FOUND',
      `--platform ${formatPlatform(p)} matches no image of the index (it has ${have.join(', ') || 'no images'})`,
    );
  }
  if (images.length === 0) {
    throw new EstargzError('UNSUPPORTED_MEDIA_TYPE', 'the index holds no container image to convert');
  }
  return entries.map(({ kind }, i) => {
    const step = steps[i];
    if (step) return step;
    if (kind.kind !== 'other') throw new Error('unreachable: image entries are planned above');
    const of = kind.refersTo !== undefined ? dropped.get(kind.refersTo) : undefined;
    if (of !== undefined)
      return { action: 'drop', reason: `${kind.reason} of ${of}, which is not converted` };
    return {
      action: 'copy',
      reason: kind.reason,
      ...(kind.refersTo !== undefined ? { refersTo: kind.refersTo } : {}),
    };
  });
}

/** The entry's annotations with its reference moved to the converted manifest. */
export function rewriteReference(
  annotations: Record<string, string> | undefined,
  converted: ReadonlyMap<string, string>,
): { annotations: Record<string, string> | undefined; from?: string; to?: string } {
  const from = annotations?.[REFERENCE_DIGEST_ANNOTATION];
  const to = from !== undefined ? converted.get(from) : undefined;
  if (from === undefined || to === undefined) return { annotations };
  return { annotations: { ...annotations, [REFERENCE_DIGEST_ANNOTATION]: to }, from, to };
}
