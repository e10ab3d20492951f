/**
 * Printing as kubectl prints: `kubectl get`'s table layout and its human-readable ages. Pure.
 */
import { formatBytes } from '../analyze/index.js';

/**
 * Rows laid out as `kubectl get` lays them out (k8s.io/cli-runtime printers.GetNewTabWriter: a
 * text/tabwriter with minimum cell width 6, padding 3, blanks): every column but the last is
 * padded to its widest cell plus 3 and to at least 6; everything is left-aligned; the last cell
 * ends the line. Widths count code points.
 */
export function kubectlTable(header: string[], rows: string[][]): string {
  const MIN_WIDTH = 6;
  const PADDING = 3;
  const len = (s: string) => [...s].length;
  const last = header.length - 1;
  const widths = header.map((h, c) =>
    Math.max(MIN_WIDTH, Math.max(len(h), ...rows.map((r) => len(r[c] ?? ''))) + PADDING),
  );
  const line = (cells: string[]) =>
    cells
      .map((v, c) => (c === last ? v : v + ' '.repeat((widths[c] ?? 0) - len(v))))
      .join('')
      .trimEnd();
  return [header, ...rows].map((r) => `${line(r)}\n`).join('');
}

/**
 * A duration as kubectl's AGE column prints it (k8s.io/apimachinery/pkg/util/duration.HumanDuration):
 * whole seconds below 2 minutes, minutes and seconds below 10 minutes, minutes below 3 hours, hours
 * and minutes below 8 hours, hours below 2 days, days and hours below 8 days, days below 2 years,
 * then years and days, then years. Up to 2 s into the future (clock skew) is `0s`.
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) {
    const d = days % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

/** Bytes in IEC units with one decimal past bytes: `512B`, `391.2KiB`, `20.0GiB`. */
export function humanBytes(n: number): string {
  return formatBytes(n, { units: 'iec', separator: '' });
}

/** The age of an RFC 3339 time at `now`, or `<unknown>` as kubectl prints a missing one. */
export function ageOf(time: string | undefined, now: Date): string {
  const t = time === undefined ? NaN : Date.parse(time);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
}

/** A pull's duration in seconds as a reader wants it: `850ms`, `12.3s`, `4m05s`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`;
  if (seconds < 100) return `${seconds.toFixed(1)}s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.trunc(whole / 60)}m${String(whole % 60).padStart(2, '0')}s`;
  return `${Math.trunc(whole / 3600)}h${String(Math.trunc((whole % 3600) / 60)).padStart(2, '0')}m`;
}

/** Seconds between two RFC 3339 times, or undefined when either is missing or unparsable. */
export function secondsBetween(from: string | undefined, to: string | undefined): number | undefined {
  if (from === undefined || to === undefined) return undefined;
  const a = Date.parse(from);
  const b = Date.parse(to);
  if (Number.isNaN(a) || Number.isNaN(b)) return undefined;
  return Math.max(0, (b - a) / 1000);
}

/** JSON numbers to millisecond precision, without binary float noise. */
export function roundSeconds(n: number): number {
  return Math.round(n * 1000) / 1000;
}
