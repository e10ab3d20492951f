// Issue 12: "a stopped mirror never stops pulls" (README), checked with a real containerd (Debian's
// 1.6, and the 2.x built from Go modules) pulling over CRI an image pushed to a real
// docker-registry, with hosts.toml naming a Hoist mirror first and the registry as `server`.
// Three mirror failures: stopped (connection refused), a layer body cut midway, and 500/503 for
// blobs. Whatever containerd does, the layers it stores must be byte-identical to the image's.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { writeHostsToml, type ContainerdPeer } from './helpers/containerd.js';
import type { startCriNode } from './helpers/cri.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage, type BuiltImage } from './helpers/images.js';
import type { MirrorHandle } from './helpers/mirror.js';
import { startMirroredCriNode } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

type Flavor = '1.6' | '2.x';

interface Setup {
  registry: RegistryPeer;
  image: BuiltImage;
  ref: string;
  layers: Array<{ digest: string; size: number }>;
  mirror: MirrorHandle;
  ctd: ContainerdPeer;
  cri: Awaited<ReturnType<typeof startCriNode>>['cri'];
}

async function setup(t: TestContext, flavor: Flavor, name: string): Promise<Setup | undefined> {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr')) return undefined;
  if (!requireRoot(t, 'containerd mounts snapshots')) return undefined;
  if (flavor === '2.x' && !requireGoPeer(t, 'containerd2', 'ctr2')) return undefined;
  const work = await testTempDir(t, 'hoist-ctd-fb-');
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const image = await buildImage(join(work, name), {
    tag: 'v1',
    layers: [
      { files: [{ path: 'a.bin', size: 2_000_000, seed: `fb-${name}-a` }] },
      { files: [{ path: 'b.bin', size: 400_000, seed: `fb-${name}-b` }] },
    ],
  });
  const ref = `${registry.host}/team/${name}:v1`;
  await pushImage(image.dir, 'v1', ref);
  const { mirror, ctd, cri } = await startMirroredCriNode(t, registry, { flavor });
  const layers = image.manifests[0]!.layers.map((l) => ({ digest: l.digest, size: l.size }));
  return { registry, image, ref, layers, mirror, ctd, cri };
}

/** The blob as containerd committed it to its content store, or undefined when it has none. */
async function storedBlob(ctd: ContainerdPeer, digest: string): Promise<Buffer | undefined> {
  const path = join(ctd.root, 'io.containerd.content.v1.content', 'blobs', 'sha256', digest.slice(7));
  // Read once, ENOENT meaning none: after a failed pull containerd's garbage collector removes
  // unreferenced content at any moment, so an existence check before the read would race it.
  return readFile(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Every layer containerd stored hashes to its digest (containerd never keeps a corrupt layer). */
async function assertNoCorruptLayer(s: Setup): Promise<void> {
  for (const l of s.layers) {
    const blob = await storedBlob(s.ctd, l.digest);
    if (blob === undefined) continue;
    assert.equal(sha256(blob), l.digest, `stored ${l.digest} is intact`);
    assert.equal(blob.byteLength, l.size);
  }
}

/** The pull is complete: CRI knows the image and every layer is stored byte-identical. */
async function assertPulled(s: Setup): Promise<void> {
  const status = await s.cri.imageStatus(s.ref);
  assert.ok(status, `CRI ImageStatus knows ${s.ref}`);
  assert.equal(status.id, s.image.manifests[0]!.config.digest);
  assert.ok(
    status.repoDigests.some((d) => d.endsWith(`@${s.image.digest}`)),
    status.repoDigests.join(),
  );
  for (const l of s.layers) {
    const blob = await storedBlob(s.ctd, l.digest);
    assert.ok(blob, `containerd stored ${l.digest}`);
    assert.equal(sha256(blob), l.digest);
    assert.equal(blob.byteLength, l.size);
  }
}

/** Layer GETs containerd itself sent to the registry (its fallback), by digest. */
async function registryServedToContainerd(s: Setup, digest: string): Promise<boolean> {
  await s.registry
    .waitForAccess((e) => e.method === 'GET' && e.path.endsWith(digest) && e.status === 200, 5_000)
    .catch(() => undefined);
  return s.registry
    .accessLog()
    .some(
      (e) =>
        e.method === 'GET' &&
        e.path.endsWith(digest) &&
        e.status === 200 &&
        e.userAgent.startsWith('containerd/'),
    );
}

async function frontedMirror(t: TestContext, s: Setup): Promise<FaultProxy> {
  const proxy = await startFaultProxy(s.mirror.url);
  t.after(() => proxy.close());
  await writeHostsToml(s.ctd.hostsDir, s.registry.host, s.registry.url, [proxy.url]);
  return proxy;
}

for (const flavor of ['1.6', '2.x'] as const) {
  describe(`containerd ${flavor} when the mirror fails`, () => {
    it('a stopped mirror (connection refused): the pull succeeds from the registry', TIMEOUT, async (t) => {
      const s = await setup(t, flavor, 'stopped');
      if (!s) return;
      await writeHostsToml(s.ctd.hostsDir, s.registry.host, s.registry.url, [s.mirror.url]);
      await s.mirror.close();
      await s.cri.pullImage(s.ref);
      await assertPulled(s);
      for (const l of s.layers)
        assert.ok(await registryServedToContainerd(s, l.digest), `fallback for ${l.digest}`);
    });

    it(
      'a layer body cut midway by the mirror: containerd resumes it from the mirror with a Range GET',
      TIMEOUT,
      async (t) => {
        const s = await setup(t, flavor, 'cut');
        if (!s) return;
        const proxy = await frontedMirror(t, s);
        const big = s.layers[0]!;
        const path = `/blobs/${big.digest}`;
        proxy.inject({ pathIncludes: path }, { kind: 'cut', afterBytes: 500_000 });
        await s.cri.pullImage(s.ref);
        await assertPulled(s);
        // The cut GET, then one resume at exactly the byte where the body stopped, on the mirror.
        assert.deepEqual(
          proxy.requests.filter((r) => r.path.includes(path)).map((r) => [r.method, r.range, r.fault ?? '']),
          [
            ['GET', '', 'cut'],
            ['GET', 'bytes=500000-', ''],
          ],
        );
        assert.equal(await registryServedToContainerd(s, big.digest), false, 'no fallback to the registry');
      },
    );

    it(
      'a body cut midway, then 503 for the resume: containerd resumes it from the registry with a Range GET',
      TIMEOUT,
      async (t) => {
        const s = await setup(t, flavor, 'cut503');
        if (!s) return;
        const proxy = await frontedMirror(t, s);
        const big = s.layers[0]!;
        const path = `/blobs/${big.digest}`;
        proxy.inject({ pathIncludes: path }, { kind: 'cut', afterBytes: 500_000 });
        proxy.inject({ pathIncludes: path }, { kind: 'status', status: 503 }, 20);
        await s.cri.pullImage(s.ref);
        // The first 500000 bytes came from the mirror, the rest from the registry: still intact.
        await assertPulled(s);
        assert.deepEqual(
          proxy.requests.filter((r) => r.path.includes(path)).map((r) => [r.method, r.range, r.fault ?? '']),
          [
            ['GET', '', 'cut'],
            ['GET', 'bytes=500000-', 'status'],
          ],
        );
        await s.registry.waitForAccess((e) => e.path.endsWith(big.digest) && e.status === 206, 5_000);
        const direct = s.registry
          .accessLog()
          .filter((e) => e.path.endsWith(big.digest) && e.userAgent.startsWith('containerd/'));
        assert.deepEqual(
          direct.map((e) => [e.method, e.status, e.bytes]),
          [['GET', 206, big.size - 500_000]],
        );
      },
    );

    it(
      'a body cut midway, then 503 from mirror and registry for the resume: the pull fails, nothing corrupt is stored, a retry completes',
      TIMEOUT,
      async (t) => {
        const s = await setup(t, flavor, 'cutfail');
        if (!s) return;
        const mirrorFront = await startFaultProxy(s.mirror.url);
        t.after(() => mirrorFront.close());
        const registryFront = await startFaultProxy(s.registry.url);
        t.after(() => registryFront.close());
        await writeHostsToml(s.ctd.hostsDir, s.registry.host, registryFront.url, [mirrorFront.url]);
        const big = s.layers[0]!;
        const path = `/blobs/${big.digest}`;
        mirrorFront.inject({ pathIncludes: path }, { kind: 'cut', afterBytes: 500_000 });
        mirrorFront.inject({ pathIncludes: path }, { kind: 'status', status: 503 }, 20);
        registryFront.inject({ pathIncludes: path }, { kind: 'status', status: 503 }, 20);
        await assert.rejects(s.cri.pullImage(s.ref));
        assert.equal(await s.cri.imageStatus(s.ref), undefined, 'no image after the failed pull');
        assert.equal(await storedBlob(s.ctd, big.digest), undefined, 'the cut layer was not committed');
        await assertNoCorruptLayer(s);
        const tries = (p: FaultProxy) =>
          p.requests.filter((r) => r.path.includes(path)).map((r) => [r.method, r.range, r.fault ?? '']);
        assert.deepEqual(tries(mirrorFront), [
          ['GET', '', 'cut'],
          ['GET', 'bytes=500000-', 'status'],
        ]);
        // containerd 2.x repeats a 500/503/504 once, on the last host only (retryRequest,
        // core/remotes/docker/resolver.go); 1.6 does not repeat it.
        const resume = ['GET', 'bytes=500000-', 'status'];
        assert.deepEqual(tries(registryFront), flavor === '2.x' ? [resume, resume] : [resume]);

        // kubelet retries a failed pull: with the faults gone, the same CRI pull completes intact.
        await writeHostsToml(s.ctd.hostsDir, s.registry.host, s.registry.url, [s.mirror.url]);
        await s.cri.pullImage(s.ref);
        await assertPulled(s);
      },
    );

    it('a mirror answering 500/503 for blobs: the pull succeeds from the registry', TIMEOUT, async (t) => {
      const s = await setup(t, flavor, 'status');
      if (!s) return;
      const proxy = await frontedMirror(t, s);
      proxy.inject({ pathIncludes: `/blobs/${s.layers[0]!.digest}` }, { kind: 'status', status: 500 }, 10);
      proxy.inject({ pathIncludes: `/blobs/${s.layers[1]!.digest}` }, { kind: 'status', status: 503 }, 10);
      await s.cri.pullImage(s.ref);
      await assertPulled(s);
      for (const l of s.layers) {
        assert.ok(await registryServedToContainerd(s, l.digest), `fallback for ${l.digest}`);
        // One try on the mirror per blob, then straight to the registry: no retry of the mirror.
        assert.deepEqual(
          proxy.requests.filter((r) => r.path.includes(`/blobs/${l.digest}`)).map((r) => [r.method, r.fault]),
          [['GET', 'status']],
        );
      }
    });
  });
}
