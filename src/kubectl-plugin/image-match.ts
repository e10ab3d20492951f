import { OciParseError, parseImageReference } from '../oci/index.js';

/**
 * Which image references name the same image, as a user means it when asking `kubectl hoist why`:
 * references are normalised the way containerd names images (`nginx:1.25` is
 * `docker.io/library/nginx:1.25`), a digest matches whatever carries it (a reference's own
 * `@sha256:...`, or the digest a NodePull status reports for a tag), and a query with neither tag
 * nor digest matches every tag of its repository. Pure.
 */
export interface ImageQuery {
  /** The query as given. */
  input: string;
  /** `registry/repository`, normalised. */
  name: string;
  tag?: string;
  digest?: string;
  /** No tag and no digest were given: any tag of the repository matches. */
  anyTag: boolean;
}

export class ImageQueryError extends Error {
  readonly code = 'IMAGE_QUERY_INVALID';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ImageQueryError';
  }
}

/** The part after the last `/` says whether a tag was written (`host:5000/app` has none). */
function hasTag(input: string): boolean {
  const beforeDigest = input.split('@')[0] ?? '';
  const last = beforeDigest.slice(beforeDigest.lastIndexOf('/') + 1);
  return last.includes(':');
}

export function parseImageQuery(input: string): ImageQuery {
  try {
    const ref = parseImageReference(input.trim());
    const anyTag = ref.digest === undefined && !hasTag(input.trim());
    return {
      input,
      name: `${ref.registry}/${ref.repository}`,
      ...(ref.tag !== undefined && !anyTag ? { tag: ref.tag } : {}),
      ...(ref.digest ? { digest: ref.digest.value } : {}),
      anyTag,
    };
  } catch (err) {
    if (err instanceof OciParseError) {
      throw new ImageQueryError(
        `"${input}" is not an image reference (${err.message}); give one such as nginx:1.25, ghcr.io/org/app@sha256:...`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** The normalised form of a reference (`nginx` → `docker.io/library/nginx:latest`), or undefined. */
export function normaliseReference(ref: string): { name: string; tag?: string; digest?: string } | undefined {
  try {
    const r = parseImageReference(ref);
    return {
      name: `${r.registry}/${r.repository}`,
      ...(r.tag !== undefined ? { tag: r.tag } : {}),
      ...(r.digest ? { digest: r.digest.value } : {}),
    };
  } catch {
    return undefined;
  }
}

/**
 * Whether `candidate` (a reference as a PrePull, NodePull, Node or kubelet event names it), whose
 * manifest digest may be known separately (`knownDigest`), is the image the query asks about.
 */
export function imageMatches(query: ImageQuery, candidate: string, knownDigest?: string): boolean {
  const c = normaliseReference(candidate);
  if (!c || c.name !== query.name) return false;
  if (query.digest !== undefined) return c.digest === query.digest || knownDigest === query.digest;
  if (query.anyTag) return true;
  return c.tag === query.tag;
}
