import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CriError } from './errors.js';
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
