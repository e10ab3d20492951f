import { readFile } from 'node:fs/promises';
import {
  CriError,
  PullProgress,
  type CriClient,
  type PullProgressSnapshot,
  type RegistryAuth,
} from '../cri/index.js';
import { parseImageReference } from '../oci/index.js';
import { hostsTomlPath } from './hosts-config.js';
import { hostOrder, parseHostsToml } from './hosts-toml.js';
import { readMirrorCounters } from './mirror-stats.js';

/**
 * `hoist node pull`: pulls images into the runtime over CRI, one after another, and reports for
 * each its size, time and whether the Hoist mirror served it (its served-bytes counter moved).
 */

export interface PullReport {
  image: string;
  ok: boolean;
  alreadyPresent: boolean;
  imageRef?: string;
  sizeBytes?: number;
  seconds?: number;
  /**
   * What this pull added to containerd's content store (containerd only): blobs, of which layers
   * (unpacked blobs carry containerd.io/uncompressed), and their bytes.
   */
  downloaded?: { blobs: number; layers: number; bytes: number };
  /** The mirror in front of the registry, and the blob bytes it sent during this pull. */
  mirror?: { url: string; servedBytes: number; served: boolean };
  /** What the disk check found (usage, the image's size estimate or why there is none). */
  disk?: object;
  error?: { code: string; message: string };
}

/** A guard's answer: refuse (with a stable code and one-line reason) or go ahead. */
export interface PullGuardDecision {
  refuse?: { code: string; reason: string };
  /** Kept in the report as `disk`. */
  disk?: object;
  /** Called once the pull it allowed has ended (to release what it reserved). */
  release?: (ok: boolean) => void;
}

export interface PullOptions {
  cri: CriClient;
  images: string[];
  /** Pull even when the image is present (the kubelet's imagePullPolicy Always). */
  always?: boolean;
  auth?: RegistryAuth;
  /** Credentials per image (from an auth file), when `auth` is not given. */
  authFor?: (image: string) => RegistryAuth | undefined;
  /** The mirror to ask for its counters; else the first host in the registry's hosts.toml. */
  mirrorUrl?: string;
  certsDir?: string;
  /** Checked before each pull (the disk high-water mark). */
  guard?: (image: string) => Promise<PullGuardDecision>;
  onProgress?: (image: string, progress: PullProgressSnapshot, elapsedMs: number) => void;
  /** How often progress is sampled while a pull runs. */
  progressIntervalMs?: number;
}

/** containerd labels a layer blob with its uncompressed digest once it has unpacked it. */
const UNPACKED_LABEL = 'containerd.io/uncompressed';

/** The first mirror host in `<certsDir>/<registry>/hosts.toml`, when there is one. */
export async function mirrorFromHostsToml(certsDir: string, image: string): Promise<string | undefined> {
  try {
    const registry = parseImageReference(image).registry;
    const path = hostsTomlPath(certsDir, registry);
    return hostOrder(parseHostsToml(await readFile(path, 'utf8'), path))[0]?.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}

async function pullOne(opts: PullOptions, image: string): Promise<PullReport> {
  const { cri } = opts;
  if (!opts.always) {
    const present = await cri.imageStatus(image);
    if (present) {
      return { image, ok: true, alreadyPresent: true, imageRef: present.id, sizeBytes: present.size };
    }
  }
  const decision = (await opts.guard?.(image)) ?? {};
  const disk = decision.disk ? { disk: decision.disk } : {};
  if (decision.refuse)
    return {
      image,
      ok: false,
      alreadyPresent: false,
      ...disk,
      error: { code: decision.refuse.code, message: decision.refuse.reason },
    };
  try {
    const report = await pullAllowed(opts, image);
    decision.release?.(report.ok);
    return { ...report, ...disk };
  } catch (err) {
    decision.release?.(false);
    throw err;
  }
}

async function pullAllowed(opts: PullOptions, image: string): Promise<PullReport> {
  const { cri } = opts;
  const mirrorUrl =
    opts.mirrorUrl ?? (opts.certsDir ? await mirrorFromHostsToml(opts.certsDir, image) : undefined);
  const before = mirrorUrl ? await readMirrorCounters(mirrorUrl) : undefined;
  const contentBefore = await cri.listContent().catch(() => undefined);
  const progress = new PullProgress();
  const started = process.hrtime.bigint();
  const elapsedMs = () => Number(process.hrtime.bigint() - started) / 1e6;
  let sampling = true;
  const sample = async () => {
    try {
      const snap = progress.observe(await cri.ingestStatuses());
      opts.onProgress?.(image, snap, elapsedMs());
    } catch (err) {
      // Not containerd (no content service): elapsed time is all there is.
      if (err instanceof CriError && err.code === 'UNIMPLEMENTED') sampling = false;
      opts.onProgress?.(image, progress.snapshot(), elapsedMs());
    }
  };
  const timer = setInterval(() => {
    if (sampling) void sample();
    else opts.onProgress?.(image, progress.snapshot(), elapsedMs());
  }, opts.progressIntervalMs ?? 500);
  try {
    const auth = opts.auth ?? opts.authFor?.(image);
    const imageRef = await cri.pullImage(image, auth ? { auth } : {});
    clearInterval(timer);
    if (sampling) await sample(); // the last ingests are gone now: every layer seen is done
    const seconds = elapsedMs() / 1000;
    const after = await cri.imageStatus(image);
    const report: PullReport = {
      image,
      ok: true,
      alreadyPresent: false,
      imageRef,
      sizeBytes: after?.size ?? 0,
      seconds,
    };
    const contentAfter = contentBefore ? await cri.listContent().catch(() => undefined) : undefined;
    if (contentBefore && contentAfter) {
      const had = new Set(contentBefore.map((c) => c.digest));
      const added = contentAfter.filter((c) => !had.has(c.digest));
      report.downloaded = {
        blobs: added.length,
        layers: added.filter((c) => UNPACKED_LABEL in c.labels).length,
        bytes: added.reduce((n, c) => n + c.size, 0),
      };
    }
    const afterCounters = mirrorUrl && before ? await readMirrorCounters(mirrorUrl) : undefined;
    if (mirrorUrl && before && afterCounters) {
      const servedBytes = afterCounters.servedBytes - before.servedBytes;
      report.mirror = { url: mirrorUrl, servedBytes, served: servedBytes > 0 };
    }
    return report;
  } catch (err) {
    clearInterval(timer);
    const code = err instanceof CriError ? err.code : 'PULL_FAILED';
    return { image, ok: false, alreadyPresent: false, error: { code, message: (err as Error).message } };
  }
}

export async function pullImages(opts: PullOptions): Promise<PullReport[]> {
  const reports: PullReport[] = [];
  for (const image of opts.images) reports.push(await pullOne(opts, image));
  return reports;
}
