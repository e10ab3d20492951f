// `hoist doctor containerd-config` on fixtures that stand for real configs (test/fixtures/configs):
// the registry.mirrors → hosts.toml conversion (issue 11 item 1) and how lazy pulling through the
// stargz snapshotter is recognised for the CRI snapshotter and the transfer service (item 10).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { checkContainerdConfig, hostsTomlFromMirrors, parseContainerdConfig } from '../src/doctor/index.js';
import { hostOrder, parseHostsToml } from '../src/node/index.js';

const FIXTURES = new URL('./fixtures/configs/', import.meta.url);
const fixture = (name: string) => readFile(new URL(name, FIXTURES), 'utf8');
const PULL = ['pull', 'resolve'];

describe('doctor containerd-config: registry.mirrors to hosts.toml', () => {
  it('keeps the registry as server and every mirror as a host, in order', async () => {
    const doc = parseContainerdConfig(await fixture('containerd-v2-registry-mirrors.toml'), 'c.toml');
    const finding = checkContainerdConfig(doc).find((f) => f.rule === 'registry-mirrors-deprecated');
    const files = new Map((finding?.files ?? []).map((f) => [f.path, parseHostsToml(f.content, f.path)]));
    const dir = '/etc/containerd/certs.d';
    assert.deepEqual(
      [...files.keys()],
      [
        `${dir}/docker.io/hosts.toml`,
        `${dir}/quay.io/hosts.toml`,
        `${dir}/registry.internal:5000/hosts.toml`,
        `${dir}/_default/hosts.toml`,
      ],
    );
    const hub = files.get(`${dir}/docker.io/hosts.toml`);
    assert.equal(hub?.server, 'https://registry-1.docker.io');
    assert.deepEqual(hostOrder(hub ?? {}), ['http://127.0.0.1:5000', 'https://mirror.gcr.io']);
    for (const h of Object.values(hub?.host ?? {})) assert.deepEqual(h, { capabilities: PULL });

    // Only a mirror listed: the registry is still the server, tried after the mirror.
    const quay = files.get(`${dir}/quay.io/hosts.toml`);
    assert.equal(quay?.server, 'https://quay.io');
    assert.deepEqual(hostOrder(quay ?? {}), ['https://quay-cache.internal:8443']);

    // The registry's own endpoint (plain http here) is its server, not a mirror.
    const internal = files.get(`${dir}/registry.internal:5000/hosts.toml`);
    assert.equal(internal?.server, 'http://registry.internal:5000');
    assert.deepEqual(hostOrder(internal ?? {}), []);

    // "*" has no server: containerd uses each registry's own.
    const dflt = files.get(`${dir}/_default/hosts.toml`);
    assert.equal(dflt?.server, undefined);
    assert.deepEqual(hostOrder(dflt ?? {}), ['https://catch-all.internal']);
  });

  it('never makes a mirror the server (one endpoint, several endpoints, no scheme)', () => {
    const cases: Array<[string, string[], string, string[]]> = [
      ['docker.io', ['http://127.0.0.1:5000'], 'https://registry-1.docker.io', ['http://127.0.0.1:5000']],
      [
        'ghcr.io',
        ['http://127.0.0.1:5000/', 'http://127.0.0.1:5001'],
        'https://ghcr.io',
        ['http://127.0.0.1:5000', 'http://127.0.0.1:5001'],
      ],
      ['docker.io', ['mirror.example.com', 'docker.io'], 'https://docker.io', ['https://mirror.example.com']],
    ];
    for (const [registry, endpoint, server, hosts] of cases) {
      const [file] = hostsTomlFromMirrors({ [registry]: { endpoint } }, '/d');
      const doc = parseHostsToml(file?.content ?? '');
      assert.equal(doc.server, server, `${registry} ${endpoint.join(',')}`);
      assert.deepEqual(hostOrder(doc), hosts);
    }
  });
});

describe('doctor containerd-config: lazy pulling with the stargz snapshotter', () => {
  const rules = (text: string) =>
    checkContainerdConfig(parseContainerdConfig(text, 'c.toml')).map((f) => `${f.rule}:${f.severity}`);

  for (const name of ['containerd-v2-stargz-transfer.toml', 'containerd-v3-stargz-transfer.toml']) {
    it(`stargz-snapshotter's transfer-service config is lazy (${name})`, async () => {
      const found = rules(await fixture(name));
      for (const rule of [
        'stargz-annotations-disabled',
        'stargz-not-used',
        'no-lazy-pulling',
        'snapshotter-missing',
      ]) {
        assert.ok(!found.some((r) => r.startsWith(`${rule}:`)), `${name}: ${found.join(', ')}`);
      }
    });
  }

  it('transfer service for stargz without the proxy annotations export is eager', async () => {
    const text = (await fixture('containerd-v2-stargz-transfer.toml')).replace(
      /enable_remote_snapshot_annotations = "true"/,
      '',
    );
    assert.ok(rules(text).includes('stargz-transfer-annotations:error'), rules(text).join(', '));
  });

  it('CRI snapshotter stargz with annotations disabled and no transfer unpack_config is eager', () => {
    for (const version of [2, 3]) {
      const table =
        version === 3
          ? 'plugins."io.containerd.cri.v1.images"'
          : 'plugins."io.containerd.grpc.v1.cri".containerd';
      const text = `version = ${version}\n[${table}]\n  snapshotter = "stargz"\n  disable_snapshot_annotations = true\n[proxy_plugins.stargz]\n  type = "snapshot"\n  address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"\n`;
      assert.ok(
        rules(text).includes('stargz-annotations-disabled:error'),
        `v${version}: ${rules(text).join(', ')}`,
      );
    }
  });

  it('stargz only in the transfer service: CRI pulls stay eager, ctr --snapshotter=stargz is lazy', () => {
    const text = `version = 3\n[[plugins."io.containerd.transfer.v1.local".unpack_config]]\n  platform = "linux"\n  snapshotter = "stargz"\n[proxy_plugins.stargz]\n  type = "snapshot"\n  address = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"\n  [proxy_plugins.stargz.exports]\n    enable_remote_snapshot_annotations = "true"\n`;
    const found = checkContainerdConfig(parseContainerdConfig(text, 'c.toml'));
    const notUsed = found.find((f) => f.rule === 'stargz-not-used');
    assert.match(notUsed?.message ?? '', /CRI/);
  });
});
