// `hoist node configure` + `hoist node pull` against a real containerd: the hosts.toml Hoist wrote
// sends the CRI pull through Hoist's mirror (in front of a real docker-registry), the mirror's
// logs and metrics show it served every layer, ListImages shows the image, a second pull is a
// no-op, and a pull over the disk high-water mark is refused with the reason.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ConfigPathCheck, FileResult, PullReport } from '../src/node/index.js';
import { runHoist, runHoistJson } from './helpers/cri.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

describe('hoist node configure + pull through containerd CRI', () => {
  it('pulls through the mirror, skips a present image, refuses over the disk mark', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const work = await testTempDir(t, 'hoist-node-pull-');
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const app = await buildImage(join(work, 'app'), {
      tag: 'v1',
      layers: [
        { files: [{ path: 'a.bin', size: 1_200_000, seed: 'node-a' }] },
        { files: [{ path: 'b.bin', size: 400_000, seed: 'node-b' }] },
      ],
    });
    await pushImage(app.dir, 'v1', `${registry.host}/team/app:v1`);
    const other = await buildImage(join(work, 'other'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'c.bin', size: 300_000, seed: 'node-c' }] }],
    });
    await pushImage(other.dir, 'v1', `${registry.host}/team/other:v1`);

    const { mirror, ctd, cri, mirrorFlags, nodeFlags } = await startMirroredCriNode(t, registry, {
      criStatsCollectPeriodSeconds: 1,
    });

    // configure: the test containerd's config_path is its hosts dir, so the check passes.
    const configured = await runHoistJson<{ files: FileResult[]; containerdConfig: ConfigPathCheck }>([
      'node',
      'configure',
      ...mirrorFlags,
    ]);
    assert.equal(configured.code, 0, configured.stderr);
    assert.equal(configured.json.containerdConfig.status, 'ok', configured.json.containerdConfig.message);
    assert.deepEqual(
      configured.json.files.map((f) => [f.path, f.action]),
      [[join(ctd.hostsDir, registry.host, 'hosts.toml'), 'created']],
    );

    // The same check fails, with what to add, against a config without config_path.
    const wrong = await runHoist([
      'node',
      'configure',
      '--mirror',
      mirror.url,
      '--registries',
      registry.host,
      '--certs-dir',
      join(work, 'elsewhere'),
      '--containerd-config',
      ctd.configPath,
      '--dry-run',
    ]);
    assert.equal(wrong.code, 0);
    assert.match(wrong.stderr, /^hoist: warning: containerd reads hosts\.toml from .* not .*elsewhere/m);
    assert.match(wrong.stdout, /\[host\."http:\/\/127\.0\.0\.1:\d+"\]/, '--dry-run prints the file');

    const ref = `${registry.host}/team/app:v1`;
    const pulled = await runHoistJson<{ images: PullReport[] }>(['node', 'pull', ...nodeFlags, ref]);
    assert.equal(pulled.code, 0, pulled.stderr);
    const report = pulled.json.images[0];
    assert.ok(report?.ok, JSON.stringify(report));
    assert.equal(report.alreadyPresent, false);
    assert.equal(report.mirror?.url, mirror.url, 'mirror found from the hosts.toml Hoist wrote');
    assert.equal(report.mirror?.served, true);
    const layerBytes = app.manifests[0]!.layers.reduce((n, l) => n + l.size, 0);
    assert.ok(
      (report.mirror?.servedBytes ?? 0) >= layerBytes,
      `mirror served ${report.mirror?.servedBytes} >= ${layerBytes}`,
    );
    // What it added to the content store: 2 layers, plus the manifest and config blobs.
    const m = app.manifests[0]!;
    assert.deepEqual(report.downloaded, {
      blobs: 4,
      layers: 2,
      bytes: layerBytes + m.manifest.size + m.config.size,
    });

    // The mirror's own log: every layer served to containerd with ns naming the registry.
    const served = mirror
      .logs()
      .filter((l) => l.msg === 'request' && l.status === 200 && l.upstream === registry.host);
    for (const layer of app.manifests[0]!.layers) {
      assert.ok(
        served.some(
          (l) => String(l.path).includes(`/blobs/${layer.digest}`) && String(l.path).includes('ns='),
        ),
        `mirror served ${layer.digest}`,
      );
    }
    assert.ok(
      registry.accessLog().every((e) => !e.userAgent.startsWith('containerd/')),
      'no fallback to the registry',
    );

    // ListImages over CRI shows it under its tag, with the ID PullImage returned.
    const images = await cri.listImages();
    const listed = images.find((i) => i.repoTags.includes(ref));
    assert.ok(listed, `ListImages has ${ref}: ${JSON.stringify(images)}`);
    assert.equal(listed.id, report.imageRef);

    // Second pull: present, so no pull and nothing asked of the mirror.
    const servedBefore = await mirror.metric('hoist_mirror_served_bytes_total');
    const requestsBefore = await mirror.metric('hoist_mirror_requests_total');
    const again = await runHoist(['node', 'pull', ...nodeFlags, ref]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      new RegExp(`^${ref.replace(/[.]/g, '\\.')}: already present .* not pulled$`, 'm'),
    );
    assert.equal(await mirror.metric('hoist_mirror_served_bytes_total'), servedBefore);
    assert.equal(await mirror.metric('hoist_mirror_requests_total'), requestsBefore);

    // Disk mark: once ImageFsInfo counts the unpacked snapshots, a 1-byte mark is exceeded.
    await waitUntil('ImageFsInfo to count the pulled image', async () => {
      const fs = await cri.imageFsInfo();
      return (fs[0]?.usedBytes ?? 0) > 0;
    });
    const otherRef = `${registry.host}/team/other:v1`;
    const refused = await runHoistJson<{ images: PullReport[] }>([
      'node',
      'pull',
      ...nodeFlags,
      '--disk-high-water',
      '1',
      otherRef,
    ]);
    assert.equal(refused.code, 1);
    assert.equal(refused.json.images[0]?.error?.code, 'DISK_HIGH_WATER');
    assert.match(
      refused.stderr,
      /^hoist: .*team\/other:v1: image filesystem .* at or over the high-water mark of 1 bytes; free space or raise --disk-high-water$/m,
    );
    assert.equal(await cri.imageStatus(otherRef), undefined, 'not pulled');
    assert.ok(
      !mirror.logs().some((l) => l.msg === 'request' && String(l.path).includes('/team/other/')),
      'the mirror was never asked for it',
    );

    // Under the mark it pulls.
    const ok = await runHoist(['node', 'pull', ...nodeFlags, '--disk-high-water', '1TiB', otherRef]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(
      ok.stdout,
      /team\/other:v1: pulled .* in [\d.]+s, downloaded 1 layers \(.* in 3 blobs\), mirror http:\/\/127\.0\.0\.1:\d+ served/,
    );

    // unconfigure puts the hosts dir back as it was (empty).
    const un = await runHoist(['node', 'unconfigure', '--certs-dir', ctd.hostsDir]);
    assert.equal(un.code, 0, un.stderr);
    assert.match(un.stdout, /^removed: .*hosts\.toml$/m);
  });

  it('bad input exits 2 with one line', TIMEOUT, async () => {
    for (const [args, pattern] of [
      [['node', 'pull', '--runtime-endpoint', 'tcp://127.0.0.1:1', 'x'], /not a unix socket/],
      [
        ['node', 'pull', '--runtime-endpoint', 'unix:///nonexistent/c.sock', 'x'],
        /no runtime socket at \/nonexistent\/c\.sock/,
      ],
      [['node', 'pull', '--runtime-endpoint', 'unix:///x', 'UPPER/Case'], /invalid repository/],
      [['node', 'pull', '--disk-high-water', '120%', 'x'], /--disk-high-water: .*percentage/],
      [
        ['node', 'configure', '--mirror', 'ftp://x', '--certs-dir', '/nonexistent'],
        /--mirror "ftp:\/\/x" must be an http/,
      ],
      [
        ['node', 'configure', '--mirror', 'http://m', '--registries', 'a b'],
        /--registries: "a b" is not a registry host/,
      ],
      [['node', 'pull', '--output', 'yaml', 'x'], /--output must be text or json/],
    ] as const) {
      const res = await runHoist([...args]);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, pattern);
      assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    }
  });
});
