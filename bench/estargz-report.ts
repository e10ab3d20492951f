// Medians, ratios, the targets and the printed table for bench/estargz.ts.
import { median } from './stats.js';
import type { SourceImage } from './estargz-image.js';
import type { CtrRemoteRun, HoistRun } from './estargz-runners.js';

const MiB = 1024 * 1024;

export interface EstargzSummary {
  hoist: {
    /** Registry to registry: download, convert, upload. */
    wallSeconds: number;
    cpuSeconds: number;
    peakRssBytes: number;
    layerBytes: number;
  };
  ctrRemote: {
    fetchSeconds: number;
    convertSeconds: number;
    pushSeconds: number;
    /** fetch + convert + push: the registry-to-registry figure. */
    wallSeconds: number;
    /** ctr-remote plus containerd, during the conversion. */
    convertCpuSeconds: number;
    /** The ctr-remote process during the conversion (it compresses), and containerd beside it. */
    convertPeakRssBytes: number;
    containerdPeakRssBytes: number;
    layerBytes: number;
  };
  ratios: {
    /** Hoist registry to registry over ctr-remote registry to registry (fetch + convert + push). */
    wall: number;
    /** Hoist registry to registry over ctr-remote's conversion alone (source already local). */
    wallVsConvertOnly: number;
    cpu: number;
    /** Hoist's peak RSS over ctr-remote's plus containerd's. */
    peakRss: number;
    outputSize: number;
  };
  targets: Array<{ name: string; met: boolean; detail: string }>;
}

export interface EstargzResults {
  startedAt: string;
  quick: boolean;
  machine: Record<string, string | number>;
  settings: { gzipLevel: number; chunkSizeBytes: number };
  image: SourceImage;
  runs: { hoist: HoistRun[]; ctrRemote: CtrRemoteRun[] };
  summary: EstargzSummary;
  durationSeconds: number;
}

export function summarize(hoist: HoistRun[], ctr: CtrRemoteRun[]): EstargzSummary {
  const h = {
    wallSeconds: median(hoist.map((r) => r.convert.wallSeconds)),
    cpuSeconds: median(hoist.map((r) => r.convert.userSeconds + r.convert.systemSeconds)),
    peakRssBytes: Math.max(...hoist.map((r) => r.convert.maxRssBytes)),
    layerBytes: median(hoist.map((r) => r.layerBytes)),
  };
  const c = {
    fetchSeconds: median(ctr.map((r) => r.fetch.wallSeconds)),
    convertSeconds: median(ctr.map((r) => r.convert.wallSeconds)),
    pushSeconds: median(ctr.map((r) => r.push.wallSeconds)),
    wallSeconds: median(ctr.map((r) => r.fetch.wallSeconds + r.convert.wallSeconds + r.push.wallSeconds)),
    convertCpuSeconds: median(
      ctr.map(
        (r) =>
          r.convert.userSeconds +
          r.convert.systemSeconds +
          r.containerdDuringConvert.userSeconds +
          r.containerdDuringConvert.systemSeconds,
      ),
    ),
    convertPeakRssBytes: Math.max(...ctr.map((r) => r.convert.maxRssBytes)),
    containerdPeakRssBytes: Math.max(...ctr.map((r) => r.containerdDuringConvert.peakRssBytes)),
    layerBytes: median(ctr.map((r) => r.layerBytes)),
  };
  const ratios = {
    wall: h.wallSeconds / c.wallSeconds,
    wallVsConvertOnly: h.wallSeconds / c.convertSeconds,
    cpu: h.cpuSeconds / c.convertCpuSeconds,
    peakRss: h.peakRssBytes / (c.convertPeakRssBytes + c.containerdPeakRssBytes),
    outputSize: h.layerBytes / c.layerBytes,
  };
  return {
    hoist: h,
    ctrRemote: c,
    ratios,
    targets: [
      {
        name: 'no slower than ctr-remote (registry to registry)',
        met: ratios.wall <= 1,
        detail: `${h.wallSeconds.toFixed(2)} s vs ${c.wallSeconds.toFixed(2)} s`,
      },
      {
        name: 'output within 2% of ctr-remote',
        met: Math.abs(ratios.outputSize - 1) <= 0.02,
        detail: `${h.layerBytes} vs ${c.layerBytes} bytes (${((ratios.outputSize - 1) * 100).toFixed(2)}%)`,
      },
    ],
  };
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
}

export function renderEstargzTable(r: EstargzResults): string {
  const s = r.summary;
  const sec = (n: number) => `${n.toFixed(2)} s`;
  const mib = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  const x = (n: number) => `${n.toFixed(3)}x`;
  const widths = [44, 12, 22, 10];
  const lines = [
    `eStargz conversion: ${(r.image.uncompressedBytes / MiB).toFixed(0)} MiB image, ${r.image.files} files, ` +
      `${r.image.layers} layers; gzip level ${r.settings.gzipLevel}, chunk ${r.settings.chunkSizeBytes / MiB} MiB; ` +
      `median of ${r.runs.hoist.length}`,
    row(['', 'hoist', 'ctr-remote', 'ratio'], widths),
    row(
      ['registry to registry (s)', sec(s.hoist.wallSeconds), sec(s.ctrRemote.wallSeconds), x(s.ratios.wall)],
      widths,
    ),
    row(['  ctr-remote: fetch', '', sec(s.ctrRemote.fetchSeconds), ''], widths),
    row(
      ['  ctr-remote: convert', '', sec(s.ctrRemote.convertSeconds), x(s.ratios.wallVsConvertOnly)],
      widths,
    ),
    row(['  ctr-remote: push', '', sec(s.ctrRemote.pushSeconds), ''], widths),
    row(
      [
        'CPU, user+system (s)',
        sec(s.hoist.cpuSeconds),
        `${sec(s.ctrRemote.convertCpuSeconds)} (convert)`,
        x(s.ratios.cpu),
      ],
      widths,
    ),
    row(
      [
        'peak RSS',
        mib(s.hoist.peakRssBytes),
        `${mib(s.ctrRemote.convertPeakRssBytes)} + ${mib(s.ctrRemote.containerdPeakRssBytes)} ctd`,
        x(s.ratios.peakRss),
      ],
      widths,
    ),
    row(
      [
        'converted layers (bytes)',
        String(s.hoist.layerBytes),
        String(s.ctrRemote.layerBytes),
        x(s.ratios.outputSize),
      ],
      widths,
    ),
    '',
    ...s.targets.map((t) => `${t.met ? 'MET ' : 'MISS'}  ${t.name}: ${t.detail}`),
  ];
  return `${lines.join('\n')}\n`;
}
