// `hoist analyze images` against a real docker-registry holding images that share a base: sizes,
// shared and unique bytes computed here, independently, from what the image builder wrote.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hoist } from './analyze-helpers.js';
import { buildImage, pushImage, type BuiltImage, type LayerSpec } from './helpers/images.js';
import { findBinary, removeTempDir, requirePeers, tempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

const layer = (seed: string, size: number): LayerSpec => ({
  files: [{ path: `${seed}/data.bin`, size, seed }],
});
const OS = layer('os', 400_000);
const RUNTIME = layer('runtime', 300_000);

interface JsonLayer {
  digest: string;
  size: number;
  uncompressedSize: number | null;
  sharedWith: number;
}
interface JsonImage {
  ref: string;
  digest: string;
  manifestDigest: string;
  platform: string;
  compressedBytes: number;
  uncompressedBytes: number | null;
  layers: JsonLayer[];
}
interface JsonReport {
  images: JsonImage[];
  naiveBytes: number;
  uniqueBytes: number;
  sharedLayers: Array<{ digest: string; images: string[] }>;
  groups: Array<{ baseLayers: string[]; images: string[] }>;
  changes: Array<{ from: string; to: string; changedLayers: Array<{ index: number; digest: string }> }>;
  advice: Array<{ topic: string }>;
}

describe('hoist analyze images', () => {
  let work = '';
  let registry: RegistryPeer | undefined;
  const built = new Map<string, BuiltImage>();
  let ready = false;

  before(async () => {
    if (!findBinary('docker-registry') || !findBinary('skopeo')) return;
    work = await tempDir('hoist-analyze-images-');
    registry = await startRegistry();
    const specs: Array<[string, LayerSpec[]]> = [
      ['api:v1', [OS, RUNTIME, layer('api-1', 200_000)]],
      ['api:v2', [OS, RUNTIME, layer('api-2', 210_000)]],
      ['worker:v1', [OS, RUNTIME, layer('worker', 150_000)]],
      ['other:v1', [layer('other-os', 350_000), layer('other-app', 100_000)]],
    ];
    for (const [name, layers] of specs) {
      const [repo = '', tag = ''] = name.split(':');
      const image = await buildImage(join(work, repo), { tag, layers });
      await pushImage(image.dir, tag, `${registry.host}/test/${name}`, { preserveDigests: true });
      built.set(`${registry.host}/test/${name}`, image);
    }
    const multi = await buildImage(join(work, 'multi'), {
      tag: 'v1',
      layers: [OS],
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    await pushImage(multi.dir, 'v1', `${registry.host}/test/multi:v1`, { all: true, preserveDigests: true });
    built.set(`${registry.host}/test/multi:v1`, multi);
    ready = true;
  });

  after(async () => {
    await registry?.stop();
    if (work) await removeTempDir(work);
  });

  it('reports sizes, shared and unique bytes, base groups and changed layers', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    assert.ok(ready && registry);
    const refs = ['api:v1', 'api:v2', 'worker:v1', 'other:v1'].map((n) => `${registry?.host}/test/${n}`);
    const res = await hoist(['analyze', 'images', '--output', 'json', ...refs]);
    assert.equal(res.code, 0, res.stderr);
    const report = JSON.parse(res.stdout) as JsonReport;

    // Expected values from the builder's own record of each layer.
    const layersOf = (ref: string) => built.get(ref)?.manifests[0]?.layers ?? [];
    const naive = refs.reduce((n, r) => n + layersOf(r).reduce((m, l) => m + l.size, 0), 0);
    const distinct = new Map(refs.flatMap((r) => layersOf(r).map((l) => [l.digest, l.size] as const)));
    const unique = [...distinct.values()].reduce((n, s) => n + s, 0);
    assert.equal(report.naiveBytes, naive);
    assert.equal(report.uniqueBytes, unique);
    assert.ok(unique < naive);

    assert.deepEqual(
      report.images.map((i) => i.ref),
      refs,
    );
    for (const img of report.images) {
      const b = built.get(img.ref);
      assert.equal(img.digest, b?.digest);
      assert.equal(img.manifestDigest, b?.manifests[0]?.manifest.digest);
      const expected = layersOf(img.ref);
      assert.deepEqual(
        img.layers.map((l) => [l.digest, l.size, l.uncompressedSize]),
        expected.map((l) => [l.digest, l.size, l.uncompressedSize]),
      );
      assert.equal(
        img.compressedBytes,
        expected.reduce((n, l) => n + l.size, 0),
      );
      assert.equal(
        img.uncompressedBytes,
        expected.reduce((n, l) => n + l.uncompressedSize, 0),
      );
    }

    const [apiV1, apiV2, worker, other] = refs.map(layersOf);
    const base = [apiV1?.[0]?.digest, apiV1?.[1]?.digest];
    assert.deepEqual(report.sharedLayers.map((l) => l.digest).sort(), [...base].sort());
    assert.equal(report.images[2]?.layers[0]?.sharedWith, 2);
    assert.equal(report.images[3]?.layers[0]?.sharedWith, 0);
    assert.deepEqual(
      report.groups.map((g) => [g.images.length, g.baseLayers]),
      [
        [3, base],
        [1, [other?.[0]?.digest]],
      ],
    );
    assert.deepEqual(report.changes, [
      {
        repository: `${registry?.host}/test/api`,
        from: refs[0],
        to: refs[1],
        changedLayers: [
          { index: 2, digest: apiV2?.[2]?.digest, size: apiV2?.[2]?.size, createdBy: 'hoist test helper' },
        ],
        changedBytes: apiV2?.[2]?.size,
        reusedBytes: (apiV2?.[0]?.size ?? 0) + (apiV2?.[1]?.size ?? 0),
      },
    ]);
    assert.ok(worker);
    assert.deepEqual(report.advice.map((a) => a.topic).sort(), [
      'changing-layers',
      'sharing',
      'standardise-bases',
    ]);
  });

  it('reads the requested platform of a multi-platform image', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const ref = `${registry?.host}/test/multi:v1`;
    const b = built.get(ref);
    const res = await hoist(['analyze', 'images', '--output', 'json', '--platform', 'linux/arm64', ref]);
    assert.equal(res.code, 0, res.stderr);
    const [img] = (JSON.parse(res.stdout) as JsonReport).images;
    const arm = b?.manifests.find((m) => m.platform.architecture === 'arm64');
    assert.equal(img?.digest, b?.index?.digest);
    assert.equal(img?.manifestDigest, arm?.manifest.digest);
    assert.equal(img?.platform, 'linux/arm64');
    assert.deepEqual(
      img?.layers.map((l) => l.digest),
      arm?.layers.map((l) => l.digest),
    );

    const missing = await hoist(['analyze', 'images', '--platform', 'linux/s390x', ref]);
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /^hoist: .*has no linux\/s390x image \(it has linux\/amd64, linux\/arm64\); choose one with --platform\n$/,
    );
  });

  it(
    'fails with one line: exit 2 for a bad reference, 1 for an image the registry lacks',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const bad = await hoist(['analyze', 'images', 'UPPER/Case:!!']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^hoist: "UPPER\/Case:!!" is not an image reference: .+\n$/);
      const gone = await hoist(['analyze', 'images', `${registry?.host}/test/nope:v1`]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /^hoist: upstream answered 404 for manifest test\/nope:v1.*\n$/);
    },
  );
});
