import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsPromises from 'node:fs/promises';
import { access, mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncBuiltinESMExports } from 'node:module';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { digestOf, type Digest } from '../oci/index.js';
import { BlobStore } from './blob-store.js';
import { ManifestStore } from './manifest-store.js';
import { lockStorage } from './storage-lock.js';
import { verifyStorage, VerifyError } from './verify.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** A storage written by the mirror's own stores, so the layout is the one verify must read. */
async function makeStorage(root: string) {
  const blobs = new BlobStore(root);
  const manifests = new ManifestStore(root);
  await blobs.init();
  await manifests.init();
  const putBlob = async (data: Buffer, algorithm: Digest['algorithm'] = 'sha256') => {
    const digest = digestOf(data, algorithm);
    const tmp = blobs.tempPath(digest);
    await writeFile(tmp, data);
    await blobs.commit(tmp, digest, data.byteLength);
    return { digest, path: blobs.pathOf(digest) };
  };
  const putManifest = async (body: Buffer) => {
    const digest = digestOf(body);
    await manifests.put(digest, OCI_MANIFEST, body);
    return { digest, path: join(root, 'manifests', 'sha256', digest.hex) };
  };
  return { blobs, manifests, putBlob, putManifest };
}

async function flipByte(path: string, at: number): Promise<void> {
  const data = await readFile(path);
  data[at] = (data[at] ?? 0) ^ 0x01;
  await writeFile(path, data);
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe('verifyStorage', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hoist-verify-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('keeps good blobs and manifests and reports them checked', async () => {
    const s = await makeStorage(root);
    const a = await s.putBlob(randomBytes(3 * 1024 * 1024 + 5));
    const b = await s.putBlob(randomBytes(10));
    const c = await s.putBlob(randomBytes(1000), 'sha512');
    const m = await s.putManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] })));
    const report = await verifyStorage(root);
    assert.equal(report.ok, true);
    assert.deepEqual(report.bad, []);
    assert.deepEqual(report.blobs, { checked: 3, bad: 0, bytes: 3 * 1024 * 1024 + 5 + 10 + 1000 });
    assert.deepEqual(report.manifests, { checked: 1, bad: 0 });
    for (const p of [a.path, b.path, c.path, m.path]) assert.ok(await exists(p), p);
    assert.deepEqual(await s.manifests.get(m.digest), {
      mediaType: OCI_MANIFEST,
      body: Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] })),
    });
  });

  it('finds and removes a flipped byte, a truncated blob and a manifest with wrong bytes', async () => {
    const s = await makeStorage(root);
    const good = await s.putBlob(randomBytes(2 * 1024 * 1024));
    const flipped = await s.putBlob(randomBytes(2 * 1024 * 1024));
    const truncated = await s.putBlob(randomBytes(64 * 1024));
    const goodManifest = await s.putManifest(Buffer.from('{"schemaVersion":2,"n":1}'));
    const badManifest = await s.putManifest(Buffer.from('{"schemaVersion":2,"n":2}'));
    await flipByte(flipped.path, 1024 * 1024 + 3);
    await truncate(truncated.path, 1000);
    // Same length, one changed byte in the manifest body (after the media type line).
    const raw = await readFile(badManifest.path);
    await flipByte(badManifest.path, raw.indexOf(0x0a) + 5);
    // What verify must compute for each: blobs over the whole file, manifests after the first line.
    const actual = new Map<string, string>();
    for (const p of [flipped.path, truncated.path]) actual.set(p, digestOf(await readFile(p)).value);
    const corrupted = await readFile(badManifest.path);
    actual.set(badManifest.path, digestOf(corrupted.subarray(corrupted.indexOf(0x0a) + 1)).value);

    const report = await verifyStorage(root);
    assert.equal(report.ok, false);
    assert.deepEqual(report.blobs, { checked: 3, bad: 2, bytes: 4 * 1024 * 1024 + 1000 });
    assert.deepEqual(report.manifests, { checked: 2, bad: 1 });
    const byPath = new Map(report.bad.map((b) => [b.path, b]));
    assert.equal(byPath.size, 3);
    for (const bad of [flipped, truncated, badManifest]) {
      const entry = byPath.get(bad.path);
      assert.ok(entry, bad.path);
      assert.equal(entry.expected, bad.digest.value);
      assert.equal(entry.actual, actual.get(bad.path));
      assert.notEqual(entry.actual, entry.expected);
      assert.equal(entry.removed, true);
      assert.equal(await exists(bad.path), false, `${bad.path} removed`);
    }
    assert.equal(byPath.get(badManifest.path)?.kind, 'manifest');
    assert.ok(await exists(good.path));
    assert.ok(await exists(goodManifest.path));

    const again = await verifyStorage(root);
    assert.equal(again.ok, true, 'a second run finds nothing');
    assert.deepEqual(again.blobs, { checked: 1, bad: 0, bytes: 2 * 1024 * 1024 });
  });

  it('reports files that cannot be stored content: no media type line, a name that is no digest', async () => {
    const s = await makeStorage(root);
    const good = await s.putBlob(randomBytes(10));
    const noHeader = join(root, 'manifests', 'sha256', digestOf('{}').hex);
    await writeFile(noHeader, '{}');
    const notDigest = join(root, 'blobs', 'sha256', 'not-a-digest');
    await writeFile(notDigest, 'x');
    const dir = join(root, 'blobs', 'sha256', digestOf('d').hex);
    await mkdir(dir);
    const report = await verifyStorage(root);
    assert.deepEqual(
      new Map(report.bad.map((b) => [b.path, b.error])),
      new Map([
        [dir, 'not a regular file'],
        [notDigest, 'name is not a sha256 digest'],
        [noHeader, 'no media type line'],
      ]),
    );
    assert.equal(report.bad.find((b) => b.path === notDigest)?.expected, 'not-a-digest');
    for (const p of [noHeader, notDigest, dir]) assert.equal(await exists(p), false);
    assert.deepEqual(await readdir(join(root, 'blobs', 'sha256')), [good.digest.hex]);
  });

  it('removes leftover temp files and reports them', async () => {
    const s = await makeStorage(root);
    const kept = await s.putBlob(randomBytes(100));
    const partial = join(s.blobs.tmpDir, 'abcdef0123456789.aaaaaa');
    await writeFile(partial, randomBytes(5000));
    await writeFile(join(s.blobs.tmpDir, 'm.0011'), 'x');
    const report = await verifyStorage(root);
    assert.equal(report.ok, true, 'temp files are crash leftovers, not bad entries');
    assert.deepEqual(report.tempFiles, [
      { path: partial, bytes: 5000, removed: true },
      { path: join(s.blobs.tmpDir, 'm.0011'), bytes: 1, removed: true },
    ]);
    assert.deepEqual(await readdir(s.blobs.tmpDir), []);
    assert.ok(await exists(kept.path));
  });

  it('removes nothing with dryRun, and reports the same', async () => {
    const s = await makeStorage(root);
    const flipped = await s.putBlob(randomBytes(4096));
    await flipByte(flipped.path, 0);
    const temp = join(s.blobs.tmpDir, 'leftover');
    await writeFile(temp, 'partial');
    const report = await verifyStorage(root, { dryRun: true });
    assert.equal(report.dryRun, true);
    assert.equal(report.ok, false);
    assert.equal(report.bad.length, 1);
    assert.equal(report.bad[0]?.removed, false);
    assert.deepEqual(report.tempFiles, [{ path: temp, bytes: 7, removed: false }]);
    assert.ok(await exists(flipped.path));
    assert.ok(await exists(temp));
  });

  it('produces a JSON document of a fixed shape', async () => {
    const s = await makeStorage(root);
    const flipped = await s.putBlob(Buffer.from('hello'));
    await writeFile(flipped.path, 'hellO');
    const report = JSON.parse(JSON.stringify(await verifyStorage(root))) as unknown;
    assert.deepEqual(report, {
      storage: root,
      dryRun: false,
      blobs: { checked: 1, bad: 1, bytes: 5 },
      manifests: { checked: 0, bad: 0 },
      bad: [
        {
          kind: 'blob',
          path: flipped.path,
          expected: digestOf('hello').value,
          actual: digestOf('hellO').value,
          removed: true,
        },
      ],
      tempFiles: [],
      ok: false,
    });
  });

  it('refuses a missing storage or a directory that is not a mirror storage', async () => {
    await assert.rejects(verifyStorage(join(root, 'missing')), (e: unknown) => {
      return e instanceof VerifyError && e.code === 'STORAGE_NOT_FOUND' && /does not exist/.test(e.message);
    });
    await mkdir(join(root, 'tmp'));
    await writeFile(join(root, 'tmp', 'precious'), 'keep me');
    await assert.rejects(verifyStorage(root), (e: unknown) => {
      return e instanceof VerifyError && e.code === 'STORAGE_INVALID';
    });
    assert.ok(await exists(join(root, 'tmp', 'precious')), 'nothing is removed from a foreign directory');
  });
});

describe('verifyStorage: edges of the layout', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hoist-verify-edges-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  /** Writes a stored manifest by hand: `header` as the first line, then `body`. */
  async function rawManifest(header: string, body: Buffer, algorithm: Digest['algorithm'] = 'sha256') {
    const digest = digestOf(body, algorithm);
    const path = join(root, 'manifests', algorithm, digest.hex);
    await mkdir(join(root, 'manifests', algorithm), { recursive: true });
    await writeFile(path, Buffer.concat([Buffer.from(`${header}\n`), body]));
    return path;
  }

  it('takes a media type line of up to 1024 bytes, and a manifest read in several chunks', async () => {
    await makeStorage(root);
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, pad: 'x'.repeat(3 * 1024 * 1024) }));
    const paths = [
      await rawManifest('m'.repeat(1024), Buffer.from('{"n":1}')),
      await rawManifest(OCI_MANIFEST, body),
      await rawManifest(OCI_MANIFEST, Buffer.from('{"n":2}'), 'sha512'),
    ];
    const report = await verifyStorage(root);
    assert.deepEqual(report.bad, []);
    assert.deepEqual(report.manifests, { checked: 3, bad: 0 });
    for (const p of paths) assert.ok(await exists(p), p);
  });

  it('refuses an empty or over-long media type line, even one longer than a read chunk', async () => {
    await makeStorage(root);
    const paths = [
      await rawManifest('', Buffer.from('{"n":1}')),
      await rawManifest('m'.repeat(1025), Buffer.from('{"n":2}')),
      await rawManifest('m'.repeat(2 * 1024 * 1024 + 10), Buffer.from('{"n":3}')),
    ];
    const report = await verifyStorage(root);
    assert.deepEqual(
      report.bad.map((b) => [b.path, b.error, b.actual]),
      paths.sort().map((p) => [p, 'no media type line', undefined]),
    );
    assert.deepEqual(report.manifests, { checked: 3, bad: 3 });
  });

  it('reports bad entries and temp files in path order, a temp directory as 0 bytes', async () => {
    const s = await makeStorage(root);
    const names = ['f', '0', 'a', '9'].map((c) => c.repeat(64));
    for (const n of names) await writeFile(join(root, 'blobs', 'sha256', n), 'not its content');
    for (const n of ['zz', 'aa', 'mm']) await writeFile(join(s.blobs.tmpDir, n), 'x');
    await mkdir(join(s.blobs.tmpDir, 'dir'));
    await writeFile(join(s.blobs.tmpDir, 'dir', 'inside'), 'xyz');
    const report = await verifyStorage(root, { concurrency: 3 });
    assert.deepEqual(
      report.bad.map((b) => b.path),
      names.map((n) => join(root, 'blobs', 'sha256', n)).sort(),
    );
    assert.deepEqual(
      report.tempFiles.map((t) => [t.path.slice(s.blobs.tmpDir.length + 1), t.bytes]),
      [
        ['aa', 1],
        ['dir', 0],
        ['mm', 1],
        ['zz', 1],
      ],
    );
    assert.deepEqual(await readdir(s.blobs.tmpDir), []);
    assert.equal(report.blobs.bytes, 4 * 'not its content'.length, 'bad blobs count their bytes too');
  });

  it('checks everything one at a time when asked for no concurrency', async () => {
    const s = await makeStorage(root);
    await s.putBlob(randomBytes(10));
    await s.putBlob(randomBytes(20));
    const report = await verifyStorage(root, { concurrency: 0 });
    assert.deepEqual(report.blobs, { checked: 2, bad: 0, bytes: 30 });
  });

  it('stops at an abort and removes nothing', async () => {
    const s = await makeStorage(root);
    const blob = await s.putBlob(randomBytes(1000));
    await flipByte(blob.path, 3);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(verifyStorage(root, { signal: ac.signal }), { name: 'AbortError' });
    assert.ok(await exists(blob.path));
  });

  it('refuses a storage path that is a file, or one a running mirror holds', async () => {
    const file = join(root, 'file');
    await writeFile(file, 'x');
    await assert.rejects(verifyStorage(file), (e: unknown) => {
      return e instanceof VerifyError && e.code === 'STORAGE_INVALID' && /is not a directory/.test(e.message);
    });
    await makeStorage(root);
    const release = await lockStorage(root);
    try {
      await assert.rejects(verifyStorage(root), (e: unknown) => {
        return (
          e instanceof VerifyError && e.code === 'STORAGE_IN_USE' && e.message.includes(`pid ${process.pid}`)
        );
      });
    } finally {
      await release();
    }
    assert.equal((await verifyStorage(root)).ok, true);
  });
});

describe('verifyStorage: faults while reading', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hoist-verify-faults-'));
  });
  afterEach(async () => {
    mock.restoreAll();
    syncBuiltinESMExports();
    await rm(root, { recursive: true, force: true });
  });

  /** Makes `lstat` of these paths fail as if they had just been removed (the disk, not verify, is at fault). */
  function vanishing(paths: string[]): void {
    const lstat = fsPromises.lstat;
    mock.method(fsPromises, 'lstat', (p: string) =>
      paths.includes(p)
        ? Promise.reject(
            Object.assign(new Error(`ENOENT: no such file or directory, lstat '${p}'`), { code: 'ENOENT' }),
          )
        : lstat(p),
    );
    syncBuiltinESMExports();
  }

  /** Makes reading `path` fail with EIO once it is open. */
  function unreadable(path: string): void {
    const createReadStream = fs.createReadStream;
    mock.method(fs, 'createReadStream', (p: string, options: object) => {
      const stream = createReadStream(p, options);
      if (p === path) {
        stream.once('open', () =>
          stream.destroy(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' })),
        );
      }
      return stream;
    });
    syncBuiltinESMExports();
  }

  it('reports a stored file it cannot read, and removes it', async () => {
    const s = await makeStorage(root);
    const good = await s.putBlob(randomBytes(100));
    const bad = await s.putBlob(randomBytes(100));
    unreadable(bad.path);
    const report = await verifyStorage(root);
    assert.deepEqual(report.bad, [
      {
        kind: 'blob',
        path: bad.path,
        expected: bad.digest.value,
        error: 'EIO: i/o error, read',
        removed: true,
      },
    ]);
    assert.ok(await exists(good.path));
  });

  it('reports a stored file that vanished while listed, and skips such a temp file', async () => {
    const s = await makeStorage(root);
    const gone = await s.putBlob(randomBytes(100));
    const temp = join(s.blobs.tmpDir, 'vanishing');
    await writeFile(temp, 'x');
    vanishing([gone.path, temp]);
    const report = await verifyStorage(root);
    assert.deepEqual(report.bad, [
      {
        kind: 'blob',
        path: gone.path,
        expected: gone.digest.value,
        error: `ENOENT: no such file or directory, lstat '${gone.path}'`,
        removed: true,
      },
    ]);
    assert.deepEqual(report.tempFiles, []);
  });
});

describe('verifyStorage: report entries and errors', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hoist-verify-report-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('carries actual or error, never both, never a key without a value', async () => {
    const s = await makeStorage(root);
    const flipped = await s.putBlob(Buffer.from('hello'));
    await writeFile(flipped.path, 'hellO');
    const notDigest = join(root, 'blobs', 'sha256', 'nope');
    await writeFile(notDigest, 'x');
    const report = await verifyStorage(root, { dryRun: true });
    assert.deepEqual(
      report.bad,
      [
        {
          kind: 'blob',
          path: flipped.path,
          expected: flipped.digest.value,
          actual: digestOf('hellO').value,
          removed: false,
        },
        {
          kind: 'blob',
          path: notDigest,
          expected: 'nope',
          error: 'name is not a sha256 digest',
          removed: false,
        },
      ].sort((a, b) => (a.path < b.path ? -1 : 1)),
    );
  });

  it('names its errors, with the cause when there is one', async () => {
    const missing = join(root, 'missing');
    await assert.rejects(verifyStorage(missing), (e: unknown) => {
      assert.ok(e instanceof VerifyError);
      assert.equal(e.name, 'VerifyError');
      assert.equal(e.message, `storage directory ${missing} does not exist; pass --storage`);
      assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
    await assert.rejects(verifyStorage(root), {
      code: 'STORAGE_INVALID',
      message: `${root} is not a hoist mirror storage (no blobs/ directory); pass the mirror's --storage`,
    });
  });

  it('takes a storage with blobs/ only, and fails on a layout directory that is a file', async () => {
    await mkdir(join(root, 'blobs'));
    assert.deepEqual(await verifyStorage(root), {
      storage: root,
      dryRun: false,
      blobs: { checked: 0, bad: 0, bytes: 0 },
      manifests: { checked: 0, bad: 0 },
      bad: [],
      tempFiles: [],
      ok: true,
    });
    await writeFile(join(root, 'blobs', 'sha512'), 'not a directory');
    await assert.rejects(verifyStorage(root), { code: 'ENOTDIR' });
  });

  it('stops at an abort while hashing a manifest', async () => {
    const s = await makeStorage(root);
    await s.putManifest(Buffer.from('{"schemaVersion":2}'));
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(verifyStorage(root, { signal: ac.signal }), { name: 'AbortError' });
  });
});
