import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerdImage, ImageRecordStore } from './containerd-images.js';
import { CriError } from './errors.js';
import { ImagePins } from './image-pins.js';
import { parseRuntimeEndpoint, resolveRuntimeSocket } from './endpoint.js';
import { PullProgress } from './pull-progress.js';

describe('runtime endpoint', () => {
  it("takes crictl's unix:// form or a path, and refuses anything else", () => {
    assert.equal(
      parseRuntimeEndpoint('unix:///run/containerd/containerd.sock'),
      '/run/containerd/containerd.sock',
    );
    assert.equal(parseRuntimeEndpoint('/run/crio/crio.sock'), '/run/crio/crio.sock');
    for (const bad of ['tcp://127.0.0.1:1', 'unix://relative.sock', 'relative.sock', 'npipe:////./pipe/x']) {
      assert.throws(
        () => parseRuntimeEndpoint(bad),
        (e: unknown) => e instanceof CriError && e.code === 'ENDPOINT_INVALID',
      );
    }
  });

  it('finds the first default socket that exists', () => {
    assert.equal(
      resolveRuntimeSocket(undefined, (p) => p === '/run/crio/crio.sock'),
      '/run/crio/crio.sock',
    );
    assert.equal(
      resolveRuntimeSocket(undefined, () => true),
      '/run/containerd/containerd.sock',
    );
    assert.throws(
      () => resolveRuntimeSocket(undefined, () => false),
      (e: unknown) => e instanceof CriError && e.code === 'NO_RUNTIME_SOCKET',
    );
    assert.throws(
      () => resolveRuntimeSocket('unix:///x.sock', () => false),
      /no runtime socket at \/x\.sock/,
    );
  });
});

describe('pull progress from content ingests', () => {
  it('counts layers and bytes; a vanished ingest is a finished layer', () => {
    const p = new PullProgress();
    p.observe([
      { ref: 'k8s.io/1/manifest-sha256:m', offset: 10, total: 10, expected: 'sha256:m' },
      { ref: 'k8s.io/1/layer-sha256:a', offset: 100, total: 1000, expected: 'sha256:a' },
      { ref: 'k8s.io/1/layer-sha256:b', offset: 0, total: 500, expected: 'sha256:b' },
    ]);
    assert.deepEqual(p.snapshot(), { layersSeen: 2, layersDone: 0, bytes: 100, totalBytes: 1500 });
    const snap = p.observe([
      { ref: 'k8s.io/1/layer-sha256:b', offset: 200, total: 500, expected: 'sha256:b' },
    ]);
    assert.deepEqual(snap, { layersSeen: 2, layersDone: 1, bytes: 1200, totalBytes: 1500 });
    assert.deepEqual(p.observe([]), { layersSeen: 2, layersDone: 2, bytes: 1500, totalBytes: 1500 });
  });
});

/** An in-memory containerd image store with its filter subset: target.digest==D, labels."K"==V. */
class MemoryImages implements ImageRecordStore {
  readonly records = new Map<string, ContainerdImage>();
  readonly updates: string[] = [];
  add(name: string, digest: string, labels: Record<string, string> = {}): void {
    this.records.set(name, { name, labels, target: { mediaType: 'm', digest, size: 1 } });
  }
  async get(name: string) {
    const r = this.records.get(name);
    return r ? structuredClone(r) : undefined;
  }
  async list(filters: string[] = []) {
    const match = (r: ContainerdImage, f: string) => {
      const target = /^target\.digest==(.+)$/.exec(f);
      if (target) return r.target.digest === target[1];
      const label = /^labels\.("[^"]+")==(.+)$/.exec(f);
      if (label) return r.labels[JSON.parse(label[1]!) as string] === label[2];
      throw new Error(`filter ${f}`);
    };
    return [...this.records.values()]
      .filter((r) => filters.length === 0 || filters.some((f) => match(r, f)))
      .map((r) => structuredClone(r));
  }
  async setLabels(image: ContainerdImage, labels: Record<string, string | undefined>) {
    const r = this.records.get(image.name)!;
    for (const [k, v] of Object.entries(labels)) {
      if (v === undefined) delete r.labels[k];
      else r.labels[k] = v;
    }
    this.updates.push(image.name);
    return structuredClone(r);
  }
}

describe('image pins', () => {
  const PINNED = 'io.cri-containerd.pinned';
  const MARK = 'hoist.dev/pinned';

  it("labels every record of the image's target, and unpin removes only Hoist's pins", async () => {
    const store = new MemoryImages();
    store.add('r/a:v1', 'sha256:m');
    store.add('r/a@sha256:m', 'sha256:m');
    store.add('sha256:id', 'sha256:m');
    store.add('r/other:v1', 'sha256:o');
    const pins = new ImagePins(store);
    const out = await pins.pin('r/a:v1');
    assert.deepEqual(out.changed, ['r/a:v1', 'r/a@sha256:m', 'sha256:id']);
    for (const name of out.changed) {
      assert.deepEqual(store.records.get(name)?.labels, { [PINNED]: 'pinned', [MARK]: 'true' });
    }
    assert.deepEqual(store.records.get('r/other:v1')?.labels, {});
    assert.deepEqual((await pins.pin('r/a:v1')).changed, [], 'idempotent');
    assert.deepEqual((await pins.unpin('r/a@sha256:m')).changed, ['r/a:v1', 'r/a@sha256:m', 'sha256:id']);
    for (const name of out.changed) assert.deepEqual(store.records.get(name)?.labels, {});
    assert.deepEqual(await pins.pin('r/missing:v1'), { records: [], changed: [], foreign: [] });
  });

  it("never takes over nor removes somebody else's pin", async () => {
    const store = new MemoryImages();
    store.add('r/a:v1', 'sha256:m', { [PINNED]: 'pinned' });
    store.add('r/a@sha256:m', 'sha256:m');
    const pins = new ImagePins(store);
    const out = await pins.pin('r/a:v1');
    assert.deepEqual(out.foreign, ['r/a:v1']);
    assert.deepEqual(out.changed, ['r/a@sha256:m']);
    const un = await pins.unpin('r/a:v1');
    assert.deepEqual(un.changed, ['r/a@sha256:m']);
    assert.deepEqual(un.foreign, ['r/a:v1']);
    assert.deepEqual(store.records.get('r/a:v1')?.labels, { [PINNED]: 'pinned' }, 'still pinned');
  });

  it('sweeps Hoist pins from every target not kept', async () => {
    const store = new MemoryImages();
    store.add('r/keep:v1', 'sha256:k');
    store.add('r/old:v1', 'sha256:o');
    const pins = new ImagePins(store);
    await pins.pin('r/keep:v1');
    await pins.pin('r/old:v1');
    const out = await pins.unpinAllExcept(new Set(['sha256:k']));
    assert.deepEqual(out.changed, ['r/old:v1']);
    assert.deepEqual(
      (await pins.pinnedByHoist()).map((r) => r.name),
      ['r/keep:v1'],
    );
  });
});
