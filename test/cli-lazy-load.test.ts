// What `hoist mirror` loads at start-up (issue 10: an idle mirror's memory is mostly the code it
// loaded). The built binary runs as users run it, with test/helpers/module-log.mjs preloaded to list
// every module it loaded; the assertions are on that list, never on memory figures, which vary from
// machine to machine.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { testTempDir } from './helpers/peers.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin', 'hoist.js');
const REAL_ROOT = `${realpathSync(ROOT)}/`;
const MODULE_LOG = join(ROOT, 'test', 'helpers', 'module-log.mjs');
const TIMEOUT = { timeout: 60_000 };

/**
 * Starts `hoist mirror ARGS`, fetches `paths` once it listens (so that serving code that loads on
 * first use is counted too), stops it with SIGTERM and returns what it loaded: paths relative to
 * the repository, e.g. `dist/mirror/server.js`, `node_modules/pino/pino.js`.
 */
async function modulesLoadedBy(t: TestContext, args: string[], paths: string[]): Promise<Set<string>> {
  const dir = await testTempDir(t, 'hoist-lazy-');
  const log = join(dir, 'modules.log');
  const child = spawn(
    process.execPath,
    [
      '--import',
      MODULE_LOG,
      BIN,
      'mirror',
      '--listen',
      '127.0.0.1:0',
      '--storage',
      join(dir, 'data'),
      // Never contacted: nothing here asks for an image.
      '--upstream',
      'upstream.test=http://127.0.0.1:9',
      '--default-upstream',
      'upstream.test',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOIST_MODULE_LOG: log } },
  );
  t.after(() => void child.kill('SIGKILL'));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then((code) => reject(new Error(`hoist mirror exited ${code}: ${stderr}`)));
  });
  for (const path of paths) {
    const res = await fetch(`${url}${path}`);
    assert.equal(res.status, 200, `GET ${path}`);
    const body = await res.text();
    // The metric classes work when loaded on their own (src/mirror/prom-client-core.ts).
    if (path === '/metrics') assert.match(body, /^# TYPE hoist_mirror_requests_total counter$/m);
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0, stderr);
  const urls = (await readFile(log, 'utf8')).split('\n').filter((l) => l.startsWith('file:'));
  return new Set(urls.map((u) => relativeModulePath(fileURLToPath(u))));
}

/**
 * `path` relative to the repository. Node reports real paths, and a work tree's node_modules may be
 * a link to another checkout's, so a dependency is named from its first node_modules segment on.
 */
function relativeModulePath(path: string): string {
  const i = path.indexOf('/node_modules/');
  if (i >= 0) return path.slice(i + 1);
  return path.startsWith(REAL_ROOT) ? path.slice(REAL_ROOT.length) : path;
}

/** Modules of `loaded` under any of `prefixes`, except those `allowed`. */
function under(loaded: Set<string>, prefixes: string[], allowed: string[] = []): string[] {
  return [...loaded].filter((m) => prefixes.some((p) => m.startsWith(p)) && !allowed.includes(m)).sort();
}

describe('hoist mirror loads only what the mirror uses', () => {
  before(() => {
    assert.ok(existsSync(join(ROOT, 'dist', 'cli', 'main.js')), 'dist/ is built (npm ci runs the build)');
  });

  it(
    'starts and serves without the other commands, their capabilities or heavy libraries it does not use',
    TIMEOUT,
    async (t) => {
      const loaded = await modulesLoadedBy(t, [], ['/v2/', '/metrics', '/healthz', '/readyz']);
      // The log works: it saw the mirror, a CommonJS dependency that require() loaded, and the
      // single prom-client files the mirror's metrics use.
      for (const m of [
        'dist/cli/mirror.js',
        'dist/mirror/server.js',
        'node_modules/sonic-boom/index.js',
        'node_modules/prom-client/lib/registry.js',
        'node_modules/prom-client/lib/histogram.js',
      ]) {
        assert.ok(loaded.has(m), `${m} is loaded (else the module log is broken)`);
      }
      const otherCommands = ['analyze', 'doctor', 'render', 'convert', 'node', 'agent', 'controller'];
      assert.deepEqual(
        under(
          loaded,
          otherCommands.map((c) => `dist/cli/${c}`),
        ),
        [],
        'modules of other commands',
      );
      const otherCapabilities = [
        'agent',
        'analyze',
        'cri',
        'dashboard',
        'doctor',
        'estargz',
        'install',
        'kube',
        'kubectl-plugin',
        'node',
        'prepull',
        'telemetry',
      ];
      assert.deepEqual(
        under(
          loaded,
          otherCapabilities.map((c) => `dist/${c}/`),
        ),
        [],
        'capabilities the mirror does not use',
      );
      // Peer configuration is part of every mirror configuration; the peer network only with peers.
      assert.deepEqual(
        under(
          loaded,
          ['dist/peers/'],
          ['dist/peers/config.js', 'dist/peers/resolve-config.js', 'dist/peers/membership.js'],
        ),
        [],
        'peer-sharing code without peers',
      );
      assert.deepEqual(
        under(loaded, [
          // The HTTP client: loaded at the first upstream request, which nothing here makes.
          'node_modules/undici/',
          // gRPC (the CRI client), the YAML parser (only with --config), cron, TOML, tar.
          'node_modules/@grpc/',
          'node_modules/yaml/',
          'node_modules/croner/',
          'node_modules/smol-toml/',
          'node_modules/tar-stream/',
          // prom-client's index (default metrics, Pushgateway, cluster aggregator, Summary) and what
          // only that loads.
          'node_modules/prom-client/index.js',
          'node_modules/prom-client/lib/defaultMetrics.js',
          'node_modules/prom-client/lib/pushgateway.js',
          'node_modules/prom-client/lib/cluster.js',
          'node_modules/@opentelemetry/',
          'node_modules/tdigest/',
        ]),
        [],
        'libraries the mirror does not use',
      );
    },
  );

  it("with peer sharing, loads the peer network but still not prom-client's index", TIMEOUT, async (t) => {
    const dir = await testTempDir(t, 'hoist-lazy-peers-');
    const token = join(dir, 'token');
    await writeFile(token, 'a-cluster-token-for-this-test\n');
    // Peers that never answer: only what starting with peers loads is looked at.
    const peers = ['--peer', 'http://127.0.0.1:9', '--peer-self', 'http://127.0.0.1:10'];
    const loaded = await modulesLoadedBy(t, [...peers, '--peer-token-file', token], ['/metrics']);
    assert.ok(loaded.has('dist/peers/peer-network.js'), 'the peer network is loaded');
    assert.deepEqual(
      under(loaded, ['node_modules/prom-client/index.js', 'node_modules/@opentelemetry/']),
      [],
      "prom-client's index with peers",
    );
  });

  it(
    'loads the YAML parser when given a configuration file (the log sees modules loaded on demand)',
    TIMEOUT,
    async (t) => {
      const dir = await testTempDir(t, 'hoist-lazy-config-');
      const config = join(dir, 'hoist.yaml');
      await writeFile(config, 'tagTtlSeconds: 10\n');
      const loaded = await modulesLoadedBy(t, ['--config', config], []);
      assert.deepEqual(under(loaded, ['node_modules/yaml/dist/index.js']), [
        'node_modules/yaml/dist/index.js',
      ]);
    },
  );
});
