// Registries on ports the WHATWG fetch standard blocks ("bad port", fetch spec §2.9: 6000, 10080,
// ...): the global fetch refuses them outright, and Hoist's registry client must not. Against the
// real peers: docker-registry listening on such a port, skopeo pushing to it and pulling through
// Hoist's mirror (byte-identical to a direct pull), and `hoist convert` reading from it and pushing
// its eStargz result back to it.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { runHoist } from './helpers/cri.js';
import { buildImage, pushImage, run, skopeoCopyToDir, type BuiltImage } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { removeTempDir, requirePeers, tempDir, testTempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 300_000 };
/** 6000 (X11) is the README's own example; 10080 (Amanda) is another on the fetch standard's list. */
const PORTS = [6000, 10080];
const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';

/** Why the port cannot be used here, or undefined when it is free on 127.0.0.1. */
async function portBusy(port: number): Promise<string | undefined> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** docker-registry on `port` holding blocked/app:v1, or why it cannot run; one per port. */
const registries = new Map<number, Promise<RegistryPeer | string>>();

function registryWithImage(port: number, image: BuiltImage): Promise<RegistryPeer | string> {
  let pending = registries.get(port);
  if (!pending) {
    pending = (async () => {
      const busy = await portBusy(port);
      if (busy) return `127.0.0.1:${port} is not free (${busy})`;
      let registry: RegistryPeer;
      try {
        registry = await startRegistry({ port });
      } catch (err) {
        // Another process may take the port between the check and distribution's bind.
        if (/address already in use/.test(String(err))) return `127.0.0.1:${port} was taken meanwhile`;
        throw err;
      }
      await pushImage(image.dir, 'v1', `${registry.host}/blocked/app:v1`);
      return registry;
    })();
    registries.set(port, pending);
  }
  return pending;
}

/** The registry on `port`, or undefined after skipping the test with the reason. */
async function registryOn(
  t: TestContext,
  port: number,
  image: BuiltImage,
): Promise<RegistryPeer | undefined> {
  const registry = await registryWithImage(port, image);
  if (typeof registry !== 'string') return registry;
  process.stderr.write(`${t.name}: skipped, ${registry}\n`);
  t.skip(registry);
  return undefined;
}

/** Every file of a skopeo dir: copy, by name. */
async function dirFiles(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(join(dir, name)));
  return out;
}

describe('registries on ports the fetch standard blocks', () => {
  let work: string | undefined;
  let built: Promise<BuiltImage> | undefined;
  /** The image both registries get; built on first use, after the peers are known present. */
  const appImage = () =>
    (built ??= (async () => {
      work = await tempDir('hoist-blocked-port-');
      return buildImage(join(work, 'app'), {
        tag: 'v1',
        layers: [
          { files: [{ path: 'app/data.bin', size: 400_000, seed: 'blocked-port' }] },
          { files: [{ path: 'etc/hello.txt', content: 'hello from a blocked port\n' }] },
        ],
      });
    })());

  after(async () => {
    for (const pending of registries.values()) {
      const registry = await pending.catch(() => undefined);
      if (typeof registry === 'object') await registry.stop();
    }
    if (work) await removeTempDir(work);
  });

  for (const port of PORTS) {
    it(`the mirror pulls through a registry on 127.0.0.1:${port}`, TIMEOUT, async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return;
      const image = await appImage();
      const registry = await registryOn(t, port, image);
      if (!registry) return;
      // The premise: the global fetch refuses this port (undici's "bad port").
      await assert.rejects(fetch(`${registry.url}/v2/`), (err: Error) => /bad port/.test(String(err.cause)));

      // skopeo through the mirror gets the same bytes as straight from the registry.
      const mirror = await startMirror({ [registry.host]: registry.url }, { defaultUpstream: registry.host });
      t.after(() => mirror.close());
      const dir = await testTempDir(t, 'hoist-blocked-pull-');
      await skopeoCopyToDir(`docker://${mirror.host}/blocked/app:v1`, join(dir, 'mirror'));
      await skopeoCopyToDir(`docker://${registry.host}/blocked/app:v1`, join(dir, 'direct'));
      const viaMirror = await dirFiles(join(dir, 'mirror'));
      const direct = await dirFiles(join(dir, 'direct'));
      assert.deepEqual([...viaMirror.keys()], [...direct.keys()]);
      for (const [name, bytes] of direct)
        assert.ok(viaMirror.get(name)?.equals(bytes), `${name} is identical`);
      // ... and the mirror got them from the upstream, not from anywhere else.
      const layer = image.manifests[0]?.layers[0];
      assert.ok(layer);
      await registry.waitForAccess(
        (e) =>
          e.userAgent === 'hoist-mirror' && e.path.endsWith(`/blobs/${layer.digest}`) && e.status === 200,
      );
      assert.ok((await mirror.metric('hoist_mirror_upstream_bytes_total')) >= layer.size);
    });

    it(`hoist convert reads from and pushes to a registry on 127.0.0.1:${port}`, TIMEOUT, async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return;
      const image = await appImage();
      const registry = await registryOn(t, port, image);
      if (!registry) return;
      const converted = await runHoist(
        ['convert', `${registry.host}/blocked/app:v1`, `${registry.host}/blocked/app:esgz`],
        { fromSource: true },
      );
      assert.equal(converted.code, 0, `hoist convert failed: ${converted.stderr}`);
      // skopeo, not Hoist, reads the result back.
      const { stdout } = await run('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${registry.host}/blocked/app:esgz`,
      ]);
      const manifest = JSON.parse(stdout) as { layers: Array<{ annotations?: Record<string, string> }> };
      assert.equal(manifest.layers.length, 2);
      for (const l of manifest.layers) assert.match(l.annotations?.[TOC_DIGEST] ?? '', /^sha256:/);
      const check = await runHoist(['convert', '--check', `${registry.host}/blocked/app:esgz`], {
        fromSource: true,
      });
      assert.equal(check.code, 0, `hoist convert --check failed: ${check.stdout}${check.stderr}`);
    });
  }
});
