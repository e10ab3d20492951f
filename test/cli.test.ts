// The `hoist` binary as users run it (after `npm ci`, which builds dist/): flags, exit codes,
// the "listening on" line, health endpoints and shutdown on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, describe, it } from 'node:test';
import { runHoist } from './helpers/cri.js';
import { testTempDir } from './helpers/peers.js';

const BIN = fileURLToPath(new URL('../bin/hoist.js', import.meta.url));
const TIMEOUT = { timeout: 60_000 };

const hoist = (args: string[], opts: { cwd?: string } = {}) => runHoist(args, opts);

/** Starts `hoist mirror`, resolves with its URL once it printed the listening line. */
function startCli(args: string[], cwd?: string) {
  const child = spawn(process.execPath, [BIN, 'mirror', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    void exited.then((code) => reject(new Error(`hoist mirror exited ${code}: ${stderr}`)));
  });
  return { child, url, exited, stdout: () => stdout, stderr: () => stderr };
}

describe('hoist command line', () => {
  before(() => {
    assert.ok(
      existsSync(join(BIN, '..', '..', 'dist', 'cli', 'main.js')),
      'dist/ is built (npm ci runs the build)',
    );
  });

  it('prints help and exits 0', TIMEOUT, async () => {
    const top = await hoist(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /mirror/);
    const mirror = await hoist(['mirror', '--help']);
    assert.equal(mirror.code, 0);
    for (const flag of ['--listen', '--storage', '--upstream', '--default-upstream', '--config']) {
      assert.ok(mirror.stdout.includes(flag), flag);
    }
  });

  it('exits 2 with one line saying what was wrong', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-cli-');
    const badKey = join(dir, 'bad.yaml');
    await writeFile(badKey, 'upstreams:\n  ghcr.io:\n    url: not-a-url\n');
    const badYaml = join(dir, 'broken.yaml');
    await writeFile(badYaml, 'listen: [\n');
    const cases: Array<[string[], RegExp]> = [
      [['mirror', '--listen', 'nowhere'], /--listen "nowhere" must be HOST:PORT/],
      [['mirror', '--upstream', 'nourl'], /--upstream "nourl" must be NAME=URL/],
      [['mirror', '--default-upstream', 'x.io'], /default upstream "x.io" is not a configured upstream/],
      [['mirror', '--config', badKey], /upstreams\.ghcr\.io\.url/],
      [['mirror', '--config', badYaml], /not valid YAML/],
      [['mirror', '--config', join(dir, 'missing.yaml')], /cannot read config file/],
      [['mirror', '--no-such-flag'], /unknown option/],
      [['no-such-command'], /unknown command/],
    ];
    for (const [args, message] of cases) {
      const r = await hoist(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    }
  });

  it('serves, reports health and metrics, and stops on SIGTERM', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-cli-');
    const config = join(dir, 'hoist.yaml');
    await writeFile(config, 'tagTtlSeconds: 10\nupstreams:\n  upstream.test:\n    url: http://127.0.0.1:9\n');
    const cli = startCli(['--listen', '127.0.0.1:0', '--storage', join(dir, 'data'), '--config', config]);
    t.after(() => cli.child.kill('SIGKILL'));
    const url = await cli.url;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    const metrics = await fetch(`${url}/metrics`);
    assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(await metrics.text(), /hoist_mirror_requests_total/);
    const unknown = await fetch(`${url}/v2/a/manifests/v1?ns=docker.io`);
    assert.equal(unknown.status, 404, 'docker.io is not configured when the file names upstreams');
    assert.ok(existsSync(join(dir, 'data', 'blobs')));
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
    // JSON logs on stderr, one object per line.
    const lines = cli.stderr().trim().split('\n');
    assert.ok(lines.every((l) => typeof JSON.parse(l) === 'object'));
    assert.ok(lines.some((l) => JSON.parse(l).msg === 'request'));
  });

  it('runs one mirror per storage, and verify waits for it to stop', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-cli-');
    const storage = join(dir, 'data');
    const first = startCli(['--listen', '127.0.0.1:0', '--storage', storage]);
    t.after(() => first.child.kill('SIGKILL'));
    await first.url;
    const second = await hoist(['mirror', '--listen', '127.0.0.1:0', '--storage', storage]);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /is in use by a running mirror \(pid \d+\)/);
    const verify = await hoist(['mirror', 'verify', '--storage', storage]);
    assert.equal(verify.code, 2);
    assert.match(verify.stderr, /in use by a running mirror/);
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    assert.equal((await hoist(['mirror', 'verify', '--storage', storage])).code, 0);
  });

  it('mirrors the public registries with no flags, and refuses an address in use', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-cli-');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    t.after(() => busy.close());
    const port = (busy.address() as { port: number }).port;
    const taken = await hoist(['mirror', '--listen', `127.0.0.1:${port}`], { cwd: dir });
    assert.equal(taken.code, 2);
    assert.match(taken.stderr, /EADDRINUSE/);

    const cli = startCli(['--listen', '127.0.0.1:0'], dir);
    t.after(() => cli.child.kill('SIGKILL'));
    const url = await cli.url;
    // Routing only (nothing is fetched): a configured public registry is accepted, others are not.
    assert.equal((await fetch(`${url}/v2/a/manifests/v1?ns=unknown.example`)).status, 404);
    assert.equal((await fetch(`${url}/v2/a/manifests/v1?ns=quay.io`, { method: 'DELETE' })).status, 405);
    assert.ok(existsSync(join(dir, 'hoist-data', 'blobs')), 'default storage is ./hoist-data');
    cli.child.kill('SIGTERM');
    assert.equal(await cli.exited, 0);
  });
});
