// Printing objects: a YAML stream (one document per object) or one JSON document, a v1 List,
// which `kubectl apply -f` takes as it is.
import { stringify } from 'yaml';
import type { KubeObject } from './meta.js';

export type ObjectFormat = 'yaml' | 'json';

/** `header` lines become YAML comments before the first document (JSON has no comments). */
export function formatObjects(objects: KubeObject[], format: ObjectFormat, header: string[] = []): string {
  if (format === 'json') {
    return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  }
  // lineWidth 0: no folding, so long args and scripts stay on one line as written.
  const comments = header.map((line) => `# ${line}\n`).join('');
  return comments + objects.map((o) => `---\n${stringify(o, { lineWidth: 0, singleQuote: true })}`).join('');
}
