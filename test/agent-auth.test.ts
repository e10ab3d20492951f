// `hoist agent` with registry credentials from a Docker config.json, against a real containerd
// and a private docker-registry (htpasswd): without credentials both the size estimate and the
// CRI pull are refused by the registry; with `--auth-file` both succeed straight from the
// registry; behind Hoist's mirror (configured with the same credentials, the file found through
// $DOCKER_CONFIG) the estimate and the pull go through the mirror.
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ImageStatus } from '../src/agent/index.js';
import { writeHostsToml } from './helpers/containerd.js';
import { startCriNode, runHoist, startHoist } from './helpers/cri.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };
const USER = 'hoist-puller';
const PASSWORD = 'pa55:word';

async function imagesWhenIdle(url: string): Promise<Map<string, ImageStatus>> {
  const res = await fetch(`${url}/v1/images?wait=idle`);
  assert.equal(res.status, 200);
  const doc = (await res.json()) as { images: ImageStatus[] };
  return new Map(doc.images.map((s) => [s.image, s]));
}

describe('hoist agent registry credentials', () => {
  it('uses --auth-file or $DOCKER_CONFIG for the CRI pull and the size estimate', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd', 'htpasswd')) return;
    if (!requireRoot(t, 'containerd mounts snapshots')) return;
    const savedDockerConfig = process.env.DOCKER_CONFIG;
    t.after(() => {
      if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
      else process.env.DOCKER_CONFIG = savedDockerConfig;
    });
    delete process.env.DOCKER_CONFIG; // the agents inherit this process's environment

    const work = await testTempDir(t, 'hoist-agent-auth-');
    const registry = await startRegistry({ htpasswd: { username: USER, password: PASSWORD } });
    t.after(() => registry.stop());
    const ref = (name: string) => `${registry.host}/private/${name}:v1`;
    const layerSizes: Record<string, number> = {};
    for (const name of ['direct', 'mirrored']) {
      const img = await buildImage(join(work, name), {
        tag: 'v1',
        layers: [{ files: [{ path: `${name}.bin`, size: 200_000, seed: `auth-${name}` }] }],
      });
      await pushImage(img.dir, 'v1', ref(name), { creds: `${USER}:${PASSWORD}` });
      layerSizes[name] = img.manifests[0]!.layers[0]!.size;
    }
    const dockerConfig = join(work, 'docker');
    await mkdir(dockerConfig);
    const authFile = join(dockerConfig, 'config.json');
    await writeFile(
      authFile,
      JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
      }),
    );

    const { ctd, cri } = await startCriNode(t);
    // Straight to the private registry: hosts.toml with its server only.
    await writeHostsToml(ctd.hostsDir, registry.host, registry.url, []);
    const common = [
      '--runtime-endpoint',
      `unix://${ctd.socket}`,
      '--listen',
      '127.0.0.1:0',
      '--log-level',
      'warn',
      '--certs-dir',
      ctd.hostsDir,
      '--disk-high-water',
      '1TiB',
    ];

    // No credentials: the registry refuses the estimate's manifest request and the pull.
    const anonymous = startHoist(['agent', ...common, '--image', ref('direct')]);
    t.after(() => anonymous.stop());
    let status = (await imagesWhenIdle(await anonymous.url)).get(ref('direct'));
    assert.equal(status?.state, 'failed', JSON.stringify(status));
    assert.equal(status.code, 'PULL_FAILED');
    assert.match(status.reason ?? '', /401 Unauthorized|unauthorized/i);
    assert.match(
      status.disk?.estimateError ?? '',
      new RegExp(`^size not estimated, checked current usage only: .*${registry.url}: answered 401`),
    );
    assert.equal(await anonymous.stop(), 0, anonymous.stderr());

    // --auth-file: both the estimate and the CRI pull authenticate.
    const withFile = startHoist(['agent', ...common, '--auth-file', authFile, '--image', ref('direct')]);
    t.after(() => withFile.stop());
    status = (await imagesWhenIdle(await withFile.url)).get(ref('direct'));
    assert.equal(status?.state, 'present', JSON.stringify(status));
    assert.equal(status.alreadyPresent, false);
    assert.equal(status.disk?.estimateError, undefined);
    assert.equal(status.disk?.estimate?.source, registry.url);
    assert.ok((status.disk?.estimate?.downloadBytes ?? 0) > layerSizes.direct!);
    assert.ok(await cri.imageStatus(ref('direct')), 'pulled into containerd');
    // distribution logs a request after answering it: wait for the lines rather than race them.
    const authedBy = (agent: (ua: string) => boolean) =>
      registry.waitForAccess(
        (e) => e.status === 200 && e.path === `/v2/private/direct/manifests/v1` && agent(e.userAgent),
      );
    assert.ok(
      await authedBy((ua) => ua === 'hoist-agent'),
      'the estimate read the manifest with credentials',
    );
    assert.ok(
      await authedBy((ua) => ua.startsWith('containerd/')),
      'containerd read it with the CRI AuthConfig',
    );
    assert.equal(await withFile.stop(), 0, withFile.stderr());

    // Behind Hoist's mirror, configured with the same credentials; the file from $DOCKER_CONFIG.
    const mirror = await startMirror(
      {},
      { file: { upstreams: { [registry.host]: { url: registry.url, username: USER, password: PASSWORD } } } },
    );
    t.after(() => mirror.close());
    process.env.DOCKER_CONFIG = dockerConfig;
    const mirrored = startHoist([
      'agent',
      ...common,
      '--mirror',
      mirror.url,
      '--registries',
      `${registry.host}=${registry.url}`,
      '--containerd-config',
      ctd.configPath,
      '--image',
      ref('mirrored'),
    ]);
    delete process.env.DOCKER_CONFIG;
    t.after(() => mirrored.stop());
    status = (await imagesWhenIdle(await mirrored.url)).get(ref('mirrored'));
    assert.equal(status?.state, 'present', JSON.stringify(status));
    assert.equal(status.disk?.estimate?.source, mirror.url, 'estimated through the mirror');
    assert.ok(
      (await mirror.metric('hoist_mirror_served_bytes_total')) >= layerSizes.mirrored!,
      'the mirror served the layer',
    );
    assert.ok(
      !registry
        .accessLog()
        .some((e) => e.userAgent.startsWith('containerd/') && e.path.includes('/mirrored/')),
      'containerd did not fall back to the registry',
    );
    assert.equal(await mirrored.stop(), 0, mirrored.stderr());
  });

  it('a bad --auth-file is bad input: exit 2, one line', TIMEOUT, async (t) => {
    const work = await testTempDir(t, 'hoist-agent-auth-bad-');
    const bad = join(work, 'config.json');
    await writeFile(bad, JSON.stringify({ auths: { 'r.example': { auth: 'bm9jb2xvbg==' } } }));
    for (const [file, pattern] of [
      [join(work, 'missing.json'), /^hoist: --auth-file: cannot read auth file .*missing\.json \(ENOENT\)/],
      [bad, /^hoist: --auth-file: .*auths\."r\.example"\.auth is not base64 of "username:password"/],
    ] as const) {
      for (const args of [
        ['agent', '--runtime-endpoint', 'unix:///nonexistent/c.sock', '--auth-file', file],
        ['node', 'pull', '--runtime-endpoint', 'unix:///nonexistent/c.sock', '--auth-file', file, 'x'],
      ]) {
        const res = await runHoist(args);
        assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
        assert.match(res.stderr, pattern);
        assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
      }
    }
  });
});
