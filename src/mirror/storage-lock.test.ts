import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LOCK_FILE, lockStorage, storageHolder, StorageLockedError } from './storage-lock.js';

describe('storage lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoist-lock-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is held by one mirror at a time and released on close', async () => {
    const release = await lockStorage(dir);
    assert.equal(await storageHolder(dir), process.pid);
    assert.equal((await readFile(join(dir, LOCK_FILE), 'utf8')).trim(), String(process.pid));
    await assert.rejects(lockStorage(dir), (err: unknown) => {
      assert.ok(err instanceof StorageLockedError);
      assert.equal(err.pid, process.pid);
      assert.match(err.message, /in use by a running mirror/);
      return true;
    });
    await release();
    assert.equal(await storageHolder(dir), undefined);
    const again = await lockStorage(dir);
    await again();
  });

  it('takes over a lock whose process is gone (a crash)', async () => {
    // A pid that existed and has exited.
    const dead = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    await writeFile(join(dir, LOCK_FILE), `${dead}\n`);
    assert.equal(await storageHolder(dir), undefined);
    const release = await lockStorage(dir);
    assert.equal(await storageHolder(dir), process.pid);
    await release();
  });
});
