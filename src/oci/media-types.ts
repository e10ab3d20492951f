/** Media types of the OCI image-spec (media-types.md) and Docker image manifest v2 schema 2. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Manifest media types the mirror serves, most preferred first. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.OciIndex,
  MediaType.OciManifest,
  MediaType.DockerManifestList,
  MediaType.DockerManifest,
];

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(mediaType);
}

/**
 * Parses an HTTP Accept header (RFC 9110 §12.5.1) into the media types it accepts, dropping
 * parameters and entries with q=0. Several Accept headers arrive joined by commas.
 */
export function parseAccept(header: string | readonly string[] | undefined): string[] {
  if (header === undefined) return [];
  const joined = typeof header === 'string' ? header : header.join(',');
  const out: string[] = [];
  for (const part of joined.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    if (!type) continue;
    const q = params.find((p) => /^q\s*=/i.test(p));
    if (q && Number(q.split('=')[1]) === 0) continue;
    out.push(type.toLowerCase());
  }
  return out;
}

/**
 * Whether a client that sent `accepted` (parsed Accept) may be given a manifest of `mediaType`.
 * A client that sends no Accept, or a wildcard, takes anything; otherwise the type must be named.
 */
export function acceptsMediaType(accepted: readonly string[], mediaType: string): boolean {
  if (accepted.length === 0) return true;
  return accepted.some((a) => a === mediaType || a === '*/*' || a === 'application/*');
}
