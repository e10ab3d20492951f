/**
 * Byte counts for people to read, in every report and progress line Hoist prints. One function,
 * since the outputs differ only on purpose:
 * - `si` (default): powers of 1000, `B KB MB GB TB`, as registries, `docker images` and image
 *   reports state sizes (`12.0 MB`);
 * - `iec`: powers of 1024, `B KiB MiB GiB TiB PiB`, as kubectl and transfer progress state them;
 * - `wholeFrom100`: three significant figures (`99.9 KB`, `100 KB`), as Dockerfile findings print
 *   file sizes in a sentence;
 * - `separator`: between number and unit, `' '` by default, `''` for kubectl's `391.2KiB`.
 * Bytes themselves are printed whole (`999 B`), anything larger with one decimal.
 */
export interface BytesFormat {
  units?: 'si' | 'iec';
  wholeFrom100?: boolean;
  separator?: string;
}

const UNITS = {
  si: { base: 1000, names: ['B', 'KB', 'MB', 'GB', 'TB'] },
  iec: { base: 1024, names: ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] },
} as const;

export function formatBytes(n: number, format: BytesFormat = {}): string {
  const { base, names } = UNITS[format.units ?? 'si'];
  let v = n;
  let u = 0;
  while (v >= base && u < names.length - 1) {
    v /= base;
    u++;
  }
  const number = u === 0 ? String(v) : format.wholeFrom100 && v >= 100 ? String(Math.round(v)) : v.toFixed(1);
  return `${number}${format.separator ?? ' '}${names[u]}`;
}
