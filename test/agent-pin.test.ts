// Pinning against a real containerd: Hoist labels every record of an image (tag, repo@digest,
// sha256:<id>) io.cri-containerd.pinned=pinned with its own marker beside it, through containerd's
// native image service on the CRI socket; unpinning removes only the pins Hoist set. containerd
// 1.6 (Debian) keeps the labels but its CRI reports no pins: there the labels are checked with
// ctr. containerd 2.x reports them: there CRI ListImages/ImageStatus must say pinned.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ContainerdImages, ImagePins } from '../src/cri/index.js';
import { writeHostsToml } from './helpers/containerd.js';
import { startCriNode } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

/** `ctr -n k8s.io images ls` as name -> labels. */
async function ctrLabels(
  ctr: (args: string[], o?: { namespace?: string }) => Promise<{ stdout: string }>,
): Promise<Map<string, Record<string, string>>> {
  const { stdout } = await ctr(['images', 'ls'], { namespace: 'k8s.io' });
  const out = new Map<string, Record<string, string>>();
  for (const line of stdout.trim().split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    const labels: Record<string, string> = {};
    const last = cols.at(-1) ?? '';
    if (last !== '-') {
      for (const pair of last.split(',')) {
        const [k, v] = pair.split('=');
        if (k && v !== undefined) labels[k] = v;
      }
    }
    out.set(cols[0]!, labels);
  }
  return out;
}

describe('image pins on containerd', () => {
  it(
    'labels every record of the image and removes only its own pins (containerd 1.6)',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const work = await testTempDir(t, 'hoist-agent-pin-');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const refs: string[] = [];
      for (const name of ['mine', 'theirs']) {
        const img = await buildImage(join(work, name), {
          tag: 'v1',
          layers: [{ files: [{ path: `${name}.bin`, size: 50_000, seed: `pin-${name}` }] }],
        });
        await pushImage(img.dir, 'v1', `${registry.host}/pin/${name}:v1`);
        refs.push(`${registry.host}/pin/${name}:v1`);
      }
      const [mine, theirs] = refs as [string, string];
      const { ctd, cri } = await startCriNode(t);
      await writeHostsToml(ctd.hostsDir, registry.host, registry.url, []);
      for (const ref of refs) await cri.pullImage(ref);
      const images = new ContainerdImages({ socket: ctd.socket });
      t.after(() => images.close());
      const pins = new ImagePins(images);

      const status = await cri.imageStatus(mine);
      assert.ok(status);
      const records = [mine, status.repoDigests[0]!, status.id];
      const out = await pins.pin(mine);
      assert.deepEqual([...out.changed].sort(), [...records].sort(), 'tag, repo@digest and sha256:<id>');
      let labels = await ctrLabels(ctd.ctr);
      for (const name of records) {
        assert.equal(labels.get(name)?.['io.cri-containerd.pinned'], 'pinned', name);
        assert.equal(labels.get(name)?.['hoist.dev/pinned'], 'true', name);
        assert.equal(labels.get(name)?.['io.cri-containerd.image'], 'managed', 'other labels stay');
      }

      // Somebody else pins the other image's tag with ctr: Hoist neither marks nor removes it.
      await ctd.ctr(['images', 'label', theirs, 'io.cri-containerd.pinned=pinned'], { namespace: 'k8s.io' });
      const theirsOut = await pins.pin(theirs);
      assert.deepEqual(theirsOut.foreign, [theirs]);
      const removed = await pins.unpin(theirs);
      assert.deepEqual(removed.foreign, [theirs]);
      labels = await ctrLabels(ctd.ctr);
      assert.equal(labels.get(theirs)?.['io.cri-containerd.pinned'], 'pinned', 'their pin stays');
      assert.equal(labels.get(theirs)?.['hoist.dev/pinned'], undefined);

      // A sweep keeping nothing removes Hoist's pins only.
      const swept = await pins.unpinAllExcept(new Set());
      assert.deepEqual([...swept.changed].sort(), [...records].sort());
      labels = await ctrLabels(ctd.ctr);
      for (const name of records) {
        assert.equal(labels.get(name)?.['io.cri-containerd.pinned'], undefined, name);
        assert.equal(labels.get(name)?.['hoist.dev/pinned'], undefined, name);
      }
      assert.equal(labels.get(theirs)?.['io.cri-containerd.pinned'], 'pinned');
    },
  );

  it(
    'CRI reports the image pinned after pin and unpinned after unpin (containerd 2.x)',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      if (!requireGoPeer(t, 'containerd2', 'ctr2')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const work = await testTempDir(t, 'hoist-agent-pin2-');
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const img = await buildImage(join(work, 'app'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'app.bin', size: 50_000, seed: 'pin2' }] }],
      });
      const ref = `${registry.host}/pin/app:v1`;
      await pushImage(img.dir, 'v1', ref);
      const { ctd, cri } = await startCriNode(t, { flavor: '2.x' });
      await writeHostsToml(ctd.hostsDir, registry.host, registry.url, []);
      await cri.pullImage(ref);
      const images = new ContainerdImages({ socket: ctd.socket });
      t.after(() => images.close());
      const pins = new ImagePins(images);
      const listed = async () => (await cri.listImages()).find((i) => i.repoTags.includes(ref))?.pinned;
      assert.equal((await cri.imageStatus(ref))?.pinned, false);
      assert.equal(await listed(), false);

      const out = await pins.pin(ref);
      assert.equal(out.changed.length, 3, JSON.stringify(out));
      // The CRI plugin updates its image cache from containerd's image events: a moment later.
      await waitUntil(
        'CRI ImageStatus to report the pin',
        async () => (await cri.imageStatus(ref))?.pinned === true,
      );
      assert.equal(await listed(), true, 'ListImages reports it too');
      const labels = await ctrLabels(ctd.ctr);
      assert.equal(labels.get(ref)?.['hoist.dev/pinned'], 'true');

      await pins.unpin(ref);
      await waitUntil(
        'CRI ImageStatus to report the unpin',
        async () => (await cri.imageStatus(ref))?.pinned === false,
      );
      assert.equal(await listed(), false);
    },
  );
});
