import type { CriClient } from '../cri/index.js';
import { ImageSizeEstimator, type ImageSizeEstimate, type SizeEstimatorOptions } from '../node/index.js';
import { checkPull, formatMark, readDisk, type DiskReading, type HighWaterMark } from './disk-mark.js';
import { DiskReservations } from './disk-reservations.js';

/**
 * The check before a pull: refuse when the image filesystem is at or over the high-water mark,
 * or when the image's estimated size (src/node image-size.ts), plus what other pulls have
 * reserved, would take it past. When no estimate can be made (registry unreachable, denied),
 * the check falls back to current usage and says so in `disk.estimateError`.
 */

/** What the check saw, kept in the image's status. */
export interface DiskCheck {
  mark: string;
  mountpoint: string;
  /** ImageFsInfo used bytes. */
  imageFsUsedBytes: number;
  filesystemUsedPercent?: number;
  /** Bytes other pulls had reserved (in progress, or not yet counted by the runtime). */
  reservedBytes: number;
  estimate?: ImageSizeEstimate;
  /** Why there is no estimate: the check then compared current usage only. */
  estimateError?: string;
}

export interface GuardDecision {
  refuse?: { code: 'DISK_HIGH_WATER' | 'DISK_UNKNOWN'; reason: string };
  disk?: DiskCheck;
  /** Call once the pull this decision allowed has ended. */
  release?: (ok: boolean) => void;
}

/** labels containerd puts on a layer blob once it has unpacked it into a snapshot. */
const UNPACKED_LABEL = 'containerd.io/uncompressed';

export interface DiskGuardOptions {
  mark: HighWaterMark;
  cri: Pick<CriClient, 'imageFsInfo' | 'listContent'>;
  /** Where and how to read manifests for the estimate (hosts.toml dir, mirror, credentials). */
  estimator?: Omit<SizeEstimatorOptions, 'presentDigests'>;
  onReading?: (reading: DiskReading) => void;
  /** Wall clock in ns since the epoch, as ImageFsInfo timestamps are. */
  nowNs?: () => number;
}

export class DiskGuard {
  private readonly opts: DiskGuardOptions;
  private readonly estimator: ImageSizeEstimator;
  private readonly reservations: DiskReservations;
  /** Decisions are taken one at a time, so two pulls never both count on the same free space. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(opts: DiskGuardOptions) {
    this.opts = opts;
    this.reservations = new DiskReservations(opts.nowNs ?? (() => Date.now() * 1e6));
    const { cri } = opts;
    this.estimator = new ImageSizeEstimator({
      ...opts.estimator,
      // Layers already unpacked cost nothing new: snapshots are shared between images.
      presentDigests: async () =>
        new Set((await cri.listContent()).filter((c) => UNPACKED_LABEL in c.labels).map((c) => c.digest)),
    });
  }

  private async read(): Promise<DiskReading> {
    const reading = await readDisk(() => this.opts.cri.imageFsInfo(), this.opts.mark);
    this.opts.onReading?.(reading);
    return reading;
  }

  private unknown(err: unknown): GuardDecision {
    return {
      refuse: {
        code: 'DISK_UNKNOWN',
        reason: `cannot check the ${formatMark(this.opts.mark)} mark: ${(err as Error).message}`,
      },
    };
  }

  check = async (image: string, signal?: AbortSignal): Promise<GuardDecision> => {
    const { mark } = this.opts;
    // Already over: refuse without asking any registry.
    let first: DiskReading;
    try {
      first = await this.read();
    } catch (err) {
      return this.unknown(err);
    }
    const now = checkPull(mark, first, undefined);
    if (now) return { refuse: { code: 'DISK_HIGH_WATER', reason: now }, disk: this.describe(first, 0) };

    let estimate: ImageSizeEstimate | undefined;
    let estimateError: string | undefined;
    try {
      estimate = await this.estimator.estimate(image, signal);
    } catch (err) {
      if (signal?.aborted) throw err;
      estimateError = `size not estimated, checked current usage only: ${(err as Error).message}`;
    }

    const decide = async (): Promise<GuardDecision> => {
      let reading: DiskReading;
      try {
        reading = await this.read();
      } catch (err) {
        return this.unknown(err);
      }
      const reserved = this.reservations.outstanding(reading);
      const reservedBytes = mark.kind === 'bytes' ? reserved.imageFsBytes : reserved.diskBytes;
      const disk: DiskCheck = {
        ...this.describe(reading, reservedBytes),
        ...(estimate ? { estimate } : {}),
        ...(estimateError ? { estimateError } : {}),
      };
      const planned = estimate
        ? {
            imageFsBytes: estimate.unpackedBytes,
            diskBytes: estimate.unpackedBytes + estimate.downloadBytes,
            basis: estimate.basis,
            reservedImageFsBytes: reserved.imageFsBytes,
            reservedDiskBytes: reserved.diskBytes,
          }
        : undefined;
      const reason = checkPull(mark, reading, planned);
      if (reason) return { refuse: { code: 'DISK_HIGH_WATER', reason }, disk };
      if (!estimate) return { disk };
      const id = this.reservations.reserve(
        estimate.unpackedBytes,
        estimate.unpackedBytes + estimate.downloadBytes,
      );
      return { disk, release: (ok) => this.reservations.finish(id, ok) };
    };
    const result = this.turn.then(decide);
    this.turn = result.catch(() => undefined);
    return result;
  };

  private describe(reading: DiskReading, reservedBytes: number): DiskCheck {
    return {
      mark: formatMark(this.opts.mark),
      mountpoint: reading.mountpoint,
      imageFsUsedBytes: reading.imageFsUsedBytes,
      ...(reading.filesystemUsedPercent !== undefined
        ? { filesystemUsedPercent: Number(reading.filesystemUsedPercent.toFixed(2)) }
        : {}),
      reservedBytes,
    };
  }
}
