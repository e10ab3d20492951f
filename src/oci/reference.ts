import { clip, parseDigest, type Digest } from './digest.js';
import { OciParseError } from './errors.js';

/**
 * Repository names, tags and image references, per the OCI distribution-spec ("Pulling
 * manifests": `<name>` and `<reference>` grammars) and the Docker reference grammar that
 * clients use for `host/path:tag@digest`.
 */

// distribution-spec: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
const NAME_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// Docker's reference grammar: a domain is host[:port]; a host has a dot or colon, or is localhost.
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

/** distribution caps a repository name at 255 characters (and so do we, as a guard on input size). */
export const MAX_NAME_LENGTH = 255;

export function isValidRepository(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  return name.split('/').every((c) => NAME_COMPONENT.test(c));
}

export function parseRepository(name: string): string {
  if (!isValidRepository(name)) {
    throw new OciParseError(
      'NAME_INVALID',
      `repository name "${clip(name)}" is invalid: use lowercase path components of [a-z0-9] joined by . _ __ or -, at most ${MAX_NAME_LENGTH} characters`,
    );
  }
  return name;
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A manifest reference is a tag or a digest. */
export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

export function parseManifestReference(ref: string): ManifestReference {
  if (ref.includes(':')) return { kind: 'digest', digest: parseDigest(ref) };
  if (!isValidTag(ref)) {
    throw new OciParseError(
      'TAG_INVALID',
      `tag "${clip(ref)}" is invalid: up to 128 characters of [A-Za-z0-9_.-], not starting with . or -`,
    );
  }
  return { kind: 'tag', tag: ref };
}

/** A full image reference as users write it: `[registry/]repository[:tag][@digest]`. */
export interface ImageReference {
  /** Registry host as clients name it, e.g. `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';

/**
 * Parses and normalises an image reference the way Docker and containerd do: no registry means
 * docker.io; a single-component Docker Hub name gets `library/`; neither tag nor digest means `latest`.
 */
export function parseImageReference(input: string): ImageReference {
  if (input.length === 0 || input.length > 4096) {
    throw new OciParseError('REFERENCE_INVALID', 'image reference is empty or too long');
  }
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = parseDigest(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!isValidTag(tag)) {
      throw new OciParseError(
        'REFERENCE_INVALID',
        `image reference "${clip(input)}" has an invalid tag "${clip(tag)}"`,
      );
    }
  }
  let registry = DOCKER_HUB;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if ((first.includes('.') || first.includes(':') || first === 'localhost') && DOMAIN.test(first)) {
      registry = first;
      rest = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !rest.includes('/')) rest = `library/${rest}`;
  if (!isValidRepository(rest)) {
    throw new OciParseError(
      'REFERENCE_INVALID',
      `image reference "${clip(input)}" has an invalid repository "${clip(rest)}" (lowercase letters, digits and . _ - / only)`,
    );
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: rest, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function formatImageReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`;
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest) s += `@${ref.digest.value}`;
  return s;
}
