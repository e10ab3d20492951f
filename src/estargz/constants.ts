/**
 * Names and numbers fixed by the eStargz format (stargz-snapshotter docs/estargz.md, and the
 * reference implementation's estargz/types.go, v0.12).
 */

/** Name of the TOC's tar entry, in the last gzip member before the footer. */
export const TOC_TAR_NAME = 'stargz.index.json';
/** Size of the footer: an empty gzip member whose Extra field holds the TOC offset. */
export const FOOTER_SIZE = 51;
/** Layer annotation: digest of the uncompressed TOC JSON. */
export const TOC_DIGEST_ANNOTATION = 'containerd.io/snapshot/stargz/toc.digest';
/** Layer annotation: size of the decompressed blob (for containers/storage's Stargz Store). */
export const UNCOMPRESSED_SIZE_ANNOTATION = 'io.containers.estargz.uncompressed-size';
/** Entry after the prioritized files: the snapshotter prefetches everything before it. */
export const PREFETCH_LANDMARK = '.prefetch.landmark';
/** First entry of a layer with no prioritized files: the snapshotter prefetches nothing. */
export const NO_PREFETCH_LANDMARK = '.no.prefetch.landmark';
/** Payload of both landmark files (one byte, 0x0f). */
export const LANDMARK_CONTENTS = Buffer.from([0x0f]);

/** Defaults in one place, units in the names. */
export const ESTARGZ_DEFAULTS = {
  /** Largest payload per gzip member: the reference writer's default (4 MiB). */
  chunkSizeBytes: 4 * 1024 * 1024,
  /** gzip level: ctr-remote's default (`--estargz-compression-level 9`). */
  gzipLevel: 9,
  /** Gzip members compressed at once on libuv's thread pool (so several cores work). */
  compressConcurrency: 4,
} as const;
