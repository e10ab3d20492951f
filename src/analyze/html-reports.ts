import { renderPage, type Section } from './html-page.js';
import { formatBytes } from './format-bytes.js';
import type { ImageSetReport } from './image-set.js';
import { cutAtWord, type EventsReport } from './pull-report.js';
import { columnChart, horizontalBarChart } from './svg-charts.js';

/** The HTML reports of `analyze images` and `analyze events`. Pure. */

const seconds = (n: number) => (n >= 100 ? `${n.toFixed(0)} s` : `${n.toFixed(1)} s`);

export function renderImagesHtml(report: ImageSetReport, generatedAt: string): string {
  const sections: Section[] = [
    {
      title: 'Bytes per image: shared with other images versus unique',
      chart: horizontalBarChart(
        'bytes per image',
        report.images.map((img) => ({
          label: img.ref,
          segments: [
            { series: 'shared with other images', value: img.compressedBytes - img.uniqueToImageBytes },
            { series: 'only in this image', value: img.uniqueToImageBytes },
          ],
        })),
        formatBytes,
      ),
    },
    {
      title: 'What a node holding every image downloads',
      chart: horizontalBarChart(
        'shared versus unique bytes',
        [
          { label: 'naive sum of images', segments: [{ series: 'bytes', value: report.naiveBytes }] },
          { label: 'distinct layers', segments: [{ series: 'bytes', value: report.uniqueBytes }] },
        ],
        formatBytes,
      ),
    },
    {
      title: 'Images',
      table: {
        columns: ['image', 'platform', 'layers', 'compressed', 'uncompressed', 'lazy pull'],
        rows: report.images.map((i) => [
          i.ref,
          i.platform,
          i.layers.length,
          formatBytes(i.compressedBytes),
          i.uncompressedBytes === null ? 'unknown' : formatBytes(i.uncompressedBytes),
          i.lazyPull.recommended ? 'yes' : 'no',
        ]),
      },
    },
    {
      title: 'Layers shared by two or more images',
      table: {
        columns: ['layer', 'size', 'images', 'made by'],
        rows: report.sharedLayers.map((l) => [
          l.digest.slice(0, 19),
          formatBytes(l.size),
          l.images.length,
          cutAtWord(l.createdBy ?? '', 80),
        ]),
      },
    },
    {
      title: 'Base groups',
      table: {
        columns: ['images', 'base layers', 'base size', 'base top'],
        rows: report.groups.map((g) => [
          g.images.join(', '),
          g.baseLayers.length,
          formatBytes(g.baseBytes),
          cutAtWord(g.baseName ?? g.baseTop ?? '', 80),
        ]),
      },
    },
  ];
  for (const img of report.images) {
    sections.push({
      title: `Layers of ${img.ref}`,
      table: {
        columns: ['#', 'digest', 'compressed', 'uncompressed', 'shared with', 'made by'],
        rows: img.layers.map((l, i) => [
          i + 1,
          l.digest.slice(0, 19),
          formatBytes(l.size),
          l.uncompressedSize === null ? 'unknown' : formatBytes(l.uncompressedSize),
          l.sharedWith,
          cutAtWord(l.createdBy ?? '', 80),
        ]),
      },
    });
  }
  return renderPage({
    title: 'Hoist image set report',
    subtitle: `${report.images.length} images, generated ${generatedAt}`,
    summary: [
      ['images', String(report.images.length)],
      ['naive sum', formatBytes(report.naiveBytes)],
      ['a node downloads', formatBytes(report.uniqueBytes)],
      ['shared', formatBytes(report.naiveBytes - report.uniqueBytes)],
      ['base groups', String(report.groups.length)],
    ],
    advice: report.advice,
    sections,
  });
}

/** Bins for the pull-time distribution (upper bounds in seconds). */
const BINS: Array<[number, string]> = [
  [1, '<1s'],
  [5, '1-5s'],
  [15, '5-15s'],
  [30, '15-30s'],
  [60, '30-60s'],
  [120, '1-2m'],
  [300, '2-5m'],
  [600, '5-10m'],
  [Infinity, '>10m'],
];

export function renderEventsHtml(report: EventsReport, generatedAt: string): string {
  const counts = BINS.map(([, label]) => ({ label, value: 0 }));
  for (const p of report.pulls) {
    const i = BINS.findIndex(([le]) => p.seconds < le);
    const bin = counts[i < 0 ? counts.length - 1 : i];
    if (bin) bin.value += p.count;
  }
  const sections: Section[] = [
    { title: 'Pull-time distribution', chart: columnChart('pull-time distribution', counts, 'pulls') },
  ];
  if (report.images.length > 0) {
    sections.push({
      title: 'Pull time per image (p50, and up to p90)',
      chart: horizontalBarChart(
        'pull time per image',
        report.images.slice(0, 30).map((i) => ({
          label: i.image,
          segments: [
            { series: 'p50', value: i.seconds.p50 },
            { series: 'p50 to p90', value: i.seconds.p90 - i.seconds.p50 },
          ],
        })),
        seconds,
      ),
      table: {
        columns: ['image', 'pulls', 'nodes', 'p50', 'p90', 'p90 incl. waiting', 'size', 'throughput'],
        rows: report.images.map((i) => [
          i.image,
          i.pulls,
          i.nodes,
          seconds(i.seconds.p50),
          seconds(i.seconds.p90),
          i.secondsIncludingWaiting ? seconds(i.secondsIncludingWaiting.p90) : 'n/a',
          i.bytes === null ? 'n/a' : formatBytes(i.bytes),
          i.bytesPerSecond === null ? 'n/a' : `${formatBytes(i.bytesPerSecond)}/s`,
        ]),
      },
    });
  }
  const failed = Object.entries(report.failuresByCause).filter(([, n]) => n > 0);
  if (failed.length > 0) {
    sections.push({
      title: 'Failed pull attempts by cause',
      chart: horizontalBarChart(
        'failures by cause',
        failed.map(([cause, n]) => ({
          label: cause,
          segments: [{ series: 'failed pull attempts', value: n }],
        })),
        (n) => String(n),
      ),
      table: {
        columns: ['image', 'node', 'cause', 'ErrImagePull', 'back-offs', 'example'],
        rows: report.failures.map((f) => [
          f.image,
          f.node,
          f.cause,
          f.errImagePull,
          f.imagePullBackOff,
          cutAtWord(f.example, 100),
        ]),
      },
    });
  }
  if (report.nodes.length > 0) {
    sections.push({
      title: 'Time spent pulling per node',
      chart: horizontalBarChart(
        'pull time per node',
        report.nodes
          .slice(0, 30)
          .map((n) => ({ label: n.node, segments: [{ series: 'seconds pulling', value: n.totalSeconds }] })),
        seconds,
      ),
    });
  }
  for (const h of report.histograms) {
    const labels = Object.entries(h.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    let prev = 0;
    const bins = h.buckets.map((b) => {
      const value = b.count - prev;
      prev = b.count;
      return { label: b.le === Infinity ? '+Inf' : `≤${b.le}s`, value };
    });
    sections.push({
      title: `kubelet_image_pull_duration_seconds ${labels ? `{${labels}}` : ''} (${h.source})`,
      note: `${h.count} pulls; p50 ${h.p50 === null ? 'n/a' : seconds(h.p50)}, p90 ${h.p90 === null ? 'n/a' : seconds(h.p90)}, p99 ${h.p99 === null ? 'n/a' : seconds(h.p99)}`,
      chart: columnChart(`kubelet histogram ${labels}`, bins, 'pulls'),
    });
  }
  const o = report.overall;
  return renderPage({
    title: 'Hoist pull-time report',
    subtitle: `${o.pulls} pulls from kubelet events, generated ${generatedAt}`,
    summary: [
      ['pulls', String(o.pulls)],
      ['p50 pull time', o.seconds ? seconds(o.seconds.p50) : 'n/a'],
      ['p90 pull time', o.seconds ? seconds(o.seconds.p90) : 'n/a'],
      ['time waiting', o.waitingShare === null ? 'n/a' : `${Math.round(o.waitingShare * 100)}%`],
      ['failures', String(Object.values(report.failuresByCause).reduce((n, v) => n + v, 0))],
    ],
    advice: report.advice,
    sections,
  });
}
