import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { syncDir } from './sync-dir.js';

describe('syncDir', () => {
  let dir = '';
  after(() => rm(dir, { recursive: true, force: true }));

  it('syncs a directory, and fails on one that is not there instead of passing silently', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoist-sync-dir-'));
    await writeFile(join(dir, 'a'), 'x');
    await syncDir(dir);
    await assert.rejects(syncDir(join(dir, 'missing')), { code: 'ENOENT' });
  });
});
