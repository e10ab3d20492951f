// deploy/crds/ is generated from crd.ts: this fails when the files are stale, and rewrites them
// with HOIST_WRITE_CRDS=1. The API server's own verdicts are in test/prepull-crd.test.ts.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { crdFiles, nodePullCrd, prePullCrd } from './crd.js';

const DIR = fileURLToPath(new URL('../../deploy/crds/', import.meta.url));

describe('CRD files', () => {
  it('deploy/crds/ matches crd.ts', async () => {
    for (const [name, text] of Object.entries(crdFiles())) {
      const path = join(DIR, name);
      if (process.env.HOIST_WRITE_CRDS === '1') await writeFile(path, text);
      const onDisk = await readFile(path, 'utf8').catch(() => '');
      assert.equal(
        onDisk,
        text,
        `${path} is stale: run HOIST_WRITE_CRDS=1 node --import tsx --test src/prepull/crd.test.ts`,
      );
    }
  });

  it('has a status subresource and the printer columns of docs/prepull.md', () => {
    const columns = (crd: Record<string, unknown>) => {
      const v = (
        crd.spec as {
          versions: Array<{ subresources: unknown; additionalPrinterColumns: Array<{ name: string }> }>;
        }
      ).versions[0]!;
      assert.deepEqual(v.subresources, { status: {} });
      return v.additionalPrinterColumns.map((c) => c.name);
    };
    assert.deepEqual(columns(prePullCrd()), [
      'Images',
      'Desired',
      'Succeeded',
      'Failed',
      'Ready',
      'Schedule',
      'Last Run',
      'Age',
    ]);
    assert.deepEqual(columns(nodePullCrd()), ['Images', 'Pulling', 'Succeeded', 'Failed', 'Age']);
  });
});
