// The several-hosts harness (test/helpers/netns.ts): hosts reach each other and nothing else,
// tbf shapes each direction of a link, and every namespace goes away, also after a failure and
// after a killed run. Root only; skipped with the reason otherwise (fails under CI=true).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildImage, fileDigest, pushImage, skopeoCopyToDir } from './helpers/images.js';
import { startMirrorProcess } from './helpers/mirror.js';
import type { NetnsHost, Topology, TopologyOptions } from './helpers/netns.js';
import { createTopology, listNamespaces, requireNetns, sweepStale } from './helpers/netns.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import type { Daemon } from './helpers/process.js';
import { run } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const PREFIX = 'hoist-nt';
const MB = 1_000_000;

// A server for one host: GET /N answers N zero bytes, any other path the host's name.
const BYTE_SERVER = `
const [addr, port, name] = process.argv.slice(1);
require('node:http').createServer((req, res) => {
  const n = Number(req.url.slice(1));
  if (!Number.isInteger(n) || n <= 0) return res.end(name);
  res.setHeader('content-length', n);
  const chunk = Buffer.alloc(65536);
  let left = n;
  const pump = () => { while (left > 0) { const c = chunk.subarray(0, Math.min(left, chunk.length)); left -= c.length; if (!res.write(c)) return res.once('drain', pump); } res.end(); };
  pump();
}).listen(Number(port), addr, () => console.log('listening'));
`;

async function topology(t: Parameters<typeof requireNetns>[0], opts: TopologyOptions): Promise<Topology> {
  const topo = await createTopology({ prefix: PREFIX, ...opts });
  t.after(() => topo.destroy());
  return topo;
}

/** Starts BYTE_SERVER on the host; resolves with its URL once it listens. */
async function byteServer(host: NetnsHost): Promise<{ url: string; daemon: Daemon }> {
  const port = host.nextPort();
  const daemon = host.startDaemon(process.execPath, [
    '-e',
    BYTE_SERVER,
    host.address,
    String(port),
    host.name,
  ]);
  await new Promise<void>((resolve, reject) => {
    daemon.onStdoutLine((l) => l === 'listening' && resolve());
    void daemon.exited.then(() =>
      reject(new Error(`byte server on ${host.name} exited: ${daemon.output()}`)),
    );
  });
  return { url: `http://${host.address}:${port}`, daemon };
}

/** curl from a host: the body, or the curl exit code when it could not connect. */
async function curlFrom(
  host: NetnsHost,
  url: string,
  connectTimeoutSeconds = 2,
): Promise<{ body?: string; exitCode?: number | null }> {
  try {
    const { stdout } = await host.run('curl', [
      '-sS',
      '--connect-timeout',
      String(connectTimeoutSeconds),
      '--max-time',
      '20',
      url,
    ]);
    return { body: stdout };
  } catch (e) {
    return { exitCode: (e as { exitCode?: number | null }).exitCode };
  }
}

/** Downloads N bytes from url on host; returns the bytes and curl's average rate (bytes/s). */
async function download(host: NetnsHost, url: string): Promise<{ bytes: number; bytesPerSecond: number }> {
  const { stdout } = await host.run('curl', [
    '-sS',
    '--max-time',
    '60',
    '-o',
    '/dev/null',
    '-w',
    '%{size_download} %{speed_download}',
    url,
  ]);
  const [bytes = NaN, rate = NaN] = stdout.trim().split(' ').map(Number);
  return { bytes, bytesPerSecond: rate };
}

test('hosts reach each other and the upstream, and nothing outside their topology', async (t) => {
  if (!requireNetns(t) || !requirePeers(t, 'curl')) return;
  const topo = await topology(t, { hosts: ['upstream', 'a', 'b'] });
  const [up, a, b] = [topo.host('upstream'), topo.host('a'), topo.host('b')];
  assert.deepEqual(
    topo.hosts.map((h) => h.address),
    ['127.77.0.2', '127.77.0.3', '127.77.0.4'],
  );
  const upServer = await byteServer(up);
  const bServer = await byteServer(b);
  assert.equal((await curlFrom(a, upServer.url)).body, 'upstream');
  assert.equal((await curlFrom(a, bServer.url)).body, 'b');
  assert.equal((await curlFrom(b, upServer.url)).body, 'upstream');

  // A server on this process's loopback is not reachable: 127.0.0.1 in a host is its own lo.
  const outside = createServer((_req, res) => res.end('outside'));
  outside.listen(0, '127.0.0.1');
  await once(outside, 'listening');
  t.after(() => outside.close());
  const port = (outside.address() as { port: number }).port;
  const viaLo = await curlFrom(a, `http://127.0.0.1:${port}/`);
  assert.equal(viaLo.body, undefined, 'the test process loopback must not be reachable from a host');
  assert.equal(viaLo.exitCode, 7, 'connection refused by the host own loopback');
  // An address no host has: nobody answers ARP on the bridge.
  assert.equal((await curlFrom(a, `http://127.77.0.200:${port}/`)).body, undefined);
  // No route leaves the topology, and the rest of 127/8 is no longer the host's own (lo keeps only
  // 127.0.0.1), so no server of this machine's loopback can hide behind another 127 address.
  await assert.rejects(a.run('ip', ['route', 'get', '1.1.1.1']), /Network is unreachable/);
  await assert.rejects(a.run('ip', ['route', 'get', '127.78.0.1']), /Network is unreachable/);
});

test('tbf shapes each direction of a link and tc counts what it shaped', async (t) => {
  if (!requireNetns(t) || !requirePeers(t, 'curl')) return;
  const topo = await topology(t, {
    hosts: [{ name: 'slow', rate: { upMbit: 50, downMbit: 40 } }, 'fast'],
  });
  const [slow, fast] = [topo.host('slow'), topo.host('fast')];
  assert.equal(await fast.tbfStats('up'), undefined, 'an unshaped link has no tbf');
  const slowServer = await byteServer(slow);
  const fastServer = await byteServer(fast);
  const n = 3 * MB;

  const up = await download(fast, `${slowServer.url}/${n}`);
  const down = await download(slow, `${fastServer.url}/${n}`);
  assert.equal(up.bytes, n);
  assert.equal(down.bytes, n);

  const upStats = await slow.tbfStats('up');
  const downStats = await slow.tbfStats('down');
  assert.ok(upStats && downStats, 'both directions carry a tbf');
  assert.equal(upStats.rateBytesPerSecond, (50 * MB) / 8);
  assert.equal(downStats.rateBytesPerSecond, (40 * MB) / 8);
  for (const s of [upStats, downStats]) {
    assert.ok(s.sentBytes >= n, `the tbf carried the transfer (${s.sentBytes} bytes)`);
    assert.ok(s.overlimits > 0, 'tbf held packets back: the transfer was larger than its bucket');
  }
  // A shaper's bound, not a timing expectation: a transfer cannot beat the configured rate by more
  // than one bucket of bytes, however idle or loaded the machine (load only makes it slower).
  assert.ok(up.bytesPerSecond < 1.5 * upStats.rateBytesPerSecond, `up ran at ${up.bytesPerSecond} B/s`);
  assert.ok(
    down.bytesPerSecond < 1.5 * downStats.rateBytesPerSecond,
    `down ran at ${down.bytesPerSecond} B/s`,
  );
});

test('a host unplugged from the switch reaches no one until plugged back', async (t) => {
  if (!requireNetns(t) || !requirePeers(t, 'curl')) return;
  const topo = await topology(t, { hosts: ['upstream', 'a'] });
  const [up, a] = [topo.host('upstream'), topo.host('a')];
  const server = await byteServer(up);
  assert.equal((await curlFrom(a, server.url)).body, 'upstream');
  await a.setLinkUp(false);
  assert.equal((await curlFrom(a, server.url)).body, undefined, 'a partitioned host reaches nothing');
  await a.setLinkUp(true);
  // Generous: TCP and ARP retry on their own timers after a partition; reachability is the point.
  assert.equal((await curlFrom(a, server.url, 15)).body, 'upstream');
});

test('destroy removes every namespace and the processes in them', async (t) => {
  if (!requireNetns(t)) return;
  const topo = await createTopology({ prefix: PREFIX, hosts: ['a', 'b'] });
  let destroyed = false;
  t.after(() => (destroyed ? undefined : topo.destroy()));
  const names = topo.namespaces();
  assert.equal(names.length, 3);
  assert.ok(names.every((n) => n.startsWith(`${PREFIX}-${process.pid}-`)));
  const listed = await listNamespaces();
  for (const n of names) assert.ok(listed.includes(n), `${n} exists while the topology lives`);
  const sleeper = topo.host('a').startDaemon('sleep', ['600']);

  await topo.destroy();
  destroyed = true;
  await sleeper.exited;
  const after = await listNamespaces();
  assert.deepEqual(
    names.filter((n) => after.includes(n)),
    [],
  );
  await topo.destroy(); // twice is fine
});

test('a topology that fails halfway leaves nothing behind', async (t) => {
  if (!requireNetns(t)) return;
  const before = await listNamespaces();
  await assert.rejects(
    createTopology({ prefix: PREFIX, hosts: ['a', { name: 'b', rate: { upMbit: -1 } }] }),
    /tbf rate must be a positive number/,
  );
  const mine = (await listNamespaces()).filter((n) => !before.includes(n) && n.startsWith(`${PREFIX}-`));
  assert.deepEqual(mine, []);
});

test('sweepStale removes what a killed run left, and never a live run', async (t) => {
  if (!requireNetns(t)) return;
  const prefix = `${PREFIX}-sweep`;
  // A pid no process can have (above the kernel's pid_max), standing for a run that was killed.
  const deadPid = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim()) + 1;
  // A live process that is not this one stands for a parallel run.
  const alive = spawn('sleep', ['600']);
  t.after(() => alive.kill('SIGKILL'));
  const staleNames = [`${prefix}-${deadPid}-1-sw`, `${prefix}-${deadPid}-1-a`];
  const liveName = `${prefix}-${alive.pid}-1-sw`;
  for (const n of [...staleNames, liveName]) await run('ip', ['netns', 'add', n]);
  t.after(async () => {
    const left = await listNamespaces();
    for (const n of [...staleNames, liveName]) if (left.includes(n)) await run('ip', ['netns', 'del', n]);
  });
  // A veth across the stale pair, as a killed topology leaves it.
  await run('ip', [
    '-n',
    staleNames[0] ?? '',
    'link',
    'add',
    'v0',
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    staleNames[1] ?? '',
  ]);

  const swept = await sweepStale(prefix);
  assert.deepEqual([...swept].sort(), [...staleNames].sort());
  const left = await listNamespaces();
  assert.deepEqual(
    staleNames.filter((n) => left.includes(n)),
    [],
  );
  assert.ok(left.includes(liveName), 'a namespace of a live run stays');
});

test('registry, Hoist mirror and skopeo each run in their own host', async (t) => {
  if (!requireNetns(t) || !requirePeers(t, 'docker-registry', 'skopeo', 'curl')) return;
  const topo = await topology(t, { hosts: ['upstream', 'mirror', 'node'] });
  const [upHost, mirrorHost, node] = [topo.host('upstream'), topo.host('mirror'), topo.host('node')];
  const upstream = await startRegistry({ placement: upHost.placement() });
  t.after(() => upstream.stop());
  assert.equal(upstream.host, `${upHost.address}:5000`);

  const dir = await testTempDir(t, 'hoist-netns-image');
  const image = await buildImage(join(dir, 'layout'), {
    layers: [{ files: [{ path: 'a.bin', size: 300_000 }] }, { files: [{ path: 'b.bin', size: 200_000 }] }],
  });
  // Pushed from the upstream's own host (its own address is local there).
  await pushImage(image.dir, image.tag, `${upstream.host}/app:v1`, { command: upHost.command });

  const mirror = await startMirrorProcess(
    { [upstream.host]: upstream.url },
    { defaultUpstream: upstream.host, placement: mirrorHost.placement() },
  );
  t.after(() => mirror.stop());
  assert.equal(mirror.host, `${mirrorHost.address}:5000`);

  const mark = upstream.accessLog().length;
  const out = join(dir, 'out');
  await skopeoCopyToDir(`docker://${mirror.host}/app:v1`, out, { command: node.command });
  const files = await readdir(out);
  for (const layer of image.manifests[0]?.layers ?? []) {
    const hex = layer.digest.slice('sha256:'.length);
    assert.ok(files.includes(hex), `layer ${layer.digest} copied`);
    assert.equal(await fileDigest(join(out, hex)), layer.digest);
    await upstream.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${layer.digest}`));
  }
  // Each blob crossed the wire from the upstream to the mirror's address, never to the node's.
  const blobGets = upstream
    .accessLog()
    .slice(mark)
    .filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
  assert.ok(blobGets.length >= 2);
  assert.deepEqual([...new Set(blobGets.map((e) => e.remoteAddr))], [mirrorHost.address]);
});
