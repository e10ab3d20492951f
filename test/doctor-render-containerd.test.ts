// `hoist render containerd-config` read by real containerds: the rendered config.toml, merged
// into a test instance's own settings (root, state, socket, CNI), starts Debian's 1.6 (version 2)
// and the 2.x built from Go modules (version 3, and version 2, which 2.x migrates at start), and
// the rendered hosts.toml sends a CRI pull through the mirror: the upstream registry sees only the
// mirror. On 2.x with version 3, CRI pulls stay on the transfer service (no fallback to the local
// pull, which the CRI table's max_concurrent_downloads would force).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parse, stringify } from 'smol-toml';
import { runHoist, startCriNode } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage } from './helpers/images.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 240_000 };

type Table = Record<string, unknown>;

/** `over` merged into `base`, table by table (values of `over` win). */
function merge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' && v !== null && !Array.isArray(v) && typeof b === 'object' && b !== null
        ? merge(b as Table, v as Table)
        : v;
  }
  return out;
}

interface Rendered {
  files: Array<{ path: string; content: string }>;
}

async function renderedPull(t: TestContext, flavor: '1.6' | '2.x', version: 2 | 3): Promise<void> {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci')) return;
  if (flavor === '1.6' && !requirePeers(t, 'containerd')) return;
  if (flavor === '2.x' && !requireGoPeer(t, 'containerd2', 'ctr2')) return;
  if (!requireRoot(t, 'containerd mounts snapshots')) return;
  const work = await testTempDir(t, 'hoist-render-ctd-');
  const upstream = await startRegistry();
  t.after(() => upstream.stop());
  const built = await buildImage(join(work, 'app'), {
    tag: 'v1',
    layers: [{ files: [{ path: 'app.bin', size: 200_000, seed: `render-${flavor}-${version}` }] }],
  });
  await pushImage(built.dir, 'v1', `${upstream.host}/team/app:v1`);
  await upstream.waitForAccess((e) => e.method === 'PUT' && e.path.includes('/team/app/manifests/'));
  const mirror = await startMirror({ [upstream.host]: upstream.url });
  t.after(() => mirror.close());

  let rendered: Rendered | undefined;
  const { ctd, cri } = await startCriNode(t, {
    flavor,
    configVersion: version,
    registryConfigPath: null,
    transformConfig: async (base, { hostsDir }) => {
      const res = await runHoist(
        [
          'render',
          'containerd-config',
          '--config-version',
          String(version),
          '--config-path',
          hostsDir,
          '--mirror',
          `${upstream.host}=${mirror.url}`,
          '--output',
          'json',
        ],
        { fromSource: true },
      );
      assert.equal(res.code, 0, res.stderr);
      rendered = JSON.parse(res.stdout) as Rendered;
      const config = parse(rendered.files[0]?.content ?? '') as Table;
      assert.equal(config.version, version);
      return stringify(merge(parse(base) as Table, config));
    },
  });
  const hostsFiles = rendered?.files.slice(1) ?? [];
  assert.deepEqual(
    hostsFiles.map((f) => f.path),
    [join(ctd.hostsDir, upstream.host, 'hosts.toml')],
  );
  for (const f of hostsFiles) {
    await mkdir(dirname(f.path), { recursive: true });
    await writeFile(f.path, f.content);
  }

  const from = upstream.accessLog().length;
  await cri.pullImage(`${upstream.host}/team/app:v1`);
  const layer = built.manifests[0]?.layers[0]?.digest ?? '';
  await upstream.waitForAccess((e) => e.path.endsWith(layer));
  assert.deepEqual(
    [
      ...new Set(
        upstream
          .accessLog()
          .slice(from)
          .map((e) => e.userAgent),
      ),
    ],
    ['hoist-mirror'],
    'the registry saw only the mirror',
  );
  if (flavor === '2.x' && version === 3) {
    assert.doesNotMatch(
      ctd.output(),
      /Falling back to local image pull/,
      'CRI pulls use the transfer service',
    );
  }
}

describe('rendered containerd config under real containerds', () => {
  it('containerd 1.6 starts with the version 2 render and pulls through the mirror', TIMEOUT, (t) =>
    renderedPull(t, '1.6', 2),
  );
  it('containerd 2.x starts with the version 3 render and pulls through the mirror', TIMEOUT, (t) =>
    renderedPull(t, '2.x', 3),
  );
  it(
    'containerd 2.x starts with the version 2 render (migrated) and pulls through the mirror',
    TIMEOUT,
    (t) => renderedPull(t, '2.x', 2),
  );
});
