import { formatBytes } from './format-bytes.js';
import { lazyPullDecision, type LazyPullDecision } from './lazy-pull-policy.js';
import type { Advice } from './pull-report.js';

/**
 * What a set of images costs a node, from their manifests and configs: layers shared across the
 * set, bytes a node holding all of them downloads versus the naive sum, groups by common base,
 * layers that change between versions of one repository, and advice. Pure.
 */

export interface LayerInfo {
  digest: string;
  /** Compressed size (what a node downloads). */
  size: number;
  mediaType: string;
  /** Uncompressed size when known (annotation, plain tar, or the gzip trailer). */
  uncompressedSize: number | null;
  /** The history line that made the layer (`created_by` in the image config). */
  createdBy: string | null;
}

export interface ImageInfo {
  ref: string;
  /** Registry and repository, to compare versions of the same image. */
  repository: string;
  /** Digest the reference resolved to (an index for multi-platform images). */
  digest: string;
  /** Digest of the platform's image manifest. */
  manifestDigest: string;
  platform: string;
  created: string | null;
  layers: LayerInfo[];
  /** eStargz already (every layer has a TOC digest annotation). */
  lazy: boolean;
  /** `org.opencontainers.image.base.name` annotation, when the builder wrote it. */
  baseName: string | null;
}

export interface ImageReport extends Omit<ImageInfo, 'layers'> {
  compressedBytes: number;
  uncompressedBytes: number | null;
  layers: Array<LayerInfo & { sharedWith: number }>;
  /** Bytes of this image's layers that no other image in the set has. */
  uniqueToImageBytes: number;
  lazyPull: LazyPullDecision;
}

export interface BaseGroup {
  /** Digests of the layers every image in the group starts with. */
  baseLayers: string[];
  baseBytes: number;
  /** History line of the base's top layer. */
  baseTop: string | null;
  baseName: string | null;
  images: string[];
}

export interface VersionChange {
  repository: string;
  from: string;
  to: string;
  /** Layers of `to` that `from` did not have, bottom first. */
  changedLayers: Array<{ index: number; digest: string; size: number; createdBy: string | null }>;
  changedBytes: number;
  reusedBytes: number;
}

export interface ImageSetReport {
  images: ImageReport[];
  naiveBytes: number;
  uniqueBytes: number;
  sharedLayers: Array<{ digest: string; size: number; createdBy: string | null; images: string[] }>;
  groups: BaseGroup[];
  changes: VersionChange[];
  advice: Advice[];
}

const INSTALL =
  /\b(pip3?|python3? -m pip|npm (ci|install|i)|yarn|pnpm|go mod download|bundle install|composer install|poetry install|uv sync|apt-get install|apk add|dnf install|yum install)\b/;
const COPY_SOURCE = /\bCOPY\b(?!.*--from)|\bADD\b|COPY dir:|COPY file:/;

function commonPrefix(lists: string[][]): string[] {
  const [first, ...rest] = lists;
  if (!first) return [];
  let n = first.length;
  for (const l of rest) {
    let i = 0;
    while (i < n && i < l.length && l[i] === first[i]) i++;
    n = i;
  }
  return first.slice(0, n);
}

export function analyzeImageSet(images: ImageInfo[]): ImageSetReport {
  const holders = new Map<string, Set<string>>();
  const sizeOf = new Map<string, number>();
  const historyOf = new Map<string, string | null>();
  for (const img of images) {
    for (const l of img.layers) {
      if (!holders.has(l.digest)) holders.set(l.digest, new Set());
      holders.get(l.digest)?.add(img.ref);
      sizeOf.set(l.digest, l.size);
      if (!historyOf.get(l.digest)) historyOf.set(l.digest, l.createdBy);
    }
  }
  const naiveBytes = images.reduce((n, img) => n + img.layers.reduce((m, l) => m + l.size, 0), 0);
  const uniqueBytes = [...sizeOf.values()].reduce((n, s) => n + s, 0);

  const reports: ImageReport[] = images.map((img) => {
    const compressedBytes = img.layers.reduce((n, l) => n + l.size, 0);
    const unknown = img.layers.some((l) => l.uncompressedSize === null);
    return {
      ...img,
      compressedBytes,
      uncompressedBytes: unknown ? null : img.layers.reduce((n, l) => n + (l.uncompressedSize ?? 0), 0),
      layers: img.layers.map((l) => ({ ...l, sharedWith: (holders.get(l.digest)?.size ?? 1) - 1 })),
      uniqueToImageBytes: [...new Set(img.layers.map((l) => l.digest))]
        .filter((d) => (holders.get(d)?.size ?? 0) <= 1)
        .reduce((n, d) => n + (sizeOf.get(d) ?? 0), 0),
      lazyPull: lazyPullDecision(compressedBytes, img.lazy),
    };
  });

  const sharedLayers = [...holders.entries()]
    .filter(([, refs]) => refs.size > 1)
    .map(([digest, refs]) => ({
      digest,
      size: sizeOf.get(digest) ?? 0,
      createdBy: historyOf.get(digest) ?? null,
      images: [...refs],
    }))
    .sort((a, b) => b.size - a.size);

  // Groups: images that start with the same bottom layer share a base; the base is their
  // longest common run of layers.
  const byBottom = new Map<string, ImageInfo[]>();
  for (const img of images) {
    const bottom = img.layers[0]?.digest ?? '(no layers)';
    byBottom.set(bottom, [...(byBottom.get(bottom) ?? []), img]);
  }
  const groups: BaseGroup[] = [...byBottom.values()]
    .map((members) => {
      const baseLayers = commonPrefix(members.map((m) => m.layers.map((l) => l.digest)));
      // One image alone has no evident base: count its bottom layer only.
      const layers = members.length === 1 ? baseLayers.slice(0, 1) : baseLayers;
      const top = layers[layers.length - 1];
      return {
        baseLayers: layers,
        baseBytes: layers.reduce((n, d) => n + (sizeOf.get(d) ?? 0), 0),
        baseTop: top ? (historyOf.get(top) ?? null) : null,
        baseName: members.find((m) => m.baseName)?.baseName ?? null,
        images: members.map((m) => m.ref),
      };
    })
    .sort((a, b) => b.images.length - a.images.length || b.baseBytes - a.baseBytes);

  const changes: VersionChange[] = [];
  const byRepo = new Map<string, ImageInfo[]>();
  for (const img of images) byRepo.set(img.repository, [...(byRepo.get(img.repository) ?? []), img]);
  for (const [repository, versions] of byRepo) {
    for (let i = 1; i < versions.length; i++) {
      const from = versions[i - 1];
      const to = versions[i];
      if (!from || !to || from.manifestDigest === to.manifestDigest) continue;
      const had = new Set(from.layers.map((l) => l.digest));
      const changedLayers = to.layers
        .map((l, index) => ({ index, digest: l.digest, size: l.size, createdBy: l.createdBy }))
        .filter((l) => !had.has(l.digest));
      const changedBytes = changedLayers.reduce((n, l) => n + l.size, 0);
      const total = to.layers.reduce((n, l) => n + l.size, 0);
      changes.push({
        repository,
        from: from.ref,
        to: to.ref,
        changedLayers,
        changedBytes,
        reusedBytes: total - changedBytes,
      });
    }
  }

  return {
    images: reports,
    naiveBytes,
    uniqueBytes,
    sharedLayers,
    groups,
    changes,
    advice: advise(reports, groups, changes, naiveBytes, uniqueBytes),
  };
}

function advise(
  images: ImageReport[],
  groups: BaseGroup[],
  changes: VersionChange[],
  naiveBytes: number,
  uniqueBytes: number,
): Advice[] {
  const advice: Advice[] = [];
  if (images.length > 1) {
    advice.push({
      topic: 'sharing',
      message: `a node holding all ${images.length} images downloads ${formatBytes(uniqueBytes)}, not ${formatBytes(naiveBytes)}: ${formatBytes(naiveBytes - uniqueBytes)} (${naiveBytes ? Math.round(((naiveBytes - uniqueBytes) / naiveBytes) * 100) : 0}%) is shared`,
      fix: 'keep shared layers identical across images: same base digest, same early RUN steps in the same order',
    });
  }
  const [main, ...others] = groups;
  if (main && others.length > 0) {
    const saving = others.reduce((n, g) => n + g.baseBytes, 0);
    const name = main.baseName ?? main.baseTop ?? `the base of ${main.images[0]}`;
    advice.push({
      topic: 'standardise-bases',
      message: `${groups.length} different bases: ${main.images.length} image(s) share "${name.slice(0, 80)}" (${formatBytes(main.baseBytes)}); ${others.flatMap((g) => g.images).join(', ')} use others`,
      fix: `standardise on the base of ${main.images.join(', ')}: rebuilding ${others.flatMap((g) => g.images).join(', ')} on it saves up to ${formatBytes(saving)} per node`,
    });
  }
  for (const c of changes) {
    if (c.changedLayers.length === 0) continue;
    const first = c.changedLayers[0];
    const installAbove = c.changedLayers.find((l) => l.createdBy !== null && INSTALL.test(l.createdBy));
    const copyBelow = c.changedLayers.find(
      (l) =>
        l.createdBy !== null && COPY_SOURCE.test(l.createdBy) && installAbove && l.index < installAbove.index,
    );
    advice.push({
      topic: 'changing-layers',
      message: `${c.to} changes ${c.changedLayers.length} layer(s) from ${c.from} (${formatBytes(c.changedBytes)} to pull again, ${formatBytes(c.reusedBytes)} reused), from layer ${(first?.index ?? 0) + 1}: ${c.changedLayers
        .slice(0, 3)
        .map((l) => `"${(l.createdBy ?? l.digest).slice(0, 60)}"`)
        .join(', ')}`,
      fix:
        installAbove && copyBelow
          ? `the dependency layer ("${installAbove.createdBy?.slice(0, 50)}") changes on every build because source is copied before it: copy only the dependency manifests first (hoist analyze dockerfile)`
          : 'order the Dockerfile so that what changes on every build (the source) comes last and stays small',
    });
  }
  const big = images.filter((i) => i.lazyPull.convert);
  if (big.length > 0) {
    advice.push({
      topic: 'lazy-pull',
      message: `${big.map((i) => `${i.ref} (${formatBytes(i.compressedBytes)})`).join(', ')} ${big.length === 1 ? 'is' : 'are'} over 5 GB`,
      fix: 'convert to eStargz (hoist convert) and enable the stargz snapshotter so containers start before the pull ends',
    });
  }
  const smallLazy = images.filter((i) => i.lazy && !i.lazyPull.recommended);
  if (smallLazy.length > 0) {
    advice.push({
      topic: 'lazy-pull',
      message: `${smallLazy.map((i) => i.ref).join(', ')} ${smallLazy.length === 1 ? 'is' : 'are'} eStargz but under 5 GB`,
      fix: 'pull small images normally: per-file range requests make lazy pulling slower for them',
    });
  }
  return advice;
}
