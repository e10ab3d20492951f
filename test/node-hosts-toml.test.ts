// hosts.toml rendering and merging (containerd docs/hosts.md) as table tests, the config_path
// check, and `configure` / `unconfigure` on a real folder: unconfigure puts back every byte.
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import {
  checkConfigPath,
  configureHosts,
  hostOrder,
  mergeHostsToml,
  NodeConfigError,
  parseHostsToml,
  parseRegistryList,
  renderHostsToml,
  unconfigureHosts,
  type HostsToml,
} from '../src/node/index.js';
import { testTempDir } from './helpers/peers.js';

const MIRROR = 'http://127.0.0.1:5000';

describe('hosts.toml merge', () => {
  const cases: Array<{
    name: string;
    registry: string;
    existing?: string;
    origin?: string;
    server: string;
    hosts: string[];
    extra?: Record<string, unknown>;
    hostEntries?: Record<string, Record<string, unknown>>;
  }> = [
    {
      name: 'no file: mirror, then Docker Hub origin',
      registry: 'docker.io',
      server: 'https://registry-1.docker.io',
      hosts: [MIRROR],
    },
    {
      name: 'no file, other registry: https://<host>',
      registry: 'ghcr.io',
      server: 'https://ghcr.io',
      hosts: [MIRROR],
    },
    {
      name: 'explicit origin wins',
      registry: '127.0.0.1:6000',
      origin: 'http://127.0.0.1:6000',
      server: 'http://127.0.0.1:6000',
      hosts: [MIRROR],
    },
    {
      name: 'user mirrors kept after ours, in their order; top-level keys kept',
      registry: 'docker.io',
      existing: `# my config
server = "https://registry-1.docker.io"
skip_verify = false

[host."https://b.example"]
  capabilities = ["pull"]
  ca = "/etc/b.pem"

[host."https://a.example"]
  capabilities = ["pull", "resolve"]
  [host."https://a.example".header]
    x-token = ["t"]
`,
      server: 'https://registry-1.docker.io',
      hosts: [MIRROR, 'https://b.example', 'https://a.example'],
      extra: { skip_verify: false },
      hostEntries: {
        'https://b.example': { capabilities: ['pull'], ca: '/etc/b.pem' },
        'https://a.example': { capabilities: ['pull', 'resolve'], header: { 'x-token': ['t'] } },
      },
    },
    {
      name: 'an existing entry for the same mirror is replaced, not duplicated',
      registry: 'quay.io',
      existing: `server = "https://quay.io"\n[host."http://127.0.0.1:5000/"]\n  capabilities = ["pull", "resolve", "push"]\n[host."https://other"]\n  capabilities = ["pull"]\n`,
      server: 'https://quay.io',
      hosts: [MIRROR, 'https://other'],
    },
    {
      name: "user's own server kept when no origin is given",
      registry: 'registry.internal:5000',
      existing: `server = "http://registry.internal:5000"\n`,
      server: 'http://registry.internal:5000',
      hosts: [MIRROR],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const existing = c.existing === undefined ? undefined : parseHostsToml(c.existing);
      const merged = mergeHostsToml({ existing, mirrorUrl: MIRROR, origin: c.origin, registry: c.registry });
      const text = renderHostsToml(merged);
      // What containerd reads back: the parse of the rendered text.
      const back: HostsToml = parseHostsToml(text);
      assert.equal(back.server, c.server);
      assert.deepEqual(hostOrder(back), c.hosts, 'containerd tries hosts in file order: mirror first');
      assert.deepEqual(back.host?.[MIRROR], { capabilities: ['pull', 'resolve'] });
      for (const [k, v] of Object.entries(c.extra ?? {})) assert.deepEqual(back[k], v);
      for (const [url, entry] of Object.entries(c.hostEntries ?? {}))
        assert.deepEqual(back.host?.[url], entry);
      assert.ok(text.startsWith('# Managed by `hoist node configure`'));
      // Rendering is a fixed point: merging the result again changes nothing.
      const again = renderHostsToml(
        mergeHostsToml({ existing: back, mirrorUrl: MIRROR, origin: c.origin, registry: c.registry }),
      );
      assert.equal(again, text);
    });
  }

  it('rejects files containerd could not read, naming the file', () => {
    for (const bad of ['server = ', 'host = "x"', '[host]\n"http://m" = 1\n', 'server = 5']) {
      assert.throws(
        () => parseHostsToml(bad, '/etc/containerd/certs.d/docker.io/hosts.toml'),
        (e: unknown) =>
          e instanceof NodeConfigError &&
          e.code === 'INVALID_HOSTS_TOML' &&
          e.message.includes('/etc/containerd/certs.d/docker.io/hosts.toml'),
        bad,
      );
    }
  });

  it('parses --registries with origins and rejects bad hosts', () => {
    assert.deepEqual(parseRegistryList('docker.io, ghcr.io,127.0.0.1:6000=http://127.0.0.1:6000/'), [
      { registry: 'docker.io' },
      { registry: 'ghcr.io' },
      { registry: '127.0.0.1:6000', origin: 'http://127.0.0.1:6000' },
    ]);
    for (const bad of ['', 'docker.io,docker.io', 'bad host', '.hoist', 'x=ftp://y', 'x=notaurl']) {
      assert.throws(() => parseRegistryList(bad), NodeConfigError, bad);
    }
  });
});

describe('containerd config_path check', () => {
  const dir = '/etc/containerd/certs.d';
  const cases: Array<{ name: string; text: string | undefined; status: string; suggestion?: RegExp }> = [
    {
      name: 'no config file',
      text: undefined,
      status: 'no-config-file',
      suggestion: /io\.containerd\.grpc\.v1\.cri/,
    },
    {
      name: 'version 2, set',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d/"\n`,
      status: 'ok',
    },
    {
      name: 'version 2, not set',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "x"\n`,
      status: 'not-set',
      suggestion:
        /^\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\n {2}config_path = "\/etc\/containerd\/certs\.d"$/,
    },
    {
      name: 'version 2, another folder',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/docker/certs.d"\n`,
      status: 'different',
    },
    {
      name: 'version 3 (containerd 2.x), several folders: the transfer service ignores the list',
      text: `version = 3\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/docker/certs.d:/etc/containerd/certs.d"\n`,
      status: 'list-ignored',
      suggestion: /io\.containerd\.cri\.v1\.images/,
    },
    {
      name: 'version 3, several folders, use_local_image_pull reads the list',
      text: `version = 3\n[plugins."io.containerd.cri.v1.images"]\n  use_local_image_pull = true\n[plugins."io.containerd.cri.v1.images".registry]\n  config_path = "/etc/docker/certs.d:/etc/containerd/certs.d"\n`,
      status: 'ok',
    },
    {
      name: "version 3 looks in the images plugin; unset is 2.x's default list",
      text: `version = 3\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n`,
      status: 'not-set',
      suggestion: /io\.containerd\.cri\.v1\.images/,
    },
    {
      name: 'version 1',
      text: `[plugins.cri.registry]\n  config_path = "/etc/containerd/certs.d"\n`,
      status: 'ok',
    },
    {
      name: 'deprecated mirrors beside config_path',
      text: `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/etc/containerd/certs.d"\n[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://m"]\n`,
      status: 'mirrors',
    },
    { name: 'broken TOML', text: 'version = = 2', status: 'unparseable' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const check = checkConfigPath(c.text, '/etc/containerd/config.toml', dir);
      assert.equal(check.status, c.status, check.message);
      if (c.status !== 'ok')
        assert.ok(check.message && !check.message.includes('\n'), 'one line saying what to do');
      if (c.suggestion) assert.match(check.suggestion ?? '', c.suggestion);
    });
  }
});

/** Every file and folder under `dir` with its bytes and mode, for before/after comparison. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      const mode = ((await stat(path)).mode & 0o7777).toString(8);
      if (entry.isDirectory()) {
        out.set(`${relative(dir, path)}/`, mode);
        await walk(path);
      } else out.set(relative(dir, path), `${mode}:${(await readFile(path)).toString('base64')}`);
    }
  };
  await walk(dir);
  return out;
}

describe('configure and unconfigure', () => {
  it('writes one file per registry, is idempotent, and unconfigure restores every byte', async (t) => {
    const certs = await testTempDir(t, 'hoist-certs-');
    // A user's file with comments, odd spacing, CRLF line ends and no final newline; a folder with
    // only a CA file; a registry Hoist will not touch.
    const original =
      '# mine\r\nserver = "https://registry-1.docker.io"\r\n\r\n[host."https://corp.example"]\r\n   capabilities = ["pull"]';
    await mkdir(join(certs, 'docker.io'));
    await writeFile(join(certs, 'docker.io', 'hosts.toml'), original);
    await chmod(join(certs, 'docker.io', 'hosts.toml'), 0o600);
    await mkdir(join(certs, 'quay.io'));
    await writeFile(join(certs, 'quay.io', 'ca.crt'), 'CERT');
    await mkdir(join(certs, 'untouched.example'));
    await writeFile(join(certs, 'untouched.example', 'hosts.toml'), 'server = "https://untouched.example"\n');
    const before = await snapshot(certs);

    const registries = parseRegistryList('docker.io,quay.io,ghcr.io,127.0.0.1:6000=http://127.0.0.1:6000');
    const dry = await configureHosts({ certsDir: certs, mirrorUrl: MIRROR, registries, dryRun: true });
    assert.deepEqual(
      dry.map((f) => [f.registry, f.action]),
      [
        ['docker.io', 'updated'],
        ['quay.io', 'created'],
        ['ghcr.io', 'created'],
        ['127.0.0.1:6000', 'created'],
      ],
    );
    assert.deepEqual(await snapshot(certs), before, '--dry-run writes nothing');

    const first = await configureHosts({ certsDir: certs, mirrorUrl: MIRROR, registries });
    assert.deepEqual(
      first.map((f) => f.content),
      dry.map((f) => f.content),
      'dry run printed what was written',
    );
    const hub = parseHostsToml(await readFile(join(certs, 'docker.io', 'hosts.toml'), 'utf8'));
    assert.deepEqual(hostOrder(hub), [MIRROR, 'https://corp.example']);
    const local = parseHostsToml(await readFile(join(certs, '127.0.0.1:6000', 'hosts.toml'), 'utf8'));
    assert.equal(local.server, 'http://127.0.0.1:6000');
    assert.equal(await readFile(join(certs, 'quay.io', 'ca.crt'), 'utf8'), 'CERT');
    assert.equal(
      await readFile(join(certs, 'untouched.example', 'hosts.toml'), 'utf8'),
      'server = "https://untouched.example"\n',
    );
    assert.equal((await stat(join(certs, 'docker.io', 'hosts.toml'))).mode & 0o777, 0o600, 'mode kept');

    const afterFirst = await snapshot(certs);
    const second = await configureHosts({ certsDir: certs, mirrorUrl: MIRROR, registries });
    assert.ok(
      second.every((f) => f.action === 'unchanged'),
      'second run changes nothing',
    );
    assert.deepEqual(await snapshot(certs), afterFirst);

    // Re-pointing at another mirror starts from the original, not from Hoist's own file.
    const other = await configureHosts({ certsDir: certs, mirrorUrl: 'http://127.0.0.2:5000', registries });
    const hub2 = parseHostsToml(other[0]!.content!);
    assert.deepEqual(hostOrder(hub2), ['http://127.0.0.2:5000', 'https://corp.example']);

    const dryUn = await unconfigureHosts({ certsDir: certs, dryRun: true });
    assert.equal(dryUn.length, 4);
    const restored = await unconfigureHosts({ certsDir: certs });
    assert.deepEqual(
      restored.map((f) => [f.registry, f.action]),
      [
        ['docker.io', 'restored'],
        ['quay.io', 'removed'],
        ['ghcr.io', 'removed'],
        ['127.0.0.1:6000', 'removed'],
      ],
    );
    assert.deepEqual(await snapshot(certs), before, 'byte for byte, modes included, no leftover state');
    assert.deepEqual(await unconfigureHosts({ certsDir: certs }), [], 'nothing left to restore');
  });

  it('unconfigures one registry at a time and refuses one it never configured', async (t) => {
    const certs = await testTempDir(t, 'hoist-certs-');
    await configureHosts({
      certsDir: certs,
      mirrorUrl: MIRROR,
      registries: parseRegistryList('docker.io,ghcr.io'),
    });
    await unconfigureHosts({ certsDir: certs, registries: ['ghcr.io'] });
    assert.deepEqual((await readdir(certs)).sort(), ['.hoist', 'docker.io']);
    await assert.rejects(
      unconfigureHosts({ certsDir: certs, registries: ['quay.io'] }),
      (e: unknown) => e instanceof NodeConfigError && e.code === 'NOT_CONFIGURED',
    );
    await unconfigureHosts({ certsDir: certs });
    assert.deepEqual(await readdir(certs), []);
  });

  it('refuses to merge into a hosts.toml that does not parse, and writes nothing', async (t) => {
    const certs = await testTempDir(t, 'hoist-certs-');
    await mkdir(join(certs, 'docker.io'));
    await writeFile(join(certs, 'docker.io', 'hosts.toml'), 'server = = "x"\n');
    const before = await snapshot(certs);
    await assert.rejects(
      configureHosts({ certsDir: certs, mirrorUrl: MIRROR, registries: parseRegistryList('docker.io') }),
      (e: unknown) => e instanceof NodeConfigError && e.code === 'INVALID_HOSTS_TOML',
    );
    assert.deepEqual(await snapshot(certs), before);
  });
});
