import { AnalyzeError } from './errors.js';

/**
 * Prometheus text exposition format 0.0.4 (samples `name{label="v",...} value [timestamp]`,
 * `# HELP` / `# TYPE` lines) and histograms rebuilt from `_bucket{le=...}`, `_sum`, `_count`,
 * with quantiles estimated as PromQL's histogram_quantile does (linear within a bucket). Pure.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Histogram {
  name: string;
  /** Labels other than `le`. */
  labels: Record<string, string>;
  /** Cumulative counts by upper bound, ascending; the last is +Inf. */
  buckets: Array<{ le: number; count: number }>;
  count: number;
  sum: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  return Number(v);
}

export function parsePrometheusText(text: string, source = 'metrics'): Sample[] {
  const out: Sample[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    const value = m ? parseValue(m[3] ?? '') : NaN;
    if (!m || (Number.isNaN(value) && m[3] !== 'NaN')) {
      throw new AnalyzeError(
        'METRICS_INVALID',
        `${source}:${i + 1}: not a Prometheus sample line; pass the kubelet's /metrics text`,
      );
    }
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    LABEL.lastIndex = 0;
    let consumed = 0;
    for (let lm = LABEL.exec(body); lm; lm = LABEL.exec(body)) {
      labels[lm[1] ?? ''] = (lm[2] ?? '').replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
      consumed = LABEL.lastIndex;
    }
    if (body.slice(consumed).trim() !== '') {
      throw new AnalyzeError('METRICS_INVALID', `${source}:${i + 1}: malformed labels`);
    }
    out.push({ name: m[1] ?? '', labels, value });
  }
  return out;
}

/** Histograms of one metric family, one per label set. */
export function histograms(samples: Sample[], family: string): Histogram[] {
  const byKey = new Map<string, Histogram>();
  const key = (labels: Record<string, string>) =>
    JSON.stringify(
      Object.entries(labels)
        .filter(([k]) => k !== 'le')
        .sort(([a], [b]) => a.localeCompare(b)),
    );
  const get = (labels: Record<string, string>) => {
    const k = key(labels);
    let h = byKey.get(k);
    if (!h) {
      const rest = Object.fromEntries(Object.entries(labels).filter(([l]) => l !== 'le'));
      h = { name: family, labels: rest, buckets: [], count: 0, sum: 0 };
      byKey.set(k, h);
    }
    return h;
  };
  for (const s of samples) {
    if (s.name === `${family}_bucket` && s.labels.le !== undefined) {
      get(s.labels).buckets.push({ le: parseValue(s.labels.le), count: s.value });
    } else if (s.name === `${family}_sum`) get(s.labels).sum = s.value;
    else if (s.name === `${family}_count`) get(s.labels).count = s.value;
  }
  for (const h of byKey.values()) h.buckets.sort((a, b) => a.le - b.le);
  return [...byKey.values()];
}

/** histogram_quantile(q, ...): linear interpolation inside the bucket holding the q-th observation. */
export function histogramQuantile(q: number, buckets: Histogram['buckets']): number | null {
  const last = buckets[buckets.length - 1];
  if (!last || last.count === 0) return null;
  const rank = q * last.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe; // as Prometheus: the highest finite bound
      if (b.count === prevCount) return b.le;
      return prevLe + ((b.le - prevLe) * (rank - prevCount)) / (b.count - prevCount);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

/** Merges histograms of the same buckets (e.g. one per node) by adding counts. */
export function mergeHistograms(list: Histogram[], labels: Record<string, string>): Histogram | undefined {
  const first = list[0];
  if (!first) return undefined;
  const les = [...new Set(list.flatMap((h) => h.buckets.map((b) => b.le)))].sort((a, b) => a - b);
  return {
    name: first.name,
    labels,
    buckets: les.map((le) => ({
      le,
      count: list.reduce((n, h) => n + (h.buckets.find((b) => b.le === le)?.count ?? 0), 0),
    })),
    count: list.reduce((n, h) => n + h.count, 0),
    sum: list.reduce((n, h) => n + h.sum, 0),
  };
}
