import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf, parseManifest, type Descriptor } from '../oci/index.js';
import { authKeyRegistry, authFilePath, parseAuthFile } from './auth-file.js';
import { NodeConfigError } from './errors.js';
import { parseHostsToml } from './hosts-toml.js';
import {
  ESTARGZ_UNCOMPRESSED_SIZE,
  UNPACK_FACTOR,
  estimateFromManifest,
  nodePlatform,
  selectPlatformManifest,
} from './image-size.js';
import { defaultServer, registryHosts } from './size-estimator.js';

const d = (n: string) => digestOf(n).value;

function manifest(layers: Array<Record<string, unknown>>) {
  const parsed = parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: d('config'), size: 500 },
        layers,
      }),
    ),
  );
  assert.equal(parsed.kind, 'manifest');
  return parsed as Extract<typeof parsed, { kind: 'manifest' }>;
}

const info = { image: 'r.example/app:v1', source: 'http://mirror', manifestDigest: d('m') };

describe('image size estimate', () => {
  it('uses uncompressed sizes, eStargz annotations, else compressed x the factor', () => {
    const m = manifest([
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d('plain'), size: 7000 },
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: d('estargz'),
        size: 1000,
        annotations: { [ESTARGZ_UNCOMPRESSED_SIZE]: '4321' },
      },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('gz'), size: 2000 },
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: d('bad-annotation'),
        size: 10,
        annotations: { [ESTARGZ_UNCOMPRESSED_SIZE]: 'lots' },
      },
    ]);
    const e = estimateFromManifest(m, info);
    assert.equal(e.unpackedBytes, 7000 + 4321 + 2000 * UNPACK_FACTOR + 10 * UNPACK_FACTOR);
    assert.equal(e.downloadBytes, 500 + 7000 + 1000 + 2000 + 10);
    assert.equal(e.layers, 4);
    assert.equal(e.layersPresent, 0);
    assert.equal(
      e.basis,
      `1 uncompressed layer as they are, 1 layer by ${ESTARGZ_UNCOMPRESSED_SIZE}, 2 layers compressed x ${UNPACK_FACTOR}`,
    );
    assert.equal(e.source, 'http://mirror');
  });

  it('leaves out layers the runtime already has', () => {
    const m = manifest([
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('base'), size: 9000 },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('app'), size: 100 },
    ]);
    const e = estimateFromManifest(m, info, new Set([d('base'), d('config')]), 2);
    assert.equal(e.unpackedBytes, 200);
    assert.equal(e.downloadBytes, 100);
    assert.equal(e.layersPresent, 1);
    assert.match(e.basis, /1 layer compressed x 2, 1 layer already present/);
  });

  it("picks the node's platform from an index as containerd does", () => {
    assert.deepEqual(nodePlatform('x64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(nodePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(nodePlatform('ppc64'), { os: 'linux', architecture: 'ppc64le' });
    const entry = (architecture: string, os = 'linux', variant?: string): Descriptor => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOf(`${os}/${architecture}/${variant}`),
      size: 1,
      platform: { os, architecture, ...(variant ? { variant } : {}) },
    });
    const list = [
      entry('amd64', 'windows'),
      entry('arm', 'linux', 'v6'),
      entry('arm', 'linux', 'v7'),
      entry('amd64'),
    ];
    assert.equal(selectPlatformManifest(list, { os: 'linux', architecture: 'amd64' }), list[3]);
    assert.equal(selectPlatformManifest(list, { os: 'linux', architecture: 'arm', variant: 'v7' }), list[2]);
    assert.equal(selectPlatformManifest(list, { os: 'linux', architecture: 'arm' }), list[1]);
    assert.equal(selectPlatformManifest(list, { os: 'linux', architecture: 's390x' }), undefined);
  });
});

describe('hosts for the estimate', () => {
  it('tries the mirror, the hosts.toml hosts that can resolve, then the server', () => {
    const doc = parseHostsToml(`server = "http://127.0.0.1:6000"
[host."http://127.0.0.1:5000"]
  capabilities = ["pull", "resolve"]
[host."http://pull-only:5000"]
  capabilities = ["pull"]
[host."http://override/v2/x"]
  capabilities = ["pull", "resolve"]
  override_path = true
[host."http://defaults:5000"]
`);
    assert.deepEqual(registryHosts('127.0.0.1:6000', doc, { needResolve: true }), [
      { url: 'http://127.0.0.1:5000', mirror: true },
      { url: 'http://defaults:5000', mirror: true },
      { url: 'http://127.0.0.1:6000', mirror: false },
    ]);
    assert.deepEqual(
      registryHosts('127.0.0.1:6000', doc, { needResolve: false, mirrorUrl: 'http://given/' }).map(
        (h) => h.url,
      ),
      [
        'http://given',
        'http://127.0.0.1:5000',
        'http://pull-only:5000',
        'http://defaults:5000',
        'http://127.0.0.1:6000',
      ],
    );
    assert.deepEqual(registryHosts('docker.io', undefined, { needResolve: true }), [
      { url: 'https://registry-1.docker.io', mirror: false },
    ]);
    // containerd's default server: plain HTTP for loopback registries only.
    assert.equal(defaultServer('127.0.0.1:5000'), 'http://127.0.0.1:5000');
    assert.equal(defaultServer('localhost:5000'), 'http://localhost:5000');
    assert.equal(defaultServer('[::1]:5000'), 'http://[::1]:5000');
    assert.equal(defaultServer('ghcr.io'), 'https://ghcr.io');
  });
});

describe('auth file (Docker config.json)', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  it('reads auth and username/password entries under normalised registry names', () => {
    const f = parseAuthFile(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: b64('hub:se:cret') },
          '127.0.0.1:5000': { username: 'u', password: 'p' },
          'ghcr.io': { identitytoken: 'tok' },
        },
        credHelpers: { 'gcr.io': 'gcloud' },
      }),
      '/x/config.json',
    );
    assert.deepEqual(f.registries.get('docker.io'), { username: 'hub', password: 'se:cret' });
    assert.deepEqual(f.registries.get('127.0.0.1:5000'), { username: 'u', password: 'p' });
    assert.equal(f.registries.has('ghcr.io'), false);
    assert.deepEqual(f.skipped, [
      'ghcr.io: identitytoken is not supported, use username and password',
      'gcr.io: credential helpers are not run',
    ]);
    assert.equal(authKeyRegistry('http://Registry.Example:5000/v2/'), 'registry.example:5000');
  });

  it('rejects a bad file with the key at fault', () => {
    for (const [text, pattern] of [
      ['not json', /is not valid JSON/],
      ['[]', /must be a JSON object/],
      ['{"auths": []}', /"auths" must be an object/],
      [JSON.stringify({ auths: { 'r.io': { auth: b64('nocolon') } } }), /auths\."r\.io"\.auth is not base64/],
    ] as const) {
      assert.throws(
        () => parseAuthFile(text, '/x/config.json'),
        (err: unknown) => err instanceof NodeConfigError && err.isInput && pattern.test(err.message),
        text,
      );
    }
  });

  it('defaults to $DOCKER_CONFIG/config.json only when DOCKER_CONFIG is set', () => {
    assert.equal(authFilePath('/given.json', { DOCKER_CONFIG: '/d' }), '/given.json');
    assert.equal(authFilePath(undefined, { DOCKER_CONFIG: '/d' }), '/d/config.json');
    assert.equal(authFilePath(undefined, {}), undefined);
  });
});
