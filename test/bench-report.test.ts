import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { check, resolveConfig } from 'prettier';
import { resultJson } from '../bench/report.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('benchmark results', () => {
  it('are written as the formatter checks them (they are committed under bench/results/)', async () => {
    const path = join(ROOT, 'bench', 'results', 'example.json');
    const value = {
      commit: 'abc',
      runs: [{ mirror: 'hoist', runsMBps: [1569.9776038412442, 1352.9, 1805.8], ok: true }],
      nested: { empty: [], deep: { list: ['a', 'b'] } },
    };
    const text = await resultJson(path, value);
    const options = { ...((await resolveConfig(path)) ?? {}), filepath: path };
    assert.equal(await check(text, options), true, text);
    assert.deepEqual(JSON.parse(text), value);
    // What JSON.stringify alone writes fails the check: the test can tell the difference.
    assert.equal(await check(`${JSON.stringify(value, null, 2)}\n`, options), false);
  });
});
