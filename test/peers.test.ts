// Proves the peer helpers against the real programs: docker-registry (distribution 2.8), skopeo
// and containerd. Also pins the peer behaviours the mirror depends on (Accept negotiation,
// containerd's ?ns= and fallback, distribution's proxy start-up check).
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { startContainerd, writeHostsToml } from './helpers/containerd.js';
import type { BuiltImage } from './helpers/images.js';
import { MEDIA_TYPES, buildImage, fileDigest, pushImage, skopeoCopyToDir } from './helpers/images.js';
import { findBinary, freePort, requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import type { RegistryOptions, RegistryPeer } from './helpers/registry.js';
import { fetchManifest, startRegistry } from './helpers/registry.js';

const OCI_ACCEPT = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex];
const DOCKER_ACCEPT = [MEDIA_TYPES.dockerManifest];
const TIMEOUT = { timeout: 120_000 };

async function registry(t: TestContext, opts?: RegistryOptions): Promise<RegistryPeer> {
  const peer = await startRegistry(opts);
  t.after(() => peer.stop());
  return peer;
}

function hex(digest: string): string {
  return digest.slice('sha256:'.length);
}

/** Asserts `dir` (from skopeoCopyToDir) holds every layer and config of `built` byte for byte. */
async function assertBlobsCopied(dir: string, built: BuiltImage): Promise<void> {
  for (const m of built.manifests) {
    for (const blob of [m.config, ...m.layers]) {
      const path = join(dir, hex(blob.digest));
      assert.equal((await stat(path)).size, blob.size, `size of ${blob.digest}`);
      assert.equal(await fileDigest(path), blob.digest);
    }
  }
}

describe('docker-registry + skopeo helpers', () => {
  it('pushes a 3-layer OCI image and reads it back with the same digests', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const reg = await registry(t);
    const built = await buildImage(join(work, 'layout'), {
      tag: 'v1',
      layers: [
        { files: [{ path: 'app/a.bin', size: 2_000_000, seed: 'a' }] },
        { files: [{ path: 'app/b.bin', size: 300_000 }] },
        { files: [{ path: 'etc/hello.txt', content: Buffer.from('hello\n') }] },
      ],
    });
    const [image] = built.manifests;
    assert.ok(image);
    assert.equal(image.layers.length, 3);
    assert.equal(built.mediaType, MEDIA_TYPES.ociManifest);

    await pushImage(built.dir, 'v1', `${reg.host}/single:v1`);

    const oci = await fetchManifest(reg, 'single', 'v1', OCI_ACCEPT);
    assert.equal(oci.status, 200);
    assert.equal(oci.contentType, MEDIA_TYPES.ociManifest);
    assert.equal(oci.digest, built.digest, 'skopeo pushes an OCI manifest unchanged');
    // distribution 2.8 answers 404 to an OCI manifest requested without an OCI Accept type.
    const dockerOnly = await fetchManifest(reg, 'single', 'v1', DOCKER_ACCEPT);
    assert.equal(dockerOnly.status, 404);
    assert.match(dockerOnly.body, /MANIFEST_UNKNOWN/);

    const out = join(work, 'out');
    await skopeoCopyToDir(`docker://${reg.host}/single:v1`, out);
    assert.equal(await fileDigest(join(out, 'manifest.json')), built.digest);
    await assertBlobsCopied(out, built);

    for (const layer of image.layers) {
      const entry = await reg.waitForAccess(
        (e) => e.method === 'GET' && e.path === `/v2/single/blobs/${layer.digest}`,
      );
      assert.equal(entry.status, 200);
      assert.equal(entry.bytes, layer.size);
      assert.match(entry.userAgent, /^skopeo\//);
    }
  });

  it('pushes a two-platform OCI index with --all and reads every platform back', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const reg = await registry(t);
    const built = await buildImage(join(work, 'layout'), {
      tag: 'multi',
      layers: [{ files: [{ path: 'shared.bin', size: 100_000, seed: 'shared' }] }],
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    assert.equal(built.mediaType, MEDIA_TYPES.ociIndex);
    assert.equal(built.manifests.length, 2);
    const [amd64, arm64] = built.manifests;
    assert.ok(amd64 && arm64);
    assert.notEqual(amd64.manifest.digest, arm64.manifest.digest);
    assert.equal(amd64.layers[0]?.digest, arm64.layers[0]?.digest, 'the given layers are shared');
    assert.notEqual(amd64.layers[1]?.digest, arm64.layers[1]?.digest, 'each platform has its own layer');

    await pushImage(built.dir, 'multi', `${reg.host}/multi:v1`, { all: true });

    const index = await fetchManifest(reg, 'multi', 'v1', OCI_ACCEPT);
    assert.equal(index.status, 200);
    assert.equal(index.contentType, MEDIA_TYPES.ociIndex);
    assert.equal(index.digest, built.digest);
    const entries = (JSON.parse(index.body) as { manifests: Array<{ digest: string }> }).manifests;
    assert.deepEqual(
      entries.map((e) => e.digest),
      built.manifests.map((m) => m.manifest.digest),
    );

    const out = join(work, 'out');
    await skopeoCopyToDir(`docker://${reg.host}/multi:v1`, out, { all: true });
    assert.equal(await fileDigest(join(out, 'manifest.json')), built.digest);
    for (const m of built.manifests) {
      assert.equal(await fileDigest(join(out, `${hex(m.manifest.digest)}.manifest.json`)), m.manifest.digest);
    }
    await assertBlobsCopied(out, built);
  });

  it('pushes a Docker schema 2 image with --format v2s2', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const reg = await registry(t);
    const built = await buildImage(join(work, 'layout'), {
      tag: 'v1',
      layers: [
        { files: [{ path: 'x.bin', size: 50_000, seed: 'x' }] },
        { files: [{ path: 'y.bin', size: 50_000, seed: 'y' }] },
      ],
    });
    const [image] = built.manifests;
    assert.ok(image);

    await pushImage(built.dir, 'v1', `${reg.host}/docker:v1`, { format: 'v2s2' });

    const docker = await fetchManifest(reg, 'docker', 'v1', DOCKER_ACCEPT);
    assert.equal(docker.status, 200);
    assert.equal(docker.contentType, MEDIA_TYPES.dockerManifest);
    assert.notEqual(docker.digest, built.digest, 'the manifest was converted');
    const manifest = JSON.parse(docker.body) as {
      mediaType: string;
      config: { mediaType: string; digest: string };
      layers: Array<{ mediaType: string; digest: string; size: number }>;
    };
    assert.equal(manifest.mediaType, MEDIA_TYPES.dockerManifest);
    assert.equal(manifest.config.mediaType, MEDIA_TYPES.dockerConfig);
    assert.equal(manifest.config.digest, image.config.digest, 'the config blob is unchanged');
    assert.deepEqual(
      manifest.layers.map((l) => [l.mediaType, l.digest, l.size]),
      image.layers.map((l) => [MEDIA_TYPES.dockerLayerGzip, l.digest, l.size]),
    );
    // Without a schema 2 Accept type, distribution 2.8 downgrades to a signed schema 1 manifest.
    const ociOnly = await fetchManifest(reg, 'docker', 'v1', OCI_ACCEPT);
    assert.equal(ociOnly.status, 200);
    assert.equal(ociOnly.contentType, 'application/vnd.docker.distribution.manifest.v1+prettyjws');

    const out = join(work, 'out');
    await skopeoCopyToDir(`docker://${reg.host}/docker:v1`, out);
    assert.equal(await fileDigest(join(out, 'manifest.json')), docker.digest);
    await assertBlobsCopied(out, built);
  });

  it('serves a private registry behind htpasswd auth', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const creds = { username: 'hoist', password: 's3cret' };
    const reg = await registry(t, { htpasswd: creds });
    const built = await buildImage(join(work, 'layout'), {
      layers: [{ files: [{ path: 'p.bin', size: 10_000 }] }],
    });

    const anonymous = await fetch(`${reg.url}/v2/`);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Basic realm="hoist-test"/);
    await assert.rejects(
      pushImage(built.dir, 'latest', `${reg.host}/private:v1`),
      /unauthorized|authentication/i,
    );

    await pushImage(built.dir, 'latest', `${reg.host}/private:v1`, { creds: 'hoist:s3cret' });
    assert.equal((await fetchManifest(reg, 'private', 'v1', OCI_ACCEPT)).status, 401);
    const authed = await fetchManifest(reg, 'private', 'v1', OCI_ACCEPT, creds);
    assert.equal(authed.digest, built.digest);

    const out = join(work, 'out');
    await skopeoCopyToDir(`docker://${reg.host}/private:v1`, out, { creds: 'hoist:s3cret' });
    await assertBlobsCopied(out, built);
  });

  it('runs distribution as a pull-through proxy, which needs its upstream at start', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const down = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(startRegistry({ proxyRemoteUrl: down }), (e: Error) => {
      assert.match(e.message, /exited early/);
      assert.match(e.message, /connection refused/);
      return true;
    });

    const upstream = await registry(t);
    const built = await buildImage(join(work, 'layout'), {
      layers: [{ files: [{ path: 'u.bin', size: 200_000 }] }],
    });
    await pushImage(built.dir, 'latest', `${upstream.host}/library/app:v1`);
    const proxy = await registry(t, { proxyRemoteUrl: upstream.url });

    const out = join(work, 'out');
    await skopeoCopyToDir(`docker://${proxy.host}/library/app:v1`, out);
    assert.equal(await fileDigest(join(out, 'manifest.json')), built.digest);
    await assertBlobsCopied(out, built);
    const layer = built.manifests[0]?.layers[0];
    assert.ok(layer);
    const fetched = await upstream.waitForAccess(
      (e) => e.method === 'GET' && e.path === `/v2/library/app/blobs/${layer.digest}`,
    );
    assert.equal(fetched.status, 200);
    assert.doesNotMatch(fetched.userAgent, /skopeo/, 'the proxy, not skopeo, fetched from upstream');
  });
});

describe('containerd helper', () => {
  it('pulls and runs an image straight from docker-registry through a hosts dir', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr', 'runc', 'busybox')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const reg = await registry(t);
    const busybox = findBinary('busybox');
    assert.ok(busybox);
    const built = await buildImage(join(work, 'layout'), {
      tag: 'v1',
      layers: [
        {
          files: [
            { path: 'bin/busybox', fromFile: busybox },
            { path: 'bin/sh', symlink: 'busybox' },
          ],
        },
        { files: [{ path: 'data/blob.bin', size: 500_000 }] },
      ],
      config: { Cmd: ['/bin/sh', '-c', 'echo hello from hoist'] },
    });
    await pushImage(built.dir, 'v1', `${reg.host}/app:v1`);

    const ctd = await startContainerd();
    t.after(() => ctd.stop());
    const hostsToml = await writeHostsToml(ctd.hostsDir, reg.host, reg.url, []);
    assert.equal(hostsToml, join(ctd.hostsDir, reg.host, 'hosts.toml'));

    const ref = `${reg.host}/app:v1`;
    await ctd.ctr(['images', 'pull', '--plain-http', '--hosts-dir', ctd.hostsDir, ref]);
    const { stdout: list } = await ctd.ctr(['images', 'ls']);
    assert.match(list, new RegExp(`^${ref.replace(/[.]/g, '\\.')}\\s+\\S+\\s+${built.digest}`, 'm'));
    const layers = built.manifests[0]?.layers ?? [];
    assert.equal(layers.length, 2, 'both layers are checked');
    for (const layer of layers) {
      const entry = await reg.waitForAccess(
        (e) => e.method === 'GET' && e.path === `/v2/app/blobs/${layer.digest}`,
      );
      assert.match(entry.userAgent, /^containerd\//);
    }

    const { stdout } = await ctd.ctr(['run', '--rm', ref, `hoist-peers-${process.pid}`]);
    assert.equal(stdout.trim(), 'hello from hoist');
  });

  it('asks a mirror first with ?ns=<registry> and falls back to the server on 404', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'ctr')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const work = await testTempDir(t, 'hoist-peers');
    const upstream = await registry(t);
    const emptyMirror = await registry(t);
    const built = await buildImage(join(work, 'layout'), {
      layers: [{ files: [{ path: 'm.bin', size: 20_000 }] }],
    });
    await pushImage(built.dir, 'latest', `${upstream.host}/app:v1`);

    const ctd = await startContainerd();
    t.after(() => ctd.stop());
    const hostsToml = await writeHostsToml(ctd.hostsDir, upstream.host, upstream.url, [emptyMirror.url]);
    assert.match(await readFile(hostsToml, 'utf8'), /capabilities = \["pull", "resolve"\]/);

    await ctd.ctr(['images', 'pull', '--hosts-dir', ctd.hostsDir, `${upstream.host}/app:v1`]);

    const asked = await emptyMirror.waitForAccess(
      (e) => e.path === '/v2/app/manifests/v1' && e.userAgent.startsWith('containerd/'),
    );
    assert.equal(asked.status, 404);
    // The value is URL-encoded on the wire: ns=127.0.0.1%3APORT.
    assert.equal(new URLSearchParams(asked.query).get('ns'), upstream.host);
    const served = await upstream.waitForAccess(
      (e) => e.path === '/v2/app/manifests/v1' && e.userAgent.startsWith('containerd/'),
    );
    assert.equal(served.status, 200);
    assert.equal(served.query, '', 'the server itself gets no ns parameter');
    // containerd asks the mirror again for every blob (each a 404 here) before the server.
    const layers = built.manifests[0]?.layers ?? [];
    assert.equal(layers.length, 1, 'the layer is checked');
    for (const layer of layers) {
      const blob = await emptyMirror.waitForAccess((e) => e.path === `/v2/app/blobs/${layer.digest}`);
      assert.equal(blob.method, 'GET');
      assert.equal(new URLSearchParams(blob.query).get('ns'), upstream.host);
    }
    const contentDir = join(ctd.root, 'io.containerd.content.v1.content', 'blobs', 'sha256');
    const stored = await readdir(contentDir);
    for (const digest of built.allDigests)
      assert.ok(stored.includes(hex(digest)), `${digest} in content store`);
  });
});
