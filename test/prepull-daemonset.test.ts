// `hoist render prepull-daemonset`: the plain pre-pull DaemonSet for clusters without the agent.
// The objects it prints, its one-line errors, and the init-container trick in a real containerd:
// an image with no shell and no `true` runs `/hoist-bin/true` (a static busybox copied in by the
// helper init container, with the helper's own command), where the guide's `sh -c true` fails.
import assert from 'node:assert/strict';
import { runHoist } from './helpers/cri.js';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { COPY_COMMAND, HELPER_BIN_DIR, TRUE_COMMAND } from '../src/install/index.js';
import { startContainerd, type ContainerdPeer } from './helpers/containerd.js';
import { buildImage, run } from './helpers/images.js';
import { findBinary, requirePeers, requireRoot, testTempDir } from './helpers/peers.js';

const TIMEOUT = { timeout: 180_000 };

/** `hoist ARGS` from the sources (tsx), as users run the built binary. */
const hoist = (args: string[]) => runHoist(args, { fromSource: true });

interface Container {
  name: string;
  image: string;
  imagePullPolicy: string;
  command?: string[];
  workingDir?: string;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
  securityContext?: Record<string, unknown>;
}

interface DaemonSet {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: {
    updateStrategy: { rollingUpdate: { maxUnavailable: number | string } };
    template: {
      spec: {
        initContainers: Container[];
        containers: Container[];
        tolerations?: unknown[];
        nodeSelector: Record<string, string>;
        securityContext: Record<string, unknown>;
        volumes: Array<{ name: string; emptyDir?: unknown }>;
      };
    };
  };
}

async function render(args: string[]): Promise<DaemonSet> {
  const res = await hoist(['render', 'prepull-daemonset', ...args]);
  assert.equal(res.code, 0, res.stderr);
  return parse(res.stdout) as DaemonSet;
}

describe('hoist render prepull-daemonset', () => {
  it('prints one init container per image behind the helper, then pause', TIMEOUT, async () => {
    const ds = await render([
      ...[
        '--image',
        'nvcr.io/nvidia/pytorch:24.05-py3',
        '--image',
        'gcr.io/distroless/static@sha256:' + 'a'.repeat(64),
      ],
      ...['--image', 'nginx', '--name', 'warm', '--namespace', 'ml', '--max-unavailable', '25%'],
      ...['--toleration', 'nvidia.com/gpu:NoSchedule', '--toleration', 'dedicated=ml:NoExecute'],
      ...['--node-selector', 'nvidia.com/gpu.present=true'],
    ]);
    assert.equal(ds.kind, 'DaemonSet');
    assert.deepEqual([ds.metadata.name, ds.metadata.namespace], ['warm', 'ml']);
    const pod = ds.spec.template.spec;
    const [helper, ...pulls] = pod.initContainers;
    assert.equal(helper?.image, 'docker.io/library/busybox:1.36');
    assert.deepEqual(helper?.command, ['/bin/busybox', 'cp', '/bin/busybox', '/hoist-bin/true']);
    assert.deepEqual(helper?.volumeMounts, [{ name: 'hoist-bin', mountPath: '/hoist-bin' }]);
    assert.deepEqual(
      pulls.map((c) => [c.image, c.imagePullPolicy]),
      [
        ['nvcr.io/nvidia/pytorch:24.05-py3', 'IfNotPresent'],
        [`gcr.io/distroless/static@sha256:${'a'.repeat(64)}`, 'IfNotPresent'],
        // No tag is latest, which the kubelet pulls Always: the node gets what a workload would.
        ['docker.io/library/nginx:latest', 'Always'],
      ],
    );
    for (const c of pulls) {
      assert.deepEqual(c.command, ['/hoist-bin/true']);
      assert.equal(c.workingDir, '/hoist-bin');
      assert.deepEqual(c.volumeMounts, [{ name: 'hoist-bin', mountPath: '/hoist-bin', readOnly: true }]);
      assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    }
    assert.equal(new Set(pod.initContainers.map((c) => c.name)).size, 4, 'container names are unique');
    assert.deepEqual(
      pod.containers.map((c) => c.image),
      ['registry.k8s.io/pause:3.10'],
    );
    assert.deepEqual(pod.volumes, [{ name: 'hoist-bin', emptyDir: { sizeLimit: '16Mi' } }]);
    assert.deepEqual(pod.tolerations, [
      { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
      { key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoExecute' },
    ]);
    assert.deepEqual(pod.nodeSelector, { 'kubernetes.io/os': 'linux', 'nvidia.com/gpu.present': 'true' });
    assert.equal(ds.spec.updateStrategy.rollingUpdate.maxUnavailable, '25%');
    assert.equal(pod.securityContext.runAsUser, 65534);
  });

  it('tolerates everything with --tolerate-all, and prints JSON with --output json', TIMEOUT, async () => {
    const yaml = await render(['--image', 'busybox:1.36', '--tolerate-all', '--max-unavailable', '3']);
    assert.deepEqual(yaml.spec.template.spec.tolerations, [{ operator: 'Exists' }]);
    assert.equal(yaml.spec.updateStrategy.rollingUpdate.maxUnavailable, 3);
    const json = await hoist([
      ...['render', 'prepull-daemonset', '--image', 'busybox:1.36', '--tolerate-all'],
      ...['--max-unavailable', '3', '--output', 'json'],
    ]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), yaml);
  });

  describe('bad input', { concurrency: true }, () => {
    for (const [what, args, message] of [
      ['a malformed image', ['--image', 'Example/App:v1'], /--image "Example\/App:v1": .*invalid repository/],
      ['a bad tag', ['--image', 'app:-bad'], /--image "app:-bad": .*invalid tag/],
      [
        'a bad toleration effect',
        ['--image', 'a:1', '--toleration', 'gpu:Sometimes'],
        /effect must be one of/,
      ],
      [
        'a toleration with no key',
        ['--image', 'a:1', '--toleration', '=x:NoSchedule'],
        /--toleration "=x:NoSchedule"/,
      ],
      [
        'both toleration flags',
        ['--image', 'a:1', '--toleration', 'k:NoSchedule', '--tolerate-all'],
        /not both/,
      ],
      ['no image', [], /at least one --image/],
      ['a zero max-unavailable', ['--image', 'a:1', '--max-unavailable', '0'], /--max-unavailable "0"/],
      ['a bad node selector', ['--image', 'a:1', '--node-selector', 'novalue'], /--node-selector "novalue"/],
      ['a bad name', ['--image', 'a:1', '--name', 'Warm_Up'], /--name "Warm_Up"/],
      ['a bad output', ['--image', 'a:1', '--output', 'xml'], /--output "xml"/],
    ] as const) {
      it(`exits 2 with one line for ${what}`, TIMEOUT, async () => {
        const res = await hoist(['render', 'prepull-daemonset', ...args]);
        assert.equal(res.code, 2, res.stderr);
        assert.equal(res.stdout, '');
        assert.match(res.stderr, message);
        assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      });
    }
  });
});

/** A 64-bit little-endian ELF with no PT_INTERP program header needs no dynamic loader. */
function isStaticElf(bin: Buffer): boolean {
  if (bin.readUInt32BE(0) !== 0x7f454c46 || bin[4] !== 2 || bin[5] !== 1) return false;
  const phoff = Number(bin.readBigUInt64LE(0x20));
  const size = bin.readUInt16LE(0x36);
  const PT_INTERP = 3;
  for (let i = 0; i < bin.readUInt16LE(0x38); i++) {
    if (bin.readUInt32LE(phoff + i * size) === PT_INTERP) return false;
  }
  return true;
}

/** `ctr images import` of an OCI layout (tarred), named NAME:TAG. */
async function importLayout(ctd: ContainerdPeer, layout: string, name: string, work: string): Promise<void> {
  const archive = join(work, `${name.replace(/\W/g, '-')}.tar`);
  await run('tar', ['-cf', archive, '-C', layout, '.']);
  await ctd.ctr(['images', 'import', '--base-name', name, archive]);
}

describe('the init-container trick in real containerd', () => {
  it('runs /hoist-bin/true in an image with no shell, where sh -c true fails', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'containerd', 'ctr', 'runc', 'busybox')) return;
    if (!requireRoot(t, 'containerd mounts snapshots and runs containers')) return;
    const work = await testTempDir(t, 'hoist-prepull');
    const busybox = findBinary('busybox');
    assert.ok(busybox);
    assert.ok(isStaticElf(await readFile(busybox)), `${busybox} is statically linked`);

    // FROM scratch: one file, no /bin at all; the user is numeric, as the pod sets it.
    const noShell = await buildImage(join(work, 'no-shell'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'app/model.txt', content: 'weights\n' }] }],
      config: { Entrypoint: ['/app/server'], User: '65534:65534' },
    });
    // The helper image: a static busybox at /bin/busybox, as the official busybox image has it.
    const helper = await buildImage(join(work, 'helper'), {
      tag: '1.36',
      layers: [{ files: [{ path: 'bin/busybox', fromFile: busybox, mode: 0o755 }] }],
      config: { User: '65534:65534' },
    });

    const ds = await render([
      '--image',
      'docker.io/hoist-test/no-shell:v1',
      '--helper-image',
      'hoist-test/helper:1.36',
    ]);
    const [copy, pull] = ds.spec.template.spec.initContainers;
    assert.deepEqual(copy?.command, COPY_COMMAND);
    assert.deepEqual(pull?.command, TRUE_COMMAND);

    const ctd = await startContainerd();
    t.after(() => ctd.stop());
    await importLayout(ctd, noShell.dir, 'docker.io/hoist-test/no-shell', work);
    await importLayout(ctd, helper.dir, 'docker.io/hoist-test/helper', work);

    // The emptyDir, as the kubelet makes it (mode 0777), written by the helper's own command.
    const emptyDir = join(work, 'empty-dir');
    await mkdir(emptyDir);
    await chmod(emptyDir, 0o777);
    const mount = (options: string) => `type=bind,src=${emptyDir},dst=${HELPER_BIN_DIR},options=${options}`;
    await ctd.ctr([
      ...['run', '--rm', '--read-only', '--mount', mount('rbind:rw')],
      ...[`docker.io/hoist-test/helper:1.36`, `hoist-copy-${process.pid}`, ...(copy?.command ?? [])],
    ]);
    const copied = join(emptyDir, 'true');
    assert.deepEqual(await readFile(copied), await readFile(busybox), 'the helper copied its busybox');
    assert.ok(((await stat(copied)).mode & 0o111) === 0o111, 'executable by the pod user');

    // The pull's init container, exactly as rendered: read-only root, cwd and mount as in the pod.
    const ok = await ctd.ctr([
      ...['run', '--rm', '--read-only', '--cwd', pull?.workingDir ?? '/', '--mount', mount('rbind:ro')],
      ...['docker.io/hoist-test/no-shell:v1', `hoist-true-${process.pid}`, ...(pull?.command ?? [])],
    ]);
    assert.equal(ok.stdout, '');

    // The guide's trick on the same image.
    await assert.rejects(
      ctd.ctr([
        'run',
        '--rm',
        'docker.io/hoist-test/no-shell:v1',
        `hoist-sh-${process.pid}`,
        'sh',
        '-c',
        'true',
      ]),
      /exec: "sh": executable file not found/,
    );
  });
});
