// `hoist node configure|unconfigure` against real containerds and the config files they start
// with: Debian's 1.6 with a version 2 file (without config_path, and with a ':' list that 1.6
// reads, so configure leaves it alone), and the 2.x built from Go modules with a version 3
// file whose config_path is a ':' list (the transfer service then ignores every hosts.toml,
// containerd#12415) and with a version 2 file (2.x migrates it at start, so configure keeps
// version 2 and sets the old table's config_path, which the migration carries over).
// Each case: configure, restart containerd, pull over CRI, and the upstream registry sees only the
// mirror (its user-agent) for that image; unconfigure puts back every byte of every file touched.
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parse } from 'smol-toml';
import { runHoist } from './helpers/cri.js';
import type { ContainerdOptions } from './helpers/containerd.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage, type BuiltImage } from './helpers/images.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry, type AccessLogEntry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 300_000 };

/** Every file and folder under `dir` (bytes and mode), plus containerd's config.toml. */
async function snapshot(dir: string, config: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      const mode = ((await stat(path)).mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        out.set(`${relative(dir, path)}/`, mode);
        await walk(path);
      } else out.set(relative(dir, path), `${mode}:${(await readFile(path)).toString('base64')}`);
    }
  };
  await walk(dir);
  const st = await stat(config);
  out.set('config.toml', `${(st.mode & 0o7777).toString(8)}:${(await readFile(config)).toString('base64')}`);
  return out;
}

const forImage = (name: string) => (e: AccessLogEntry) => e.path.startsWith(`/v2/team/${name}/`);

async function image(work: string, name: string, registry: RegistryPeer): Promise<BuiltImage> {
  const built = await buildImage(join(work, name), {
    tag: 'v1',
    layers: [{ files: [{ path: `${name}.bin`, size: 200_000, seed: `ctd2-${name}` }] }],
  });
  await pushImage(built.dir, 'v1', `${registry.host}/team/${name}:v1`);
  // The push's own log lines are in before anything later is read from the log.
  await registry.waitForAccess(
    (e) => e.method === 'PUT' && forImage(name)(e) && e.path.includes('/manifests/'),
  );
  return built;
}

interface Case {
  name: string;
  flavor: '1.6' | '2.x';
  containerd: ContainerdOptions;
  /** The config table configure must set config_path in. */
  table: string[];
  /** Also show that the starting config really makes containerd skip the mirror. */
  trap?: boolean;
  /** The config already works (1.x reads a ':' list): configure leaves it alone. */
  keep?: boolean;
}

const V2 = ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
const V3 = ['plugins', 'io.containerd.cri.v1.images', 'registry'];

const cases: Case[] = [
  {
    name: 'containerd 1.6, version 2 config without config_path',
    flavor: '1.6',
    containerd: { registryConfigPath: null },
    table: V2,
  },
  {
    name: 'containerd 1.6 reads a config_path list: config left alone',
    flavor: '1.6',
    containerd: { registryConfigPath: (hosts) => `/etc/docker/certs.d:${hosts}` },
    table: V2,
    keep: true,
  },
  {
    name: 'containerd 2.x, version 3 config with a config_path list (containerd#12415)',
    flavor: '2.x',
    containerd: { flavor: '2.x', registryConfigPath: (hosts) => `${hosts}:/etc/docker/certs.d` },
    table: V3,
    trap: true,
  },
  {
    name: 'containerd 2.x, version 2 config without config_path (migrated at start)',
    flavor: '2.x',
    containerd: { flavor: '2.x', configVersion: 2, registryConfigPath: null },
    table: V2,
  },
];

function tableAt(doc: unknown, keys: string[]): Record<string, unknown> | undefined {
  let node = doc as Record<string, unknown> | undefined;
  for (const k of keys) node = node?.[k] as Record<string, unknown> | undefined;
  return node;
}

async function configurePullRestore(t: TestContext, c: Case): Promise<void> {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return;
  if (c.flavor === '1.6' && !requirePeers(t, 'containerd')) return;
  if (c.flavor === '2.x' && !requireGoPeer(t, 'containerd2', 'ctr2')) return;
  if (!requireRoot(t, 'containerd mounts snapshots')) return;
  const work = await testTempDir(t, 'hoist-ctd2-');
  const upstream = await startRegistry();
  t.after(() => upstream.stop());
  const direct = c.trap ? await image(work, 'direct', upstream) : undefined;
  const mirrored = await image(work, 'mirrored', upstream);
  const { mirror, ctd, cri, endpoint, mirrorFlags } = await startMirroredCriNode(t, upstream, c.containerd);
  const before = await snapshot(ctd.hostsDir, ctd.configPath);
  const configure = ['node', 'configure', ...mirrorFlags, '--runtime-endpoint', endpoint];

  if (direct) {
    // Only the hosts.toml, config left as it is: configure says why containerd will not use it,
    // and the CRI pull indeed goes straight to the registry.
    const warned = await runHoist([...configure, '--no-edit-containerd-config'], { fromSource: true });
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, /warning: .*ignores a list \(containerd#12415\)/);
    assert.equal(warned.stderr.split('\n').filter((l) => l.startsWith('hoist: warning')).length, 1);
    await cri.pullImage(`${upstream.host}/team/direct:v1`);
    await upstream.waitForAccess((e) => forImage('direct')(e) && e.userAgent.startsWith('containerd'));
    assert.ok(
      !mirror.logs().some((l) => JSON.stringify(l).includes('/team/direct/')),
      'the mirror was never asked',
    );
  }

  const res = await runHoist([...configure, '--output', 'json'], { fromSource: true });
  assert.equal(res.code, 0, res.stderr);
  const report = JSON.parse(res.stdout) as {
    containerd: { version: string; source: string } | null;
    files: Array<{ kind: string; action: string; path: string }>;
    restartNeeded: boolean;
  };
  assert.equal(report.containerd?.source, 'cri', 'asked the socket');
  assert.equal(report.containerd?.version.startsWith(c.flavor === '2.x' ? '2.' : '1.6'), true);
  assert.deepEqual(
    report.files.filter((f) => f.kind === 'containerd-config').map((f) => [f.path, f.action]),
    c.keep ? [] : [[ctd.configPath, 'updated']],
  );
  assert.equal(report.restartNeeded, !c.keep);
  const config = parse(await readFile(ctd.configPath, 'utf8'));
  if (!c.keep)
    assert.equal(tableAt(config, c.table)?.config_path, ctd.hostsDir, 'one folder, in the right table');
  assert.equal(
    (config as { version?: number }).version,
    c.containerd.configVersion ?? (c.flavor === '2.x' ? 3 : 2),
    'config version kept',
  );

  await ctd.restart();
  const from = upstream.accessLog().length;
  await cri.pullImage(`${upstream.host}/team/mirrored:v1`);
  const layer = mirrored.manifests[0]?.layers[0]?.digest ?? '';
  await upstream.waitForAccess((e) => forImage('mirrored')(e) && e.path.endsWith(layer));
  const seen = upstream.accessLog().slice(from);
  assert.ok(seen.length > 0);
  assert.deepEqual(
    [...new Set(seen.map((e) => e.userAgent))],
    ['hoist-mirror'],
    'the registry saw only the mirror for this pull',
  );
  const { stdout } = await ctd.ctr(['images', 'ls'], { namespace: 'k8s.io' });
  const line = stdout.split('\n').find((l) => l.startsWith(`${upstream.host}/team/mirrored:v1 `));
  assert.ok(line?.includes(mirrored.digest), `containerd holds the image: ${line}`);

  const un = await runHoist(['node', 'unconfigure', '--certs-dir', ctd.hostsDir], { fromSource: true });
  assert.equal(un.code, 0, un.stderr);
  if (!c.keep) {
    assert.match(un.stdout, new RegExp(`restored: ${ctd.configPath}`));
    assert.match(un.stderr, /restart/);
  }
  assert.deepEqual(await snapshot(ctd.hostsDir, ctd.configPath), before, 'every byte and mode back');
}

describe('hoist node configure on containerd 1.6 and 2.x', () => {
  for (const c of cases) it(c.name, TIMEOUT, (t) => configurePullRestore(t, c));
});
