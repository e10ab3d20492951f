import type { RuleInfo } from './dockerfile-catalog.js';
import type { Finding, Severity } from './findings.js';

/**
 * SARIF 2.1.0 (OASIS "Static Analysis Results Interchange Format", §3.13 sarifLog, §3.14 run,
 * §3.19 tool, §3.49 reportingDescriptor, §3.27 result, §3.28 location) for code-scanning uploads.
 * Pure.
 */

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

const LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = {
  error: 'error',
  warning: 'warning',
  info: 'note',
};

export interface SarifFile {
  /** Path as it should appear in the report, relative to the repository root where possible. */
  uri: string;
  findings: Finding[];
}

export function toSarif(files: SarifFile[], rules: readonly RuleInfo[], toolVersion: string): object {
  const index = new Map(rules.map((r, i) => [r.id, i]));
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'hoist',
            version: toolVersion,
            rules: rules.map((r) => ({
              id: r.id,
              name: r.id.replace(/(^|-)([a-z])/g, (_, __: string, c: string) => c.toUpperCase()),
              shortDescription: { text: r.title },
              fullDescription: { text: r.help },
              help: { text: r.help },
              defaultConfiguration: { level: LEVEL[r.severity] },
            })),
          },
        },
        columnKind: 'unicodeCodePoints',
        results: files.flatMap((file) =>
          file.findings.map((f) => ({
            ruleId: f.rule,
            ...(index.has(f.rule) ? { ruleIndex: index.get(f.rule) } : {}),
            level: LEVEL[f.severity],
            message: { text: `${f.message}. Fix: ${f.fix}` },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: file.uri },
                  region: { startLine: f.line ?? 1 },
                },
              },
            ],
            properties: { fix: f.fix },
          })),
        ),
      },
    ],
  };
}
