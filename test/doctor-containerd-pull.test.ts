// The hosts.toml files `hoist doctor containerd-config` writes for a deprecated registry.mirrors
// section (issue 11 item 1), read by a real containerd (Debian's 1.6 and the 2.x built from Go
// modules) pulling over CRI. As in real configs, the mirrors list names only mirrors, so the
// registry is reached at its implicit https://NAME: here a TLS front (a self-signed certificate
// for 127.0.0.1 that containerd trusts through SSL_CERT_FILE) for a plain-HTTP docker-registry.
// A dead mirror must not stop the pull (the registry stays `server`, tried last), and a live
// mirror is asked before the registry.
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, it, type TestContext } from 'node:test';
import { checkContainerdConfig, DEFAULT_CONFIG_PATH, parseContainerdConfig } from '../src/doctor/index.js';
import { startCriNode } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage, run, type BuiltImage } from './helpers/images.js';
import { freePort, requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

/** Runs the doctor on a version 2 config whose registry.mirrors lists `endpoints` for `registry`
 * and writes the hosts.toml files it suggests into containerd's hosts dir. */
async function writeDoctorHostsToml(
  hostsDir: string,
  registry: string,
  endpoints: string[],
): Promise<string> {
  const text =
    'version = 2\n' +
    `[plugins."io.containerd.grpc.v1.cri".registry.mirrors.${JSON.stringify(registry)}]\n` +
    `  endpoint = ${JSON.stringify(endpoints)}\n`;
  const finding = checkContainerdConfig(parseContainerdConfig(text, 'config.toml')).find(
    (f) => f.rule === 'registry-mirrors-deprecated',
  );
  const [file] = finding?.files ?? [];
  assert.equal(file?.path, `${DEFAULT_CONFIG_PATH}/${registry}/hosts.toml`);
  const path = join(hostsDir, registry, 'hosts.toml');
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, file.content);
  return file.content;
}

async function image(work: string, name: string, registries: RegistryPeer[]): Promise<BuiltImage> {
  const built = await buildImage(join(work, name), {
    tag: 'v1',
    layers: [{ files: [{ path: `${name}.bin`, size: 300_000, seed: `doctor-${name}` }] }],
  });
  for (const r of registries) await pushImage(built.dir, 'v1', `${r.host}/team/${name}:v1`);
  return built;
}

/** An https:// front on 127.0.0.1 for a plain-HTTP registry; returns its host (127.0.0.1:PORT). */
async function tlsFront(t: TestContext, work: string, target: RegistryPeer): Promise<string> {
  const key = join(work, 'tls.key');
  const cert = join(work, 'tls.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
    const upstream = httpRequest(
      { host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        pipeline(up, res).catch(() => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    pipeline(req, upstream).catch(() => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  // Go reads SSL_CERT_FILE as its only trust store: containerd (started after this) trusts the front.
  const before = process.env.SSL_CERT_FILE;
  process.env.SSL_CERT_FILE = cert;
  t.after(() => {
    if (before === undefined) delete process.env.SSL_CERT_FILE;
    else process.env.SSL_CERT_FILE = before;
  });
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const fromContainerd = (name: string) => (e: { path: string; userAgent: string }) =>
  e.path.startsWith(`/v2/team/${name}/`) && e.userAgent.startsWith('containerd');

async function pullsThroughConvertedMirrors(t: TestContext, flavor: '1.6' | '2.x'): Promise<void> {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return;
  if (flavor === '1.6' && !requirePeers(t, 'containerd')) return;
  if (flavor === '2.x' && !requireGoPeer(t, 'containerd2', 'ctr2')) return;
  if (!requireRoot(t, 'containerd mounts snapshots')) return;
  const work = await testTempDir(t, 'hoist-doctor-pull-');
  const upstream = await startRegistry();
  t.after(() => upstream.stop());
  const live = await startRegistry();
  t.after(() => live.stop());
  const dead = `http://127.0.0.1:${await freePort()}`;
  const first = await image(work, 'first', [upstream]);
  const second = await image(work, 'second', [upstream, live]);
  const registry = await tlsFront(t, work, upstream);
  const { ctd, cri } = await startCriNode(t, { flavor });

  // The case: a mirror that is down is the only endpoint. The registry stays server.
  const content = await writeDoctorHostsToml(ctd.hostsDir, registry, [dead]);
  await cri.pullImage(`${registry}/team/first:v1`);
  assert.match(content, new RegExp(`^server = "https://${registry}"`, 'm'));
  await upstream.waitForAccess((e) => fromContainerd('first')(e) && e.path.endsWith(first.digest));

  // A live mirror after the dead one is asked before the registry.
  await writeDoctorHostsToml(ctd.hostsDir, registry, [dead, live.url]);
  await cri.pullImage(`${registry}/team/second:v1`);
  const layer = second.manifests[0]?.layers[0]?.digest ?? '';
  await live.waitForAccess((e) => fromContainerd('second')(e) && e.path.endsWith('/manifests/v1'));
  await live.waitForAccess((e) => fromContainerd('second')(e) && e.path.endsWith(layer));
  assert.deepEqual(
    upstream.accessLog().filter(fromContainerd('second')),
    [],
    'the registry (server) was not needed while the mirror answered',
  );

  const { stdout } = await ctd.ctr(['images', 'ls'], { namespace: 'k8s.io' });
  for (const [name, built] of [
    ['first', first],
    ['second', second],
  ] as const) {
    const line = stdout.split('\n').find((l) => l.startsWith(`${registry}/team/${name}:v1 `));
    assert.ok(line?.includes(built.digest), `containerd holds ${name} at ${built.digest}: ${line}`);
  }
}

describe('doctor containerd-config: converted hosts.toml under a real containerd', () => {
  it('containerd 1.6 pulls past a dead mirror and asks a live mirror first', TIMEOUT, (t) =>
    pullsThroughConvertedMirrors(t, '1.6'),
  );
  it('containerd 2.x pulls past a dead mirror and asks a live mirror first', TIMEOUT, (t) =>
    pullsThroughConvertedMirrors(t, '2.x'),
  );
});
