import { clip, parseDigest, type Digest } from './digest.js';
import { OciParseError } from './errors.js';
import { isIndexMediaType, isManifestMediaType, MediaType } from './media-types.js';

/** A content descriptor (OCI image-spec descriptor.md). */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

/** `os/architecture[/variant]`, as `--platform` flags and containerd's platforms.Format write it. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export type ParsedManifest =
  | { kind: 'index'; mediaType: string; manifests: Descriptor[]; annotations?: Record<string, string> }
  | {
      kind: 'manifest';
      mediaType: string;
      config: Descriptor;
      layers: Descriptor[];
      annotations?: Record<string, string>;
    };

/** Registries cap manifests at 4 MiB (distribution-spec "Pushing manifests"); so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Works out a manifest's media type: the `mediaType` field when present, else the Content-Type
 * it came with, else its shape (an OCI manifest may omit `mediaType`, image-spec manifest.md).
 */
export function detectManifestMediaType(body: Uint8Array, contentType?: string): string {
  const json = parseJson(body);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  if (declared && isManifestMediaType(declared)) return declared;
  const ct = contentType?.split(';')[0]?.trim().toLowerCase();
  if (ct && isManifestMediaType(ct)) return ct;
  if (Array.isArray(json.manifests)) return MediaType.OciIndex;
  if (json.config && Array.isArray(json.layers)) return MediaType.OciManifest;
  throw new OciParseError('MANIFEST_INVALID', 'document is not an OCI or Docker schema 2 manifest or index');
}

export function parseManifest(body: Uint8Array, contentType?: string): ParsedManifest {
  const mediaType = detectManifestMediaType(body, contentType);
  const json = parseJson(body);
  const annotations = parseAnnotations(json.annotations);
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(json.manifests)) {
      throw new OciParseError('MANIFEST_INVALID', 'index has no "manifests" array');
    }
    return {
      kind: 'index',
      mediaType,
      manifests: json.manifests.map((d, i) => parseDescriptor(d, `manifests[${i}]`)),
      ...(annotations ? { annotations } : {}),
    };
  }
  if (!Array.isArray(json.layers))
    throw new OciParseError('MANIFEST_INVALID', 'manifest has no "layers" array');
  return {
    kind: 'manifest',
    mediaType,
    config: parseDescriptor(json.config, 'config'),
    layers: json.layers.map((d, i) => parseDescriptor(d, `layers[${i}]`)),
    ...(annotations ? { annotations } : {}),
  };
}

function parseJson(body: Uint8Array): Record<string, unknown> {
  if (body.byteLength > MAX_MANIFEST_BYTES) {
    throw new OciParseError('MANIFEST_INVALID', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (cause) {
    throw new OciParseError('MANIFEST_INVALID', 'manifest is not valid JSON', { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new OciParseError('MANIFEST_INVALID', 'manifest is not a JSON object');
  }
  return json as Record<string, unknown>;
}

function parseDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) {
    throw new OciParseError('MANIFEST_INVALID', `${where} is not a descriptor object`);
  }
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== 'string')
    throw new OciParseError('MANIFEST_INVALID', `${where}.mediaType is missing`);
  if (typeof d.digest !== 'string') throw new OciParseError('MANIFEST_INVALID', `${where}.digest is missing`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new OciParseError('MANIFEST_INVALID', `${where}.size must be a non-negative integer`);
  }
  let digest: Digest;
  try {
    digest = parseDigest(d.digest);
  } catch (cause) {
    throw new OciParseError('MANIFEST_INVALID', `${where}.digest "${clip(d.digest)}" is invalid`, { cause });
  }
  const out: Descriptor = { mediaType: d.mediaType, digest, size: d.size };
  if (typeof d.platform === 'object' && d.platform !== null) {
    const p = d.platform as Record<string, unknown>;
    if (typeof p.architecture === 'string' && typeof p.os === 'string') {
      out.platform = { architecture: p.architecture, os: p.os };
      if (typeof p.variant === 'string') out.platform.variant = p.variant;
      if (typeof p['os.version'] === 'string') out.platform['os.version'] = p['os.version'];
    }
  }
  const annotations = parseAnnotations(d.annotations);
  if (annotations) out.annotations = annotations;
  return out;
}

function parseAnnotations(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}
