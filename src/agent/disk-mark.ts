import { statfs } from 'node:fs/promises';
import type { FilesystemUsage } from '../cri/index.js';

/**
 * The image filesystem high-water mark: a pull is refused while the runtime's image filesystem
 * is at or past it, or when the image's estimated size would take it past, so pre-pulling never
 * fills a node's disk (the kubelet would then evict pods and garbage-collect images, kubelet
 * imageGCHighThresholdPercent defaults to 85).
 *
 *   "85%"    share of the filesystem in use (statfs of the mountpoint ImageFsInfo names)
 *   "40GiB"  bytes the runtime's images use (ImageFsInfo used_bytes); also 500MB, 1e9, 1000000
 */
export type HighWaterMark = { kind: 'percent'; percent: number } | { kind: 'bytes'; bytes: number };

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses a mark; undefined for "none". Throws a one-line Error on anything else. */
export function parseHighWaterMark(value: string): HighWaterMark | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'none' || v === 'off') return undefined;
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent <= 0 || percent > 100)
      throw new Error(`disk high-water mark "${value}" must be a percentage in (0, 100]`);
    return { kind: 'percent', percent };
  }
  const size = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)$/.exec(v);
  const unit = size ? UNITS[size[2] ?? ''] : undefined;
  if (!size || unit === undefined) {
    throw new Error(
      `disk high-water mark "${value}" is not a percentage (85%), a size (40GiB, 500MB) or "none"`,
    );
  }
  return { kind: 'bytes', bytes: Math.floor(Number(size[1]) * unit) };
}

export function formatMark(mark: HighWaterMark): string {
  return mark.kind === 'percent' ? `${mark.percent}%` : `${mark.bytes} bytes`;
}

export interface DiskReading {
  /** What the runtime's images use (ImageFsInfo). */
  imageFsUsedBytes: number;
  mountpoint: string;
  /** When the runtime measured it (ImageFsInfo timestamp, ns since the epoch). */
  timestampNs?: number;
  /** statfs of the mountpoint: share of the filesystem in use, 0..100 (percent marks only). */
  filesystemUsedPercent?: number;
  /** statfs: bytes in use, and in use plus available to unprivileged users (percent marks only). */
  filesystemUsedBytes?: number;
  filesystemCapacityBytes?: number;
}

/** What a pull is expected to add, for the check before it starts. */
export interface PlannedPull {
  /** Added to ImageFsInfo: the unpacked layers (containerd counts snapshots only). */
  imageFsBytes: number;
  /** Added to the filesystem: the unpacked layers plus the compressed blobs containerd keeps. */
  diskBytes: number;
  /** How the estimate was made, for the reason: "3 layers compressed x 3". */
  basis: string;
  /** Reserved by pulls in progress, or finished but not yet counted by the runtime. */
  reservedImageFsBytes: number;
  reservedDiskBytes: number;
}

/** Pure: the reason to refuse a pull, or undefined when the reading is under the mark. */
export function overHighWaterMark(mark: HighWaterMark, reading: DiskReading): string | undefined {
  if (mark.kind === 'bytes') {
    if (reading.imageFsUsedBytes < mark.bytes) return undefined;
    return `image filesystem ${reading.mountpoint} holds ${reading.imageFsUsedBytes} bytes of images, at or over the high-water mark of ${mark.bytes} bytes; free space or raise --disk-high-water`;
  }
  const used = reading.filesystemUsedPercent;
  if (used === undefined || used < mark.percent) return undefined;
  return `image filesystem ${reading.mountpoint} is ${used.toFixed(1)}% full, at or over the high-water mark of ${mark.percent}%; free space or raise --disk-high-water`;
}

/**
 * Pure: refuses when usage is already at or over the mark, or when usage plus what is reserved
 * plus this pull's estimate would go past it. The reason gives every number of the sum.
 */
export function checkPull(
  mark: HighWaterMark,
  reading: DiskReading,
  planned: PlannedPull | undefined,
): string | undefined {
  const now = overHighWaterMark(mark, reading);
  if (now || !planned) return now;
  const reserved = (bytes: number) => (bytes > 0 ? ` + ${bytes} bytes reserved by other pulls` : '');
  const advice = 'free space, raise --disk-high-water, or pull fewer images at a time';
  if (mark.kind === 'bytes') {
    const total = reading.imageFsUsedBytes + planned.reservedImageFsBytes + planned.imageFsBytes;
    if (total <= mark.bytes) return undefined;
    return `pulling it would take image filesystem ${reading.mountpoint} past the high-water mark: ${reading.imageFsUsedBytes} bytes of images${reserved(planned.reservedImageFsBytes)} + ${planned.imageFsBytes} bytes estimated for this image (${planned.basis}) = ${total} bytes, over the mark of ${mark.bytes} bytes; ${advice}`;
  }
  const used = reading.filesystemUsedBytes;
  const capacity = reading.filesystemCapacityBytes;
  if (used === undefined || capacity === undefined || capacity <= 0) return undefined;
  const total = used + planned.reservedDiskBytes + planned.diskBytes;
  const percent = (total / capacity) * 100;
  if (percent <= mark.percent) return undefined;
  return `pulling it would take image filesystem ${reading.mountpoint} past the high-water mark: ${used} bytes in use${reserved(planned.reservedDiskBytes)} + ${planned.diskBytes} bytes estimated for this image (${planned.basis}, unpacked plus compressed) = ${total} of ${capacity} bytes, ${percent.toFixed(1)}% full, over the mark of ${mark.percent}%; ${advice}`;
}

/** Reads the image filesystem through CRI ImageFsInfo (and statfs for percent marks). */
export async function readDisk(
  imageFsInfo: () => Promise<FilesystemUsage[]>,
  mark: HighWaterMark,
): Promise<DiskReading> {
  const filesystems = await imageFsInfo();
  const fs = filesystems[0];
  if (!fs) throw new Error('the runtime reported no image filesystem (ImageFsInfo was empty)');
  const reading: DiskReading = {
    imageFsUsedBytes: fs.usedBytes,
    mountpoint: fs.mountpoint,
    timestampNs: fs.timestampNs,
  };
  if (mark.kind === 'percent') {
    const st = await statfs(fs.mountpoint).catch((err: NodeJS.ErrnoException) => {
      throw new Error(
        `cannot measure the image filesystem ${fs.mountpoint} (${err.code ?? err.message}); mount it into the agent or use a byte mark such as --disk-high-water 40GiB`,
      );
    });
    // As df computes it: blocks in use over blocks usable by unprivileged users plus in use.
    const usedBlocks = st.blocks - st.bfree;
    const denominator = usedBlocks + st.bavail;
    reading.filesystemUsedPercent = denominator > 0 ? (usedBlocks / denominator) * 100 : 0;
    reading.filesystemUsedBytes = usedBlocks * st.bsize;
    reading.filesystemCapacityBytes = denominator * st.bsize;
  }
  return reading;
}
