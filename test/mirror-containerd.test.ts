// containerd pulling through Hoist's mirror, chosen by a hosts.toml mirror entry: containerd
// sends ?ns=<registry>, the mirror routes by it and serves every manifest and blob, and the
// upstream registry only ever sees the mirror.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startContainerd, writeHostsToml } from './helpers/containerd.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 180_000 };

describe('containerd through the mirror', () => {
  it(
    'pulls an image and a multi-platform index via hosts.toml, served by the mirror with ns',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const work = await testTempDir(t, 'hoist-ctd-');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const app = await buildImage(join(work, 'app'), {
        tag: 'v1',
        layers: [
          { files: [{ path: 'a.bin', size: 1_500_000, seed: 'ctd-a' }] },
          { files: [{ path: 'b.bin', size: 300_000, seed: 'ctd-b' }] },
        ],
      });
      await pushImage(app.dir, 'v1', `${registry.host}/team/app:v1`);
      const multi = await buildImage(join(work, 'multi'), {
        tag: 'v1',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        layers: [{ files: [{ path: 'm.bin', size: 200_000, seed: 'ctd-m' }] }],
      });
      await pushImage(multi.dir, 'v1', `${registry.host}/team/multi:v1`, { all: true });

      // The mirror's default upstream is something else: only ns can send these requests to the registry.
      const mirror = await startMirror(
        { [registry.host]: registry.url, 'docker.io': 'http://127.0.0.1:9' },
        { defaultUpstream: 'docker.io' },
      );
      t.after(() => mirror.close());
      const ctd = await startContainerd();
      t.after(() => ctd.stop());
      await writeHostsToml(ctd.hostsDir, registry.host, registry.url, [mirror.url]);

      for (const [ref, image] of [
        [`${registry.host}/team/app:v1`, app],
        [`${registry.host}/team/multi:v1`, multi],
      ] as const) {
        await ctd.ctr(['images', 'pull', '--hosts-dir', ctd.hostsDir, ref]);
        const { stdout } = await ctd.ctr(['images', 'ls']);
        const line = stdout.split('\n').find((l) => l.startsWith(`${ref} `));
        assert.ok(line?.includes(image.digest), `ctr lists ${ref} at ${image.digest}: ${line}`);
      }

      const requests = mirror.logs().filter((l) => l.msg === 'request');
      const served = requests.filter((l) => l.upstream === registry.host && l.status === 200);
      assert.ok(
        served.some((l) => String(l.path).includes('ns=')),
        'containerd named the registry with ns',
      );
      // Every layer containerd stored came through the mirror, and the registry saw only the mirror.
      for (const m of [...app.manifests, multi.manifests.find((x) => x.platform.architecture === 'amd64')]) {
        assert.ok(m);
        for (const layer of m.layers) {
          assert.ok(
            served.some((l) => String(l.path).includes(`/blobs/${layer.digest}`)),
            `mirror served ${layer.digest}`,
          );
          const entry = await registry.waitForAccess(
            (e) => e.method === 'GET' && e.path.endsWith(layer.digest),
          );
          assert.equal(entry.userAgent, 'hoist-mirror');
        }
      }
      assert.ok(
        registry.accessLog().every((e) => !e.userAgent.startsWith('containerd/')),
        'containerd never had to fall back to the registry',
      );
    },
  );
});
