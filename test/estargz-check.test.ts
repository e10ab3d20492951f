// `hoist convert --check` against the real peers: it accepts what Hoist writes and what the
// reference converter (`ctr-remote image convert --estargz --oci`, on a real containerd)
// writes, and rejects blobs corrupted in the registry's storage and TOC digests that do not
// match the layer annotation.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { startContainerd } from './helpers/containerd.js';
import { buildImage, pushImage } from './helpers/images.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { run } from './helpers/process.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';
import { getManifest, hoist } from './go/estargz-verifier.js';

const TIMEOUT = { timeout: 300_000 };
const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface CheckOutput {
  valid: boolean;
  manifests: Array<{
    layers: Array<{ digest: string; valid: boolean; error?: string; chunksVerified?: number }>;
  }>;
}

async function registry(t: TestContext): Promise<RegistryPeer> {
  const peer = await startRegistry();
  t.after(() => peer.stop());
  return peer;
}

async function sourceImage(t: TestContext, reg: RegistryPeer, repo: string): Promise<void> {
  const work = await testTempDir(t, 'hoist-esgz-check');
  await buildImage(join(work, 'layout'), {
    tag: 'v1',
    layers: [
      {
        files: [
          ...Array.from({ length: 50 }, (_, i) => ({ path: `srv/f${i}`, content: `content ${i}\n` })),
          { path: 'srv/large.bin', size: 3 * 1024 * 1024, seed: 'large' },
        ],
      },
      { files: [{ path: 'etc/conf', content: 'x=1\n' }] },
    ],
  });
  await pushImage(join(work, 'layout'), 'v1', `${reg.host}/${repo}:v1`);
}

async function check(ref: string): Promise<{ code: number | null; out: CheckOutput; stderr: string }> {
  const res = await hoist(['convert', '--check', ref, '--output', 'json']);
  return { code: res.code, out: JSON.parse(res.stdout || '{}') as CheckOutput, stderr: res.stderr };
}

/** Path of a blob in distribution's filesystem storage. */
function blobData(reg: RegistryPeer, digest: string): string {
  const hex = digest.slice(7);
  return join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

describe('hoist convert --check', () => {
  it('accepts what hoist convert writes and rejects a plain gzip image', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const reg = await registry(t);
    await sourceImage(t, reg, 'app');
    const conv = await hoist([
      'convert',
      `${reg.host}/app:v1`,
      `${reg.host}/app:esgz`,
      '--chunk-size',
      '524288',
    ]);
    assert.equal(conv.code, 0, conv.stderr);

    const good = await check(`${reg.host}/app:esgz`);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.out.valid, true);
    const layers = good.out.manifests[0]?.layers ?? [];
    assert.equal(layers.length, 2);
    // 51 small files + the landmark + 6 chunks of 512 KiB in the first layer
    assert.equal(layers[0]?.chunksVerified, 50 + 1 + 6);

    const plain = await check(`${reg.host}/app:v1`);
    assert.equal(plain.code, 1);
    assert.equal(plain.out.valid, false);
    assert.match(
      plain.out.manifests[0]?.layers[0]?.error ?? '',
      /no containerd\.io\/snapshot\/stargz\/toc\.digest/,
    );

    const text = await hoist(['convert', '--check', `${reg.host}/app:esgz`]);
    assert.match(text.stdout, /every layer is valid eStargz/);
  });

  it(
    'rejects a flipped byte in a stored layer and a TOC digest that is not the annotation',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const reg = await registry(t);
      await sourceImage(t, reg, 'app');
      assert.equal((await hoist(['convert', `${reg.host}/app:v1`, `${reg.host}/app:esgz`])).code, 0);
      const manifest = JSON.parse((await getManifest(reg.url, 'app', 'esgz')).body.toString()) as {
        layers: Layer[];
      };
      const [first, second] = manifest.layers;
      assert.ok(first && second);

      // A manifest whose annotation names another TOC digest (the other layer's).
      const lying = {
        ...manifest,
        layers: [
          { ...first, annotations: { ...first.annotations, [TOC_DIGEST]: second.annotations?.[TOC_DIGEST] } },
          second,
        ],
      };
      const put = await fetch(`${reg.url}/v2/app/manifests/lying`, {
        method: 'PUT',
        headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
        body: JSON.stringify(lying),
      });
      assert.equal(put.status, 201);
      const mismatch = await check(`${reg.host}/app:lying`);
      assert.equal(mismatch.code, 1);
      assert.match(
        mismatch.out.manifests[0]?.layers[0]?.error ?? '',
        /TOC digest is sha256:\w+, the layer's annotation says/,
      );
      assert.equal(mismatch.out.manifests[0]?.layers[1]?.valid, true);

      // Flip one byte in the middle of the first layer's payload, in the registry's own storage.
      const path = blobData(reg, first.digest);
      const data = await readFile(path);
      data[Math.floor(data.length / 3)]! ^= 0x55;
      await writeFile(path, data);
      const corrupt = await check(`${reg.host}/app:esgz`);
      assert.equal(corrupt.code, 1);
      assert.equal(corrupt.out.valid, false);
      assert.match(corrupt.out.manifests[0]?.layers[0]?.error ?? '', /digest|gzip/);
      assert.equal(corrupt.out.manifests[0]?.layers[1]?.valid, true);
    },
  );

  it('accepts what ctr-remote image convert --estargz --oci produces', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr-remote')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const reg = await registry(t);
    await sourceImage(t, reg, 'app');
    const ctd = await startContainerd();
    t.after(() => ctd.stop());
    const ctr = (args: string[]) =>
      run('ctr-remote', ['--address', ctd.socket, ...args], { timeoutMs: 180_000 });
    const src = `${reg.host}/app:v1`;
    const dst = `${reg.host}/app:ctr-esgz`;
    await ctr(['images', 'pull', '--plain-http', src]);
    await ctr(['images', 'convert', '--estargz', '--oci', src, dst]);
    await ctr(['images', 'push', '--plain-http', dst]);

    const manifest = JSON.parse((await getManifest(reg.url, 'app', 'ctr-esgz')).body.toString()) as {
      layers: Layer[];
    };
    assert.ok(
      manifest.layers.every((l) => l.annotations?.[TOC_DIGEST]),
      'ctr-remote annotated every layer',
    );
    const res = await check(dst);
    assert.equal(res.code, 0, JSON.stringify(res.out));
    assert.equal(res.out.valid, true);
    assert.ok((res.out.manifests[0]?.layers[0]?.chunksVerified ?? 0) > 50);
  });
});
