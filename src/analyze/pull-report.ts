import type { Failure, FailureCause, ParsedEvents, Pull } from './kubelet-events.js';
import { LAZY_PULL_MIN_P90_SECONDS, lazyPullAdvised } from './lazy-pull-policy.js';
import { histogramQuantile, type Histogram } from './prometheus-text.js';

/**
 * Pull-time statistics and remedies from parsed kubelet events and /metrics histograms. Pure.
 */

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ImagePullStats {
  image: string;
  pulls: number;
  nodes: number;
  seconds: Percentiles;
  /** Null when no pull of the image reported waiting time (kubelet < 1.26). */
  secondsIncludingWaiting: Percentiles | null;
  /** Largest size reported for the image, null when never reported (kubelet < 1.30). */
  bytes: number | null;
  /** Median of bytes / seconds over pulls that reported a size. */
  bytesPerSecond: number | null;
}

export interface NodePullStats {
  node: string;
  pulls: number;
  seconds: Percentiles;
  totalSeconds: number;
}

export interface HistogramReport {
  source: string;
  labels: Record<string, string>;
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
}

export interface Advice {
  topic: string;
  message: string;
  fix: string;
}

export interface EventsReport {
  pulls: Array<Omit<Pull, 'format'> & { format: Pull['format'] }>;
  failures: Failure[];
  images: ImagePullStats[];
  nodes: NodePullStats[];
  overall: { pulls: number; seconds: Percentiles | null; waitingShare: number | null };
  failuresByCause: Record<FailureCause, number>;
  alreadyPresent: ParsedEvents['alreadyPresent'];
  pullsWithoutDuration: number;
  histograms: HistogramReport[];
  advice: Advice[];
}

/** Nearest-rank percentiles over values with weights (an event seen `count` times). */
export function percentiles(values: Array<{ value: number; weight: number }>): Percentiles | null {
  const sorted = values.filter((v) => v.weight > 0).sort((a, b) => a.value - b.value);
  const total = sorted.reduce((n, v) => n + v.weight, 0);
  if (total === 0) return null;
  const at = (q: number) => {
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (const v of sorted) {
      seen += v.weight;
      if (seen >= rank) return v.value;
    }
    return sorted[sorted.length - 1]?.value ?? 0;
  };
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: sorted[sorted.length - 1]?.value ?? 0,
    mean: sorted.reduce((n, v) => n + v.value * v.weight, 0) / total,
  };
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

const weighted = (pulls: Pull[], pick: (p: Pull) => number | null) =>
  pulls.flatMap((p) => {
    const v = pick(p);
    return v === null ? [] : [{ value: v, weight: p.count }];
  });

const REMEDY: Record<FailureCause, { message: string; fix: string }> = {
  'rate-limit': {
    message: 'the registry refused pulls with 429 Too Many Requests',
    fix: 'run a pull-through mirror per zone (hoist mirror) and point containerd at it with hosts.toml, so each blob leaves the registry once; pre-pull before rollouts',
  },
  timeout: {
    message:
      'pulls timed out (i/o timeout, context deadline exceeded) or were cancelled for making no progress (code = Canceled)',
    fix: 'serve images from a mirror in the same zone (hoist mirror), pre-pull large images before pods need them, and check containerd image_pull_progress_timeout',
  },
  'disk-pressure': {
    message: 'nodes ran out of image disk (no space left on device)',
    fix: 'lower imageGCHighThresholdPercent so GC runs before DiskPressure, give the image filesystem more space, and slim the images (hoist analyze dockerfile)',
  },
  'not-found': {
    message: 'images or tags do not exist (manifest unknown / not found)',
    fix: 'check the image names and tags against the registry; a tag that was deleted or never pushed cannot be pulled',
  },
  unauthorized: {
    message: 'the registry refused credentials (unauthorized / access denied)',
    fix: "give the pods imagePullSecrets (or the mirror's upstream credentials) for the registry, and check the repository name",
  },
  other: {
    message: 'pulls failed for other reasons',
    fix: 'read the example error of each failure and kubectl describe the pods',
  },
};

export function buildEventsReport(
  parsed: ParsedEvents,
  metrics: Array<{ source: string; histograms: Histogram[] }> = [],
): EventsReport {
  const { pulls, failures } = parsed;
  const byImage = new Map<string, Pull[]>();
  const byNode = new Map<string, Pull[]>();
  for (const p of pulls) {
    byImage.set(p.image, [...(byImage.get(p.image) ?? []), p]);
    byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
  }
  const images: ImagePullStats[] = [...byImage.entries()].map(([image, list]) => {
    const sized = list.filter((p) => p.bytes !== null && p.seconds > 0);
    const bytes = sized.length ? Math.max(...sized.map((p) => p.bytes ?? 0)) : null;
    return {
      image,
      pulls: list.reduce((n, p) => n + p.count, 0),
      nodes: new Set(list.map((p) => p.node)).size,
      seconds: percentiles(weighted(list, (p) => p.seconds)) ?? { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 },
      secondsIncludingWaiting: percentiles(weighted(list, (p) => p.secondsIncludingWaiting)),
      bytes,
      bytesPerSecond: median(sized.map((p) => (p.bytes ?? 0) / p.seconds)),
    };
  });
  images.sort((a, b) => b.seconds.p90 - a.seconds.p90 || a.image.localeCompare(b.image));
  const nodes: NodePullStats[] = [...byNode.entries()]
    .map(([node, list]) => ({
      node,
      pulls: list.reduce((n, p) => n + p.count, 0),
      seconds: percentiles(weighted(list, (p) => p.seconds)) ?? { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 },
      totalSeconds: list.reduce((n, p) => n + p.seconds * p.count, 0),
    }))
    .sort((a, b) => b.totalSeconds - a.totalSeconds || a.node.localeCompare(b.node));

  const withWaiting = pulls.filter((p) => p.secondsIncludingWaiting !== null);
  const totalIncl = withWaiting.reduce((n, p) => n + (p.secondsIncludingWaiting ?? 0) * p.count, 0);
  const totalPull = withWaiting.reduce((n, p) => n + p.seconds * p.count, 0);
  const waitingShare = totalIncl > 0 ? Math.max(0, (totalIncl - totalPull) / totalIncl) : null;

  const failuresByCause: Record<FailureCause, number> = {
    'rate-limit': 0,
    'not-found': 0,
    unauthorized: 0,
    timeout: 0,
    'disk-pressure': 0,
    other: 0,
  };
  for (const f of failures) failuresByCause[f.cause] += f.count;

  const histogramReports: HistogramReport[] = metrics.flatMap((m) =>
    m.histograms.map((h) => ({
      source: m.source,
      labels: h.labels,
      buckets: h.buckets,
      count: h.count,
      sum: h.sum,
      p50: histogramQuantile(0.5, h.buckets),
      p90: histogramQuantile(0.9, h.buckets),
      p99: histogramQuantile(0.99, h.buckets),
    })),
  );

  const advice: Advice[] = [];
  for (const cause of Object.keys(failuresByCause) as FailureCause[]) {
    const n = failuresByCause[cause];
    if (n === 0) continue;
    const imgs = [...new Set(failures.filter((f) => f.cause === cause).map((f) => f.image))];
    advice.push({
      topic: cause,
      message: `${n} failed pull attempt${n === 1 ? '' : 's'}: ${REMEDY[cause].message} (${imgs.slice(0, 3).join(', ')}${imgs.length > 3 ? ', ...' : ''})`,
      fix: REMEDY[cause].fix,
    });
  }
  if (waitingShare !== null && waitingShare >= 0.25) {
    advice.push({
      topic: 'parallel-pulls',
      message: `pulls spent ${Math.round(waitingShare * 100)}% of their time waiting behind other pulls on the node`,
      fix: 'set serializeImagePulls: false and maxParallelImagePulls (e.g. 5) in the kubelet configuration (hoist render kubelet-config)',
    });
  }
  // One item per remedy, naming every image it applies to.
  const spread = images.filter((i) => i.nodes >= 3);
  if (spread.length > 0) {
    advice.push({
      topic: 'pre-pull',
      message: `${spread
        .slice(0, 5)
        .map((i) => `${i.image} (${i.nodes} nodes, p90 ${i.seconds.p90.toFixed(1)} s)`)
        .join(
          ', ',
        )}${spread.length > 5 ? ` and ${spread.length - 5} more` : ''} ${spread.length === 1 ? 'was' : 'were'} pulled on many nodes`,
      fix: 'pre-pull them onto the nodes before the rollout, and serve them from a per-zone mirror so the registry sends each once',
    });
  }
  const huge = images.filter((i) => lazyPullAdvised(i.bytes, i.seconds.p90));
  if (huge.length > 0) {
    advice.push({
      topic: 'lazy-pull',
      message: `${huge
        .slice(0, 5)
        .map((i) => `${i.image} (${((i.bytes ?? 0) / 1e9).toFixed(1)} GB, p90 ${i.seconds.p90.toFixed(0)} s)`)
        .join(
          ', ',
        )}${huge.length > 5 ? ` and ${huge.length - 5} more` : ''} ${huge.length === 1 ? 'is' : 'are'} over 5 GB and slow to pull (p90 at least ${LAZY_PULL_MIN_P90_SECONDS} s)`,
      fix: 'convert to eStargz (hoist convert) and enable the stargz snapshotter, so containers start before the pull ends',
    });
  }
  return {
    pulls,
    failures,
    images,
    nodes,
    overall: {
      pulls: pulls.reduce((n, p) => n + p.count, 0),
      seconds: percentiles(weighted(pulls, (p) => p.seconds)),
      waitingShare,
    },
    failuresByCause,
    alreadyPresent: parsed.alreadyPresent,
    pullsWithoutDuration: parsed.pullsWithoutDuration,
    histograms: histogramReports,
    advice,
  };
}

// Text tables for the terminal output of `analyze events` and `analyze images`.

/** Widest an image reference is printed in a text table before it is shortened in the middle. */
export const TEXT_REF_MAX_CHARS = 64;

/**
 * Shortens an image reference to `max` characters by cutting its middle, keeping the start of the
 * registry and the whole last component (`name:tag`), which is what tells two images apart; only
 * when that component alone is too long is it cut too, keeping its end (the tag). Pure.
 */
export function shortenRef(ref: string, max: number = TEXT_REF_MAX_CHARS): string {
  const chars = [...ref];
  if (chars.length <= max) return ref;
  const at = ref.indexOf('@');
  const lastSlash = ref.lastIndexOf('/', at < 0 ? ref.length : at);
  const last = [...ref.slice(lastSlash + 1)];
  const keepHead = max - 1 - last.length;
  // At least a few characters of the registry, or the reference no longer says where it is from.
  if (lastSlash > 0 && keepHead >= 4) return `${chars.slice(0, keepHead).join('')}…${last.join('')}`;
  return `…${chars.slice(chars.length - (max - 1)).join('')}`;
}

/**
 * Cuts text to at most `max` characters at a word boundary, marking the cut with an ellipsis; a
 * single word longer than half the room is cut inside (a URL or a digest has no better place). Pure.
 */
export function cutAtWord(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const chars = [...flat];
  if (chars.length <= max) return flat;
  const room = chars.slice(0, max - 1).join('');
  // A space right after the room means the room ends on a whole word.
  const end = chars[max - 1] === ' ' ? room.length : room.lastIndexOf(' ');
  const cut = end >= room.length / 2 ? room.slice(0, end) : room;
  return `${cut.replace(/[\s,;:.-]+$/, '')}…`;
}

export type ColumnAlign = 'left' | 'right';

/**
 * Columns padded to their longest cell (header included), two spaces apart, numbers right-aligned;
 * no trailing spaces. Widths count code points, so `…` takes one column as on a terminal. Pure.
 */
export function textTable(header: string[], rows: string[][], align: ColumnAlign[], indent = ''): string {
  const len = (s: string) => [...s].length;
  const widths = header.map((h, c) => Math.max(len(h), ...rows.map((r) => len(r[c] ?? ''))));
  const line = (cells: string[]) =>
    widths
      .map((w, c) => {
        const v = cells[c] ?? '';
        const pad = ' '.repeat(w - len(v));
        return align[c] === 'right' ? pad + v : v + pad;
      })
      .join('  ')
      .trimEnd();
  return [header, ...rows].map((r) => `${indent}${line(r)}\n`).join('');
}
