// What the kubelet does with a pod's imagePullSecret: CRI PullImage with `auth` (username and
// password, no server address), containerd choosing Hoist's mirror from hosts.toml. The mirror
// has no credentials of its own: it challenges containerd, which answers with the pod's
// credentials, and the mirror uses them upstream. The registry sees only the mirror.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeHostsToml } from './helpers/containerd.js';
import { runHoist } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

for (const flavor of ['1.6', '2.x'] as const) {
  describe(`containerd ${flavor} pulling a private image over CRI through a mirror without credentials`, () => {
    it('pulls with the pod’s credentials through the mirror, and fails without them', TIMEOUT, async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd', 'containerd')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      if (flavor === '2.x' && !requireGoPeer(t, 'containerd2', 'ctr2')) return;
      const work = await testTempDir(t, 'hoist-pt-ctd-');
      const user = { username: 'puller', password: `pod-secret-${flavor}-x1` };
      const registry = await startRegistry({ htpasswd: user });
      t.after(() => registry.stop());
      const creds = `${user.username}:${user.password}`;
      const image = await buildImage(join(work, 'app'), {
        tag: 'v1',
        layers: [
          { files: [{ path: 'a.bin', size: 1_000_000, seed: `pt-ctd-${flavor}-a` }] },
          { files: [{ path: 'b.bin', size: 200_000, seed: `pt-ctd-${flavor}-b` }] },
        ],
      });
      const ref = `${registry.host}/private/app:v1`;
      await pushImage(image.dir, 'v1', ref, { creds });
      const other = await buildImage(join(work, 'other'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'o.bin', size: 50_000, seed: `pt-ctd-${flavor}-o` }] }],
      });
      const otherRef = `${registry.host}/private/other:v1`;
      await pushImage(other.dir, 'v1', otherRef, { creds });
      const pushed = registry.accessLog().length;

      const { mirror, ctd, cri, nodeFlags } = await startMirroredCriNode(t, registry, { flavor });
      await writeHostsToml(ctd.hostsDir, registry.host, registry.url, [mirror.url]);

      // The kubelet's PullImageRequest: AuthConfig with username and password, ServerAddress empty.
      await cri.pullImage(ref, { auth: { username: user.username, password: user.password } });
      const status = await cri.imageStatus(ref);
      assert.ok(status, 'CRI knows the image');
      assert.ok(
        status.repoDigests.some((d) => d.endsWith(`@${image.digest}`)),
        status.repoDigests.join(),
      );
      const layers = image.manifests[0]?.layers ?? [];
      assert.equal(layers.length, 2);
      const served = mirror.logs().filter((l) => l.msg === 'request' && l.status === 200);
      for (const layer of layers) {
        const path = join(
          ctd.root,
          'io.containerd.content.v1.content',
          'blobs',
          'sha256',
          layer.digest.slice(7),
        );
        const blob = await readFile(path);
        assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, layer.digest);
        assert.ok(
          served.some((l) => String(l.path).includes(`/blobs/${layer.digest}`)),
          `the mirror served ${layer.digest}`,
        );
        await registry.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(layer.digest));
      }
      // containerd was challenged by the mirror (not by the registry) and answered it.
      assert.ok(
        mirror.logs().some((l) => l.msg === 'request' && l.status === 401),
        'the mirror challenged containerd',
      );
      // Everything the registry saw since the push came from the mirror.
      const seen = registry.accessLog().slice(pushed);
      assert.ok(seen.length > 0);
      assert.deepEqual([...new Set(seen.map((e) => e.userAgent))], ['hoist-mirror']);
      assert.ok(!JSON.stringify(mirror.logs()).includes(user.password), 'no password in the log');

      // Without the pod's credentials the pull fails (containerd then tries the registry itself,
      // which refuses it too).
      await assert.rejects(cri.pullImage(otherRef), /401|unauthorized|authoriz/i);

      // `hoist node pull --authfile` (a docker config.json) sends the same CRI auth.
      const authfile = join(work, 'config.json');
      const auth = Buffer.from(creds).toString('base64');
      await writeFile(authfile, JSON.stringify({ auths: { [registry.host]: { auth } } }));
      const before = mirror.logs().length;
      const pulled = await runHoist(['node', 'pull', ...nodeFlags, '--authfile', authfile, otherRef]);
      assert.equal(pulled.code, 0, pulled.stderr);
      const otherLayer = other.manifests[0]?.layers[0];
      assert.ok(otherLayer);
      assert.ok(
        mirror
          .logs()
          .slice(before)
          .some((l) => l.msg === 'request' && l.status === 200 && String(l.path).includes(otherLayer.digest)),
        'the mirror served the layer to hoist node pull',
      );
    });
  });
}
