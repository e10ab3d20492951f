// `hoist mirror verify` as users run it (the built binary): listed under `hoist mirror --help`,
// storage from --storage or the mirror's --config, text and JSON output, exit codes 0/1/2. The
// checks themselves are unit-tested in src/mirror/verify.test.ts; the crash test runs it on a
// storage a killed mirror left behind.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import { runHoist } from './helpers/cri.js';
import { testTempDir } from './helpers/peers.js';

const BIN = fileURLToPath(new URL('../bin/hoist.js', import.meta.url));
const TIMEOUT = { timeout: 60_000 };

const hoist = (args: string[]) => runHoist(args);

const hex = (data: string) => createHash('sha256').update(data).digest('hex');

/** A storage with one good blob, one bad blob and one temp file, laid out as the mirror does. */
async function storageWithOneBadBlob(t: TestContext) {
  const dir = await testTempDir(t, 'hoist-verify-cli-');
  const storage = join(dir, 'data');
  await mkdir(join(storage, 'blobs', 'sha256'), { recursive: true });
  await mkdir(join(storage, 'manifests', 'sha256'), { recursive: true });
  await mkdir(join(storage, 'tmp'), { recursive: true });
  const good = join(storage, 'blobs', 'sha256', hex('good'));
  const bad = join(storage, 'blobs', 'sha256', hex('bad'));
  await writeFile(good, 'good');
  await writeFile(bad, 'BAD');
  await writeFile(join(storage, 'tmp', 'partial'), 'par');
  return { dir, storage, good, bad };
}

describe('hoist mirror verify', () => {
  it('is listed by hoist mirror --help, and `hoist mirror` keeps its own flags', TIMEOUT, async () => {
    assert.ok(existsSync(join(BIN, '..', '..', 'dist', 'cli', 'main.js')), 'dist/ is built (npm run build)');
    const help = await hoist(['mirror', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^\s+verify \[options\]/m);
    assert.match(help.stdout, /--listen/);
    const own = await hoist(['mirror', 'verify', '--help']);
    assert.equal(own.code, 0);
    for (const flag of ['--storage', '--config', '--dry-run', '--output'])
      assert.ok(own.stdout.includes(flag));
    // A mistyped subcommand is not taken for the mirror's arguments.
    const typo = await hoist(['mirror', 'verfy']);
    assert.equal(typo.code, 2);
  });

  it('reports in text, removes the bad blob and the temp file, exits 1', TIMEOUT, async (t) => {
    const s = await storageWithOneBadBlob(t);
    const r = await hoist(['mirror', 'verify', '--storage', s.storage]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^checked 2 blobs .* and 0 manifests in /m);
    assert.ok(
      r.stdout.includes(
        `bad blob ${s.bad}: expected sha256:${hex('bad')}, content is sha256:${hex('BAD')} (removed)`,
      ),
    );
    assert.ok(
      r.stdout.includes(`leftover temp file ${join(s.storage, 'tmp', 'partial')}, 3 bytes (removed)`),
    );
    assert.match(r.stdout, /^1 bad entries removed$/m);
    assert.deepEqual(await readdir(join(s.storage, 'blobs', 'sha256')), [hex('good')]);
    assert.deepEqual(await readdir(join(s.storage, 'tmp')), []);
    const again = await hoist(['mirror', 'verify', '--storage', s.storage]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^no bad entries$/m);
  });

  it('leaves everything in place with --dry-run, and prints one JSON document', TIMEOUT, async (t) => {
    const s = await storageWithOneBadBlob(t);
    const r = await hoist(['mirror', 'verify', '--storage', s.storage, '--dry-run', '--output', 'json']);
    assert.equal(r.code, 1, r.stderr);
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(report).sort(), [
      'bad',
      'blobs',
      'dryRun',
      'manifests',
      'ok',
      'storage',
      'tempFiles',
    ]);
    assert.equal(report.dryRun, true);
    assert.equal(report.ok, false);
    assert.deepEqual(report.bad, [
      {
        kind: 'blob',
        path: s.bad,
        expected: `sha256:${hex('bad')}`,
        actual: `sha256:${hex('BAD')}`,
        removed: false,
      },
    ]);
    assert.ok(existsSync(s.bad));
    assert.ok(existsSync(join(s.storage, 'tmp', 'partial')));
  });

  it(
    'takes the storage from the mirror config file, or from `hoist mirror --storage`',
    TIMEOUT,
    async (t) => {
      const s = await storageWithOneBadBlob(t);
      const config = join(s.dir, 'hoist.yaml');
      await writeFile(config, `storage: ${s.storage}\n`);
      const fromConfig = await hoist([
        'mirror',
        'verify',
        '--config',
        config,
        '--dry-run',
        '--output',
        'json',
      ]);
      assert.equal(fromConfig.code, 1, fromConfig.stderr);
      assert.equal((JSON.parse(fromConfig.stdout) as { storage: string }).storage, s.storage);
      const before = await hoist(['mirror', '--storage', s.storage, 'verify', '--output', 'json']);
      assert.equal(before.code, 1, before.stderr);
      assert.equal((JSON.parse(before.stdout) as { storage: string }).storage, s.storage);
      assert.equal(existsSync(s.bad), false);
    },
  );

  it('exits 2 with one line on bad usage, removing nothing', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-verify-cli-');
    await mkdir(join(dir, 'tmp'));
    await writeFile(join(dir, 'tmp', 'precious'), 'x');
    const badConfig = join(dir, 'bad.yaml');
    await writeFile(badConfig, 'storage: 5\n');
    const cases: Array<[string[], RegExp]> = [
      [['--storage', join(dir, 'missing')], /storage directory .*missing does not exist; pass --storage/],
      [['--storage', dir], /is not a hoist mirror storage \(no blobs\/ directory\)/],
      [['--storage', join(dir, 'tmp', 'precious')], /is not a directory/],
      [['--storage', dir, '--output', 'yaml'], /--output must be text or json, not "yaml"/],
      [['--config', badConfig], /config file .*bad\.yaml: storage:/],
      [['--config', join(dir, 'none.yaml')], /cannot read config file/],
      [['--no-such-flag'], /unknown option/],
    ];
    for (const [args, message] of cases) {
      const r = await hoist(['mirror', 'verify', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
    assert.ok(existsSync(join(dir, 'tmp', 'precious')));
  });
});
