// The node mirror's metrics socket as the install wires it (src/install/metrics-socket.ts), in both
// storage modes. Rendered: both renderers (hoist render install, helm template) give the mirror
// `--metrics-socket` and the agent `--mirror-metrics` on the same node directory; a hostPath store
// runs both as uid 0 and needs nothing more; an emptyDir store runs the mirror as 65532, puts both
// pods in one group and prepares the directory with an init container that holds no capability.
// Run: the rendered identities as real processes (setpriv: uid, gid, supplementary groups, no
// capability, no_new_privs), in a directory made as the kubelet makes a DirectoryOrCreate
// hostPath (root:root 0755): the init container's own command, the real mirror, and the agent's
// own reader (readMirrorMetrics) gets the figures of a blob pulled through the mirror; a reader
// without the group is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parseMirrorCacheFigures, type MirrorCacheFigures } from '../src/node/index.js';
import type { KubeObject } from '../src/install/index.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { CHART, docs, find, NS, renderInstall, ROOT, runHelm, type Loose } from './helpers/install.js';
import { startMirrorProcess } from './helpers/mirror.js';
import { requirePeers, requireRoot, tempDir, removeTempDir, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { pushBlob, startRegistry } from './helpers/registry.js';
import { asIdentity, containerIdentity, type ProcessIdentity } from './helpers/setpriv.js';

const TIMEOUT = { timeout: 180_000 };
const DIR = '/run/hoist/mirror';
const SOCKET = `${DIR}/metrics.sock`;

const VALUES = {
  hostPath: '', // the defaults
  emptyDir: 'mirror: { node: { storage: { type: emptyDir }, metricsSocketGroup: 4242 } }\n',
  zone: 'mirror: { mode: zone }\n',
} as const;
type Mode = keyof typeof VALUES;

type Render = (t: TestContext, mode: Mode) => Promise<KubeObject[]>;

async function valuesArgs(t: TestContext, mode: Mode): Promise<string[]> {
  if (!VALUES[mode]) return [];
  const file = join(await testTempDir(t, 'hoist-socket-values'), 'values.yaml');
  await writeFile(file, VALUES[mode]);
  return ['-f', file];
}

const renderers: Array<[string, Render]> = [
  ['hoist render install', async (t, mode) => docs(await renderInstall(await valuesArgs(t, mode)))],
  [
    'helm template',
    async (t, mode) => {
      const home = await testTempDir(t, 'hoist-socket-helm');
      const res = await runHelm(home, [
        'template',
        'hoist',
        CHART,
        '--namespace',
        NS,
        ...(await valuesArgs(t, mode)),
      ]);
      assert.equal(res.code, 0, res.stderr);
      return docs(res.stdout);
    },
  ],
];

/** The mirror's and the agent's pod specs and containers. */
function pods(objects: KubeObject[], mirrorKind = 'DaemonSet') {
  const mirrorPod: Loose = find(objects, mirrorKind, 'hoist-mirror').spec.template.spec;
  const agentPod: Loose = find(objects, 'DaemonSet', 'hoist-agent').spec.template.spec;
  return { mirrorPod, agentPod, mirror: mirrorPod.containers[0], agent: agentPod.containers[0] };
}

const flag = (args: string[], name: string) =>
  args.includes(name) ? args[args.indexOf(name) + 1] : undefined;
const byName = (list: Array<{ name: string }> | undefined, name: string): Loose =>
  (list ?? []).find((x) => x.name === name);

/** Both pods carry the socket: the flags, the node directory, read-write in the mirror only. */
function checkSocketWiring(objects: KubeObject[]) {
  const p = pods(objects);
  assert.equal(flag(p.mirror.args, '--metrics-socket'), SOCKET);
  assert.equal(flag(p.agent.args, '--mirror-metrics'), `unix://${SOCKET}`);
  const hostDir = { path: DIR, type: 'DirectoryOrCreate' };
  assert.deepEqual(byName(p.mirrorPod.volumes, 'metrics-socket').hostPath, hostDir);
  assert.deepEqual(byName(p.agentPod.volumes, 'mirror-metrics').hostPath, hostDir);
  assert.deepEqual(byName(p.mirror.volumeMounts, 'metrics-socket'), {
    name: 'metrics-socket',
    mountPath: DIR,
  });
  assert.deepEqual(byName(p.agent.volumeMounts, 'mirror-metrics'), {
    name: 'mirror-metrics',
    mountPath: DIR,
    readOnly: true,
  });
  return p;
}

describe("install: the node mirror's metrics socket, rendered", () => {
  for (const [name, render] of renderers) {
    const needsHelm = (t: TestContext) => name !== 'helm template' || requireGoPeer(t, 'helm');

    it(
      `${name}: hostPath store: mirror and agent both uid 0, nothing shared but the directory`,
      TIMEOUT,
      async (t) => {
        if (!needsHelm(t)) return;
        const p = checkSocketWiring(await render(t, 'hostPath'));
        assert.deepEqual(containerIdentity(p.mirrorPod, p.mirror), { uid: 0, gid: 0, groups: [] });
        assert.deepEqual(containerIdentity(p.agentPod, p.agent), { uid: 0, gid: 0, groups: [] });
        assert.equal(p.mirrorPod.initContainers, undefined);
        assert.equal(p.mirrorPod.securityContext, undefined);
        assert.equal(p.agentPod.securityContext, undefined);
      },
    );

    it(
      `${name}: emptyDir store: a non-root mirror, a shared group, an init container with no capability`,
      TIMEOUT,
      async (t) => {
        if (!needsHelm(t)) return;
        const p = checkSocketWiring(await render(t, 'emptyDir'));
        assert.deepEqual(containerIdentity(p.mirrorPod, p.mirror), {
          uid: 65532,
          gid: 65532,
          groups: [4242],
        });
        assert.equal(p.mirror.securityContext.runAsNonRoot, true);
        assert.deepEqual(containerIdentity(p.agentPod, p.agent), { uid: 0, gid: 0, groups: [4242] });
        assert.deepEqual(p.mirrorPod.securityContext, { supplementalGroups: [4242] });
        assert.deepEqual(p.agentPod.securityContext, { supplementalGroups: [4242] });
        assert.equal(p.mirrorPod.initContainers.length, 1);
        const init = p.mirrorPod.initContainers[0];
        assert.equal(init.name, 'metrics-socket-dir');
        assert.equal(init.image, p.mirror.image, 'the hoist image: it has node, and no shell');
        assert.deepEqual(init.command.slice(0, 2), ['node', '-e']);
        assert.deepEqual(init.command.slice(3), [DIR, '4242']);
        // uid 0 (the directory's owner) but no capability: containerIdentity asserts drop ALL.
        assert.deepEqual(containerIdentity(p.mirrorPod, init), { uid: 0, gid: 0, groups: [4242] });
        assert.equal(init.securityContext.capabilities.add, undefined);
        assert.equal(init.securityContext.readOnlyRootFilesystem, true);
        assert.deepEqual(init.volumeMounts, [{ name: 'metrics-socket', mountPath: DIR }]);
        assert.deepEqual(init.resources, p.mirror.resources, "the mirror's: the pod asks for no more");
      },
    );

    it(`${name}: zone mode: no socket, no shared group, no init container`, TIMEOUT, async (t) => {
      if (!needsHelm(t)) return;
      const p = pods(await render(t, 'zone'), 'Deployment');
      assert.equal(flag(p.mirror.args, '--metrics-socket'), undefined);
      assert.equal(flag(p.agent.args, '--mirror-metrics'), undefined);
      assert.equal(p.mirrorPod.initContainers, undefined);
      assert.equal(p.mirrorPod.securityContext, undefined);
      assert.equal(p.agentPod.securityContext, undefined);
    });
  }
});

/** The agent's reader (src/agent/mirror-report.ts, built) as `id`: its figures, or the error code. */
async function readAs(
  id: ProcessIdentity,
  socketPath: string,
): Promise<{ figures?: MirrorCacheFigures; error?: string }> {
  const script = `
    const { readMirrorMetrics } = await import(${JSON.stringify(join(ROOT, 'dist/agent/mirror-report.js'))});
    const { isMirrorMetrics, parseMirrorCacheFigures } = await import(${JSON.stringify(join(ROOT, 'dist/node/index.js'))});
    try {
      const text = await readMirrorMetrics({ socketPath: process.argv[1] }, { timeoutMs: 10000, maxBodyBytes: 1 << 20 });
      if (!isMirrorMetrics(text)) throw new Error('not a hoist mirror page');
      console.log(JSON.stringify({ figures: parseMirrorCacheFigures(text) }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.code ?? err.message }));
    }`;
  const c = asIdentity(id)(process.execPath, ['--input-type=module', '-e', script, socketPath]);
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(c.cmd, c.args, { timeout: 30_000 }, (err, out, errOut) =>
      err ? reject(new Error(`reader as ${JSON.stringify(id)}: ${err.message} ${errOut}`)) : resolve(out),
    ),
  );
  return JSON.parse(stdout) as { figures?: MirrorCacheFigures; error?: string };
}

/** Runs a rendered container's command as its identity; resolves with the exit code and stderr. */
function runAs(id: ProcessIdentity, command: string[]): Promise<{ code: number; stderr: string }> {
  const [cmd, ...args] = command;
  assert.equal(cmd, 'node');
  const c = asIdentity(id)(process.execPath, args);
  return new Promise((resolve) =>
    execFile(c.cmd, c.args, { timeout: 30_000 }, (err, _out, stderr) =>
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stderr }),
    ),
  );
}

/** A unix socket at `path` whose server is gone, as a killed mirror leaves it (owned by root). */
async function leaveStaleSocket(path: string): Promise<void> {
  const script = `require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`;
  await new Promise<void>((resolve) => execFile(process.execPath, ['-e', script, path], () => resolve()));
  assert.ok((await stat(path)).isSocket(), 'a stale socket is left behind');
}

/**
 * One node: the directory as the kubelet makes it, the init container (when rendered), the mirror
 * with a blob pulled through it, and the figures as the agent reads them. Returns what the test
 * needs to try other readers.
 */
async function runNode(t: TestContext, objects: KubeObject[]) {
  const p = checkSocketWiring(objects);
  const base = await tempDir('hoist-sock-', '/tmp'); // short: a socket path has at most 107 bytes
  t.after(() => removeTempDir(base));
  await chmod(base, 0o755); // what /run is to the pods
  const dir = join(base, 'mirror');
  await mkdir(dir, { mode: 0o755 }); // the kubelet's DirectoryOrCreate: root:root 0755
  await chmod(dir, 0o755);
  const socket = join(dir, 'metrics.sock');
  // A socket a root mirror left (a hostPath store before, or a crash): the mirror replaces it.
  await leaveStaleSocket(socket);

  for (const init of p.mirrorPod.initContainers ?? []) {
    const command = (init.command as string[]).map((a) => (a === DIR ? dir : a));
    const res = await runAs(containerIdentity(p.mirrorPod, init), command);
    assert.equal(res.code, 0, `init container ${init.name}: ${res.stderr}`);
  }

  const registry = await startRegistry();
  t.after(() => registry.stop());
  const blob = Buffer.from('a layer pulled through the node mirror\n'.repeat(1000));
  const digest = await pushBlob(registry, 'lib/app', blob);
  // The store: a hostPath is root's; an emptyDir is 0777 (the kubelet's default mode for it).
  const storage = join(base, 'storage');
  await mkdir(storage);
  await chmod(storage, p.mirrorPod.volumes.find((v: Loose) => v.name === 'storage').emptyDir ? 0o777 : 0o755);
  const mirrorId = containerIdentity(p.mirrorPod, p.mirror);
  const mirror = await startMirrorProcess(
    { [registry.host]: registry.url },
    {
      defaultUpstream: registry.host,
      storage,
      args: ['--metrics-socket', flag(p.mirror.args, '--metrics-socket')!.replace(DIR, dir)],
      command: asIdentity(mirrorId),
    },
  );
  t.after(() => mirror.stop());

  const st = await stat(socket);
  assert.ok(st.isSocket());
  assert.equal(st.uid, mirrorId.uid, "the mirror's own socket, not the stale one");
  assert.equal(st.mode & 0o777, 0o660, 'the socket is 0660');

  const res = await fetch(`${mirror.url}/v2/lib/app/blobs/${digest}`);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob);
  // The store gauge moves once the blob is committed, just after the response ends.
  const direct = async () => parseMirrorCacheFigures(await (await fetch(`${mirror.url}/metrics`)).text());
  await waitUntil('the blob in the store', async () => (await direct()).storeBytes >= blob.length);
  return { p, dir, socket, st, mirrorId, blob, expected: await direct() };
}

describe("install: the node mirror's metrics socket, run as rendered (real processes)", () => {
  const ready = (t: TestContext) =>
    requireRoot(t, 'runs the mirror and the agent reader as other users (setpriv)') &&
    requirePeers(t, 'setpriv', 'docker-registry');

  it(
    'emptyDir store: the non-root mirror serves, the agent reads through the shared group, others are refused',
    TIMEOUT,
    async (t) => {
      if (!ready(t)) return;
      const objects = docs(await renderInstall(await valuesArgs(t, 'emptyDir')));
      const { p, dir, socket, st, mirrorId, blob, expected } = await runNode(t, objects);
      const agentId = containerIdentity(p.agentPod, p.agent);
      assert.equal(mirrorId.uid, 65532);
      assert.equal(agentId.uid, 0);
      const group = agentId.groups[0]!;
      assert.ok(group !== undefined && mirrorId.groups.includes(group));

      const d = await stat(dir);
      assert.deepEqual(
        [d.uid, d.gid, d.mode & 0o7777],
        [0, group, 0o2770],
        'the init container: root:GROUP 2770',
      );
      assert.equal(st.gid, group, "the socket is in the directory's (setgid) group");

      const read = await readAs(agentId, socket);
      assert.deepEqual(read, { figures: expected }, 'the agent reads the figures');
      assert.equal(read.figures?.blobLookups, 1);
      assert.equal(read.figures?.upstreamBytes, blob.length);
      // The group is what lets a reader in: another uid with it reads, without it nobody does,
      // not even uid 0 once its capabilities are gone.
      assert.deepEqual(await readAs({ uid: 65534, gid: 65534, groups: [group] }, socket), {
        figures: expected,
      });
      assert.deepEqual(await readAs({ ...agentId, groups: [] }, socket), { error: 'EACCES' });
      assert.deepEqual(await readAs({ uid: 65534, gid: 65534, groups: [] }, socket), { error: 'EACCES' });
    },
  );

  it('hostPath store: mirror and agent as uid 0 without capabilities, nobody else', TIMEOUT, async (t) => {
    if (!ready(t)) return;
    const { p, dir, socket, st, expected } = await runNode(t, docs(await renderInstall()));
    const agentId = containerIdentity(p.agentPod, p.agent);
    assert.deepEqual(agentId, { uid: 0, gid: 0, groups: [] });
    assert.equal(st.uid, 0);
    const d = await stat(dir);
    assert.deepEqual([d.uid, d.gid, d.mode & 0o7777], [0, 0, 0o755], 'left as the kubelet made it');
    assert.deepEqual(await readAs(agentId, socket), { figures: expected });
    assert.deepEqual(await readAs({ uid: 65534, gid: 65534, groups: [] }, socket), { error: 'EACCES' });
  });

  it('the init container fails in one line on a directory uid 0 does not own', TIMEOUT, async (t) => {
    if (!ready(t)) return;
    const objects = docs(await renderInstall(await valuesArgs(t, 'emptyDir')));
    const { mirrorPod } = pods(objects);
    const init = mirrorPod.initContainers[0];
    const base = await tempDir('hoist-sock-', '/tmp');
    t.after(() => removeTempDir(base));
    const dir = join(base, 'mirror');
    await mkdir(dir);
    await chmod(base, 0o755);
    await chown(dir, 1234, 1234);
    const res = await runAs(
      containerIdentity(mirrorPod, init),
      (init.command as string[]).map((a) => (a === DIR ? dir : a)),
    );
    assert.equal(res.code, 1);
    assert.match(
      res.stderr.trim(),
      new RegExp(
        `^cannot give ${dir} to group 4242 for the mirror metrics socket: EPERM; it must be a directory owned by uid 0$`,
      ),
    );
  });
});
