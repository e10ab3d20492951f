import { AnalyzeError } from '../analyze/index.js';
import { isSeverity, type Finding, type Severity } from '../analyze/index.js';
import { UsageError } from './usage-error.js';

// Parsing and printing shared by the analyze, doctor and render commands.

export const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--fail-on` value, or undefined for `none`. */
export function parseFailOn(value: string): Severity | undefined {
  if (value === 'none') return undefined;
  if (!isSeverity(value)) throw new UsageError(`--fail-on "${value}": use error, warning, info or none`);
  return value;
}

/** Turns input errors into exit 2 (UsageError); anything else stays a failure (exit 1). */
export async function inputErrorsAsUsage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof AnalyzeError && err.code !== 'IMAGE_CORRUPT')
      throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

export function parseKeyValues(values: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} "${v}": expected NAME=VALUE`);
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

/** Findings as a terminal reads them: file, then one block per finding. */
export function formatFindings(title: string, findings: Finding[]): string {
  if (findings.length === 0) return `${title}: no findings\n`;
  let s = `${title}\n`;
  for (const f of findings) {
    const where = f.line !== undefined ? `${String(f.line).padStart(4)}  ` : '  ';
    s += `${where}${f.severity.padEnd(7)} ${f.rule}: ${f.message}\n`;
    s += `${' '.repeat(where.length)}        fix: ${f.fix}\n`;
  }
  return s;
}

/** A file that could not be analyzed, printed where its findings would be. */
export function formatFileError(title: string, message: string): string {
  return `${title}\n  ${'error'.padEnd(7)} could not be analyzed: ${message}\n`;
}

export function summary(findings: Finding[]): string {
  const count = (s: Severity) => findings.filter((f) => f.severity === s).length;
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}: ${count('error')} error, ${count('warning')} warning, ${count('info')} info\n`;
}
