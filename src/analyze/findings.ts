/** A finding of `analyze dockerfile` or `doctor`: what is wrong, how bad, and what to change. */
export type Severity = 'error' | 'warning' | 'info';

export const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

export interface Finding {
  rule: string;
  severity: Severity;
  /** 1-based line where the offending instruction starts (Dockerfiles only). */
  line?: number;
  /** One line: what is wrong and why it costs pull time. */
  message: string;
  /** One line: what to change. */
  fix: string;
}

const RANK: Record<Severity, number> = { error: 3, warning: 2, info: 1 };

export function isSeverity(value: string): value is Severity {
  return value === 'error' || value === 'warning' || value === 'info';
}

/** True when some finding is at `threshold` or more severe (for `--fail-on`). */
export function hasFindingAtOrAbove(findings: Iterable<Finding>, threshold: Severity): boolean {
  for (const f of findings) if (RANK[f.severity] >= RANK[threshold]) return true;
  return false;
}

/** By line, then most severe first, then by rule: a stable order for output and tests. */
export function sortFindings<T extends Finding>(findings: T[]): T[] {
  return [...findings].sort(
    (a, b) =>
      (a.line ?? 0) - (b.line ?? 0) || RANK[b.severity] - RANK[a.severity] || a.rule.localeCompare(b.rule),
  );
}
