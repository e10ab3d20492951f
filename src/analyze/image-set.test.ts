import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeImageSet, type ImageInfo, type LayerInfo } from './image-set.js';
import { lazyPullDecision, LAZY_PULL_MIN_BYTES } from './lazy-pull-policy.js';

const layer = (id: string, size: number, createdBy: string | null = null): LayerInfo => ({
  digest: `sha256:${id.repeat(64).slice(0, 64)}`,
  size,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  uncompressedSize: size * 2,
  createdBy,
});

const image = (ref: string, layers: LayerInfo[], extra: Partial<ImageInfo> = {}): ImageInfo => ({
  ref,
  repository: ref.slice(0, ref.lastIndexOf(':')),
  digest: `sha256:${'0'.repeat(64)}`,
  manifestDigest: `manifest-of-${ref}`,
  platform: 'linux/amd64',
  created: null,
  layers,
  lazy: false,
  baseName: null,
  ...extra,
});

describe('image set analysis', () => {
  it('counts a layer once however many images hold it', () => {
    const os = layer('a', 1000);
    const r = analyzeImageSet([
      image('x:1', [os, layer('b', 10)]),
      image('y:1', [os, layer('c', 20)]),
      image('z:1', [os]),
    ]);
    assert.equal(r.naiveBytes, 3030);
    assert.equal(r.uniqueBytes, 1030);
    assert.deepEqual(
      r.images.map((i) => [i.compressedBytes, i.uniqueToImageBytes, i.uncompressedBytes]),
      [
        [1010, 10, 2020],
        [1020, 20, 2040],
        [1000, 0, 2000],
      ],
    );
    assert.equal(r.sharedLayers[0]?.images.length, 3);
  });

  it('names the dependency layer that changes on every build because the source is copied first', () => {
    const base = [layer('a', 100, 'ADD file:os in /')];
    const r = analyzeImageSet([
      image('ghcr.io/o/api:v1', [
        ...base,
        layer('b', 5, 'COPY . /app # buildkit'),
        layer('c', 500, 'RUN /bin/sh -c pip install -r requirements.txt # buildkit'),
      ]),
      image('ghcr.io/o/api:v2', [
        ...base,
        layer('d', 6, 'COPY . /app # buildkit'),
        layer('e', 501, 'RUN /bin/sh -c pip install -r requirements.txt # buildkit'),
      ]),
    ]);
    assert.deepEqual(
      r.changes.map((c) => [
        c.from,
        c.to,
        c.changedLayers.map((l) => l.index),
        c.changedBytes,
        c.reusedBytes,
      ]),
      [['ghcr.io/o/api:v1', 'ghcr.io/o/api:v2', [1, 2], 507, 100]],
    );
    const advice = r.advice.find((a) => a.topic === 'changing-layers');
    assert.match(advice?.fix ?? '', /dependency layer .*pip install.* changes on every build/);
  });

  it('groups by common base and advises standardising on the largest group', () => {
    const debian = layer('d', 50_000_000, 'ADD debian in /');
    const py = layer('p', 40_000_000, 'RUN apt-get install python3');
    const r = analyzeImageSet([
      image('a:1', [debian, py, layer('1', 1)]),
      image('b:1', [debian, py, layer('2', 1)]),
      image('c:1', [layer('u', 30_000_000, 'ADD ubuntu in /'), layer('3', 1)]),
    ]);
    assert.deepEqual(
      r.groups.map((g) => [g.images, g.baseLayers.length, g.baseBytes]),
      [
        [['a:1', 'b:1'], 2, 90_000_000],
        [['c:1'], 1, 30_000_000],
      ],
    );
    const advice = r.advice.find((a) => a.topic === 'standardise-bases');
    assert.match(
      advice?.fix ?? '',
      /standardise on the base of a:1, b:1: rebuilding c:1 on it saves up to 30\.0 MB/,
    );
  });

  it('lazy pulling: over 5 GB yes, under no, small eStargz images are called out', () => {
    assert.equal(lazyPullDecision(LAZY_PULL_MIN_BYTES + 1).recommended, true);
    assert.equal(lazyPullDecision(LAZY_PULL_MIN_BYTES - 1).recommended, false);
    assert.deepEqual(lazyPullDecision(6e9, true), {
      recommended: true,
      convert: false,
      reason: 'already eStargz: lazy-pullable',
    });
    const r = analyzeImageSet([
      image('big:1', [layer('a', 6e9)]),
      image('small:1', [layer('b', 1e8)], { lazy: true }),
    ]);
    assert.deepEqual(
      r.images.map((i) => i.lazyPull.recommended),
      [true, false],
    );
    const lazy = r.advice.filter((a) => a.topic === 'lazy-pull').map((a) => a.message);
    assert.equal(lazy.length, 2);
    assert.match(lazy[0] ?? '', /big:1 \(6\.0 GB\) is over 5 GB/);
    assert.match(lazy[1] ?? '', /small:1 is eStargz but under 5 GB/);
  });
});
