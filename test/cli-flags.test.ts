// One spelling for one thing, through the built CLI (bin/hoist.js over dist/): `--authfile` for a
// Docker config.json wherever one is read (the older `--auth-file` still works, hidden from help),
// `--plain-http REGISTRY` meaning the same in `analyze images` and `convert`, `--build-arg NAME`
// taking its value from the environment as `docker build` does, and help showing each default once.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { writeFile } from 'node:fs/promises';
import { runHoist } from './helpers/cri.js';
import { testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 60_000 };

/** Runs the built hoist with `args` and exactly the environment given (plus PATH and HOME). */
const hoist = (args: string[], env: Record<string, string> = {}) => runHoist(args, { env });

/** The entries of a help text's Options section, each on one line. */
function helpOptions(help: string): string[] {
  const section = help.split(/^Options:$/m)[1]?.split(/^\S/m)[0] ?? '';
  return section
    .split(/\n(?= {2}-)/)
    .map((e) => e.replace(/\s+/g, ' ').trim())
    .filter((e) => e.startsWith('-'));
}

const COMMANDS = [
  'analyze dockerfile',
  'analyze images',
  'analyze events',
  'convert',
  'node configure',
  'node unconfigure',
  'node pull',
  'agent',
  'controller',
  'mirror',
  'mirror gc',
  'doctor containerd-config',
  'doctor kubelet-config',
  'render install',
  'render kubelet-config',
  'render containerd-config',
  'render prepull-daemonset',
];

describe('help', () => {
  it('shows each default once: not in the description and again as "(default: ...)"', TIMEOUT, async () => {
    for (const command of COMMANDS) {
      const res = await hoist([...command.split(' '), '--help']);
      assert.equal(res.code, 0, `${command}: ${res.stderr}`);
      const options = helpOptions(res.stdout);
      assert.ok(options.length > 1, `${command} has options`);
      for (const o of options) {
        // "(default: x)", "(default x)", "; default x", ", default x": one per option at most.
        const n = (o.match(/[(;,]\s*default\b/gi) ?? []).length;
        assert.ok(n <= 1, `${command}: ${o}`);
        // Commander's own "(default: [])" for a repeatable flag says nothing.
        assert.doesNotMatch(o, /\(default: \[\]\)/, `${command}: ${o}`);
      }
    }
  });

  it('spells the credentials file --authfile and hides the older --auth-file', TIMEOUT, async () => {
    for (const command of ['convert', 'node pull', 'agent']) {
      const res = await hoist([...command.split(' '), '--help']);
      const options = helpOptions(res.stdout);
      assert.ok(
        options.some((o) => o.startsWith('--authfile <file>')),
        `${command}: ${options.join('\n')}`,
      );
      assert.doesNotMatch(res.stdout, /--auth-file/, command);
    }
  });
});

describe('--authfile', () => {
  // Each command reads the file before it reaches a registry or the runtime, so a missing file is
  // bad input (exit 2) that names the file, under either spelling.
  const missing = '/nonexistent/hoist-test/config.json';
  const cases: Array<[string, string[]]> = [
    ['convert', ['convert', '--check', 'registry.invalid/app:v1']],
    ['node pull', ['node', 'pull', 'nginx:1.27']],
    ['agent', ['agent']],
  ];
  for (const [name, args] of cases) {
    it(`${name}: --authfile and the older --auth-file read the same file`, TIMEOUT, async () => {
      for (const flag of ['--authfile', '--auth-file']) {
        const res = await hoist([...args, flag, missing]);
        assert.equal(res.code, 2, `${name} ${flag}: ${res.stderr}`);
        assert.ok(res.stderr.includes(`${flag}`), `${name} ${flag}: the error names the flag as given`);
        assert.ok(res.stderr.includes(missing), `${name} ${flag}: the error names the file`);
        assert.doesNotMatch(res.stderr, /unknown option/, `${name} ${flag}`);
      }
      const both = await hoist([...args, '--authfile', missing, '--auth-file', `${missing}.other`]);
      assert.equal(both.code, 2, both.stderr);
      assert.match(both.stderr, /--authfile and --auth-file/);
    });
  }

  it('convert: credentials from --authfile reach the registry', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-authfile-');
    const seen: Array<string | undefined> = [];
    const registry = await startRegistry(t, (req, res) => {
      seen.push(req.headers.authorization);
      // A registry asks for credentials first (distribution-spec: 401 with a challenge).
      if (req.headers.authorization === undefined) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    const file = join(dir, 'config.json');
    const auth = Buffer.from('alice:s3cret').toString('base64');
    await writeFile(file, JSON.stringify({ auths: { [`127.0.0.1:${registry.port}`]: { auth } } }));
    for (const flag of ['--authfile', '--auth-file']) {
      seen.length = 0;
      const res = await hoist(['convert', '--check', flag, file, `127.0.0.1:${registry.port}/app:v1`]);
      assert.notEqual(res.code, 0, 'the image does not exist');
      assert.ok(seen.includes(`Basic ${auth}`), `${flag}: ${JSON.stringify(seen)} ${res.stderr}`);
    }
  });
});

/** A stand-in registry on every interface; `handle` answers each request. */
async function startRegistry(t: TestContext, handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(handle);
  server.listen(0, '0.0.0.0');
  await once(server, 'listening');
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (s) => t.after(() => s.destroy()));
  return { port: (server.address() as AddressInfo).port };
}

/** An IPv4 address of this machine that is not loopback: a registry reached by it is not "local". */
function externalAddress(): string | undefined {
  return Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
}

describe('--plain-http REGISTRY', () => {
  for (const command of [
    ['analyze', 'images'],
    ['convert', '--check'],
  ]) {
    const name = command.join(' ');
    it(`${name}: reaches that registry over http, and only that one`, TIMEOUT, async (t) => {
      const host = externalAddress();
      if (!host) {
        t.skip('no non-loopback IPv4 address on this machine');
        return;
      }
      const paths: string[] = [];
      const registry = await startRegistry(t, (req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
      });
      const reg = `${host}:${registry.port}`;
      const res = await hoist([...command, '--plain-http', reg, `${reg}/team/app:v1`]);
      assert.notEqual(res.code, 0, 'the image does not exist');
      assert.ok(
        paths.some((p) => p.startsWith('/v2/team/app/manifests/v1')),
        `${name}: asked over http for the manifest: ${JSON.stringify(paths)} ${res.stderr}`,
      );
      // Another registry named on the flag leaves this one on https: no plain request arrives.
      paths.length = 0;
      const other = await hoist([...command, '--plain-http', 'registry.invalid:5000', `${reg}/team/app:v1`]);
      assert.notEqual(other.code, 0);
      assert.deepEqual(paths, [], `${name}: https, not http, for a registry not named`);
    });

    it(
      `${name}: a value that is not a registry is refused (exit 2), not taken as the image`,
      TIMEOUT,
      async () => {
        const res = await hoist([
          ...command,
          '--plain-http',
          'registry.local:5000/team/app:v1',
          'x.invalid/a:v1',
        ]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, /--plain-http takes a registry, host\[:port\]/);
      },
    );
  }
});

describe('--build-arg', () => {
  it('NAME alone takes the value from the environment, as docker build does', TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-build-arg-');
    const file = join(dir, 'Dockerfile');
    await writeFile(file, 'ARG BASE_TAG=3.20\nFROM alpine:${BASE_TAG}\nRUN true\n');
    const latest = async (args: string[], env: Record<string, string> = {}) => {
      const res = await hoist(
        ['analyze', 'dockerfile', '--output', 'json', '--skip-context', ...args, file],
        env,
      );
      assert.ok(res.code === 0 || res.code === 1, res.stderr);
      const report = JSON.parse(res.stdout) as { files: Array<{ findings: Array<{ rule: string }> }> };
      return report.files.flatMap((f) => f.findings).some((f) => f.rule === 'base-image-latest');
    };
    assert.equal(await latest([]), false, 'the default 3.20');
    assert.equal(await latest(['--build-arg', 'BASE_TAG=latest']), true, 'NAME=VALUE');
    assert.equal(
      await latest(['--build-arg', 'BASE_TAG'], { BASE_TAG: 'latest' }),
      true,
      'NAME from the environment',
    );
    assert.equal(
      await latest(['--build-arg', 'BASE_TAG']),
      false,
      'unset in the environment: the default stays',
    );
    assert.equal(await latest([], { BASE_TAG: 'latest' }), false, 'the environment alone changes nothing');
    const bad = await hoist(['analyze', 'dockerfile', '--build-arg', '=x', file]);
    assert.equal(bad.code, 2, bad.stderr);
  });
});
