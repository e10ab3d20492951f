import { shortenRef } from './pull-report.js';

/**
 * Inline SVG charts for the HTML reports: no scripts, fonts or images from anywhere else.
 * Every chart is an `<svg class="chart">` with a `<title>` per mark for hover text. Pure.
 */

export const PALETTE = ['#2f6fdf', '#f0a030', '#3aa35b', '#d8453b', '#8a5cd0', '#6b7280'];

export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}

export interface Segment {
  value: number;
  /** Legend name of the series. */
  series: string;
}

export interface Bar {
  label: string;
  segments: Segment[];
}

const FONT = 'font-family="system-ui, sans-serif" font-size="12"';

/** Characters of a bar label that fit left of the bars at 12 px. */
const LABEL_MAX_CHARS = 32;

/**
 * A bar label short enough to fit, cut in the middle: an image reference keeps its `name:tag`
 * (shortenRef), anything else (a node name) its start and end, where names differ. The full label
 * is in each bar's hover title.
 */
function shortLabel(label: string): string {
  const chars = [...label];
  if (chars.length <= LABEL_MAX_CHARS) return label;
  if (label.includes('/')) return shortenRef(label, LABEL_MAX_CHARS);
  // A host name keeps its first label whole (ip-10-0-1-205 of ip-10-0-1-205.eu-west-1.compute...).
  const dot = label.indexOf('.');
  const head = dot > 0 && dot <= LABEL_MAX_CHARS - 8 ? dot : Math.floor((LABEL_MAX_CHARS - 1) / 2);
  const tail = LABEL_MAX_CHARS - 1 - head;
  return `${chars.slice(0, head).join('')}…${chars.slice(chars.length - tail).join('')}`;
}

function seriesColors(bars: Bar[]): Map<string, string> {
  const names = [...new Set(bars.flatMap((b) => b.segments.map((s) => s.series)))];
  return new Map(names.map((n, i) => [n, PALETTE[i % PALETTE.length] ?? '#888']));
}

function legend(colors: Map<string, string>, y: number): string {
  let x = 0;
  let out = '';
  for (const [name, color] of colors) {
    out += `<rect x="${x}" y="${y}" width="12" height="12" fill="${color}"/><text x="${x + 16}" y="${y + 10}" ${FONT}>${escapeXml(name)}</text>`;
    x += 28 + name.length * 7;
  }
  return out;
}

/** Horizontal stacked bars, one row per label. */
export function horizontalBarChart(title: string, bars: Bar[], format: (n: number) => string): string {
  const labelWidth = 220;
  const plotWidth = 460;
  const row = 24;
  const colors = seriesColors(bars);
  const max = Math.max(1e-9, ...bars.map((b) => b.segments.reduce((n, s) => n + s.value, 0)));
  const height = bars.length * row + 40;
  let body = '';
  bars.forEach((bar, i) => {
    const y = i * row;
    body += `<text x="${labelWidth - 6}" y="${y + 16}" text-anchor="end" ${FONT}>${escapeXml(shortLabel(bar.label))}</text>`;
    let x = labelWidth;
    let total = 0;
    for (const seg of bar.segments) {
      const w = (seg.value / max) * plotWidth;
      total += seg.value;
      if (seg.value > 0) {
        body += `<rect x="${x.toFixed(1)}" y="${y + 4}" width="${Math.max(1, w).toFixed(1)}" height="${row - 8}" fill="${colors.get(seg.series)}"><title>${escapeXml(`${bar.label}: ${seg.series} ${format(seg.value)}`)}</title></rect>`;
      }
      x += w;
    }
    body += `<text x="${(x + 6).toFixed(1)}" y="${y + 16}" ${FONT}>${escapeXml(format(total))}</text>`;
  });
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeXml(title)}" viewBox="0 0 ${labelWidth + plotWidth + 90} ${height}" width="100%">${body}${legend(colors, height - 20)}</svg>`;
}

/** Vertical bars over ordered bins (a distribution). */
export function columnChart(
  title: string,
  bins: Array<{ label: string; value: number }>,
  yUnit: string,
): string {
  const width = 640;
  const plotHeight = 180;
  const colWidth = width / Math.max(1, bins.length);
  const max = Math.max(1e-9, ...bins.map((b) => b.value));
  let body = `<line x1="0" y1="${plotHeight}" x2="${width}" y2="${plotHeight}" stroke="#999"/>`;
  bins.forEach((bin, i) => {
    const h = (bin.value / max) * (plotHeight - 20);
    const x = i * colWidth;
    body += `<rect x="${(x + 4).toFixed(1)}" y="${(plotHeight - h).toFixed(1)}" width="${(colWidth - 8).toFixed(1)}" height="${Math.max(bin.value > 0 ? 1 : 0, h).toFixed(1)}" fill="${PALETTE[0]}"><title>${escapeXml(`${bin.label}: ${bin.value} ${yUnit}`)}</title></rect>`;
    body += `<text x="${(x + colWidth / 2).toFixed(1)}" y="${(plotHeight - h - 4).toFixed(1)}" text-anchor="middle" ${FONT}>${bin.value > 0 ? bin.value : ''}</text>`;
    body += `<text x="${(x + colWidth / 2).toFixed(1)}" y="${plotHeight + 16}" text-anchor="middle" ${FONT}>${escapeXml(bin.label)}</text>`;
  });
  return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${escapeXml(title)}" viewBox="0 0 ${width} ${plotHeight + 26}" width="100%">${body}</svg>`;
}
