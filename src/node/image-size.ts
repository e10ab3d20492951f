import type { Descriptor, ParsedManifest, Platform } from '../oci/index.js';

/**
 * Pure: how much disk an image will take once pulled, from its manifest alone (before a byte of
 * it is downloaded), so the disk high-water mark can refuse a pull that would cross it.
 *
 * The manifest gives each layer's compressed size (OCI image-spec descriptor.md `size`); the
 * image config's `rootfs` lists diff IDs but no sizes, so the unpacked size must come from
 * elsewhere. Per layer, best first:
 *   1. an uncompressed layer (`...tar` media type): its size is the unpacked size;
 *   2. the `io.containers.estargz.uncompressed-size` annotation that eStargz converters
 *      (stargz-snapshotter nativeconverter, `hoist convert`) put on each layer: the exact size
 *      of the layer's tar;
 *   3. otherwise the compressed size times UNPACK_FACTOR.
 * Not used: the gzip trailer's ISIZE (RFC 1952 §2.3.1) would need a ranged read of every layer
 * (through a pull-through mirror that means fetching the whole blob), holds the size only modulo
 * 2^32, and covers only the last member of a multi-member gzip such as eStargz.
 */

/**
 * Unpacked bytes per compressed byte for layers that say nothing better. gzip shrinks the
 * binaries, libraries and text of ordinary image layers about 2-3.5 times; 3 is near the top of
 * that range, so for ordinary images the estimate errs high and the mark is not crossed. Layers
 * of already-compressed data (model weights, media, archives) barely shrink, so for them the
 * estimate is up to 3 times too high: the mark then refuses early rather than late, which is the
 * safe side for a node's disk.
 */
export const UNPACK_FACTOR = 3;

export const ESTARGZ_UNCOMPRESSED_SIZE = 'io.containers.estargz.uncompressed-size';

export interface ImageSizeEstimate {
  /** The image as assigned. */
  image: string;
  /** Where the manifest was read: the mirror or the registry, as a URL. */
  source: string;
  /** The image manifest the runtime will pull (the platform's, for an index). */
  manifestDigest: string;
  platform?: string;
  /** Layers in the manifest. */
  layers: number;
  /** Of which already in the runtime's content store (containerd): left out of the sums. */
  layersPresent: number;
  /** Compressed bytes the pull will download (layers not present, plus the config). */
  downloadBytes: number;
  /** Estimated bytes the unpacked layers will take (what ImageFsInfo counts). */
  unpackedBytes: number;
  /** How unpackedBytes was made, in words, e.g. "2 layers by annotation, 1 layer compressed x 3". */
  basis: string;
}

/** OCI architecture names (image-spec config.md, Go's GOARCH) for Node's process.arch. */
const OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le', // Node's ppc64 on Linux is little-endian
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** The platform containerd pulls on this node: linux and this machine's architecture. */
export function nodePlatform(arch: string = process.arch): Platform {
  return { os: 'linux', architecture: OCI_ARCH[arch] ?? arch };
}

/**
 * The index entry containerd would pick for `platform`: same os and architecture, the requested
 * variant when there is one; a missing variant matches any (containerd's platforms.Only).
 */
export function selectPlatformManifest(manifests: Descriptor[], platform: Platform): Descriptor | undefined {
  const candidates = manifests.filter(
    (m) => m.platform?.os === platform.os && m.platform.architecture === platform.architecture,
  );
  if (platform.variant !== undefined) {
    const exact = candidates.find((m) => m.platform?.variant === platform.variant);
    if (exact) return exact;
  }
  return candidates[0];
}

function isUncompressedLayer(mediaType: string): boolean {
  // application/vnd.oci.image.layer.v1.tar, ...nondistributable.v1.tar, docker ...rootfs.diff.tar
  return /\.tar$/.test(mediaType);
}

function annotatedSize(layer: Descriptor): number | undefined {
  const v = layer.annotations?.[ESTARGZ_UNCOMPRESSED_SIZE];
  if (v === undefined || !/^\d{1,16}$/.test(v)) return undefined;
  return Number(v);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Pure: the estimate for an image manifest. `present` holds digests of layers the runtime
 * already has (they cost no new space: snapshots are shared between images).
 */
export function estimateFromManifest(
  manifest: Extract<ParsedManifest, { kind: 'manifest' }>,
  info: { image: string; source: string; manifestDigest: string; platform?: string },
  present: ReadonlySet<string> = new Set(),
  factor: number = UNPACK_FACTOR,
): ImageSizeEstimate {
  let downloadBytes = present.has(manifest.config.digest.value) ? 0 : manifest.config.size;
  let unpackedBytes = 0;
  let layersPresent = 0;
  const by = { tar: 0, annotation: 0, factor: 0 };
  for (const layer of manifest.layers) {
    if (present.has(layer.digest.value)) {
      layersPresent++;
      continue;
    }
    downloadBytes += layer.size;
    const annotated = annotatedSize(layer);
    if (isUncompressedLayer(layer.mediaType)) {
      unpackedBytes += layer.size;
      by.tar++;
    } else if (annotated !== undefined) {
      unpackedBytes += annotated;
      by.annotation++;
    } else {
      unpackedBytes += Math.ceil(layer.size * factor);
      by.factor++;
    }
  }
  const parts: string[] = [];
  if (by.tar) parts.push(`${plural(by.tar, 'uncompressed layer')} as they are`);
  if (by.annotation) parts.push(`${plural(by.annotation, 'layer')} by ${ESTARGZ_UNCOMPRESSED_SIZE}`);
  if (by.factor) parts.push(`${plural(by.factor, 'layer')} compressed x ${factor}`);
  if (layersPresent) parts.push(`${plural(layersPresent, 'layer')} already present`);
  return {
    image: info.image,
    source: info.source,
    manifestDigest: info.manifestDigest,
    ...(info.platform !== undefined ? { platform: info.platform } : {}),
    layers: manifest.layers.length,
    layersPresent,
    downloadBytes,
    unpackedBytes,
    basis: parts.join(', ') || 'no layers',
  };
}
