import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { MIRROR_NODE_FLAGS } from '../src/mirror/node-flags.js';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('the mirror node flags', () => {
  it('the image passes exactly these flags to node', async () => {
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const m = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
    assert.ok(m?.[1], 'an exec-form ENTRYPOINT');
    assert.deepEqual(JSON.parse(m[1]), ['/nodejs/bin/node', ...MIRROR_NODE_FLAGS, '/app/bin/hoist.js']);
  });

  it('this node accepts them and they take effect', async () => {
    // A flag V8 does not know makes node exit non-zero; the semi-space limit shows in the new
    // space's capacity (two semi-spaces at most, whatever was allocated).
    const script = [
      "const v8 = require('node:v8');",
      'const a = [];',
      'for (let i = 0; i < 200000; i++) a.push({ i, s: String(i) });',
      "const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');",
      'console.log(JSON.stringify(ns));',
    ].join('\n');
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [
      ...MIRROR_NODE_FLAGS,
      '-e',
      script,
    ]);
    assert.equal(stderr, '');
    const ns = JSON.parse(stdout) as { space_size: number };
    assert.ok(
      ns.space_size <= 2 * 4 * 1024 * 1024,
      `new space ${ns.space_size} bytes, semi-spaces of at most 4 MiB`,
    );
  });
});
