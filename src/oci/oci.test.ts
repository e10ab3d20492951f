import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  acceptsMediaType,
  detectManifestMediaType,
  digestOf,
  Digester,
  isValidRepository,
  MediaType,
  parseAccept,
  parseDigest,
  parseImageReference,
  parseManifest,
  parseManifestReference,
  parseRange,
  formatImageReference,
} from './index.js';

const HEX64 = 'a'.repeat(64);

describe('digests', () => {
  it('parses sha256 and sha512', () => {
    assert.equal(parseDigest(`sha256:${HEX64}`).hex, HEX64);
    assert.equal(parseDigest(`sha512:${'b'.repeat(128)}`).algorithm, 'sha512');
  });
  for (const bad of [
    '',
    'sha256',
    `sha256:${HEX64.slice(1)}`,
    `sha256:${HEX64}0`,
    `sha256:${'A'.repeat(64)}`,
    `md5:${HEX64}`,
    `sha256:../../${HEX64.slice(6)}`,
    `sha512:${HEX64}`,
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 30))}`, () => {
      assert.throws(() => parseDigest(bad), { code: 'DIGEST_INVALID' });
    });
  }
  it('streams to the same digest as one shot', () => {
    const d = new Digester();
    d.update(Buffer.from('hello '));
    d.update(Buffer.from('world'));
    assert.equal(d.size, 11);
    assert.equal(d.digest().value, digestOf('hello world').value);
    assert.equal(
      digestOf('').value,
      'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
});

describe('repository names and references', () => {
  const valid = ['a', 'library/alpine', 'org/app-x/b_c', 'a.b__c/d--e', '0/1/2'];
  const invalid = [
    '',
    'A',
    'a//b',
    '/a',
    'a/',
    '../x',
    'a/../b',
    'a..b',
    'a.',
    '-a',
    'a_-b',
    'x'.repeat(256),
  ];
  for (const n of valid) it(`accepts name ${n}`, () => assert.ok(isValidRepository(n)));
  for (const n of invalid)
    it(`rejects name ${JSON.stringify(n.slice(0, 20))}`, () => assert.ok(!isValidRepository(n)));

  it('parses tags and digests as manifest references', () => {
    assert.deepEqual(parseManifestReference('v1.2_3-x'), { kind: 'tag', tag: 'v1.2_3-x' });
    assert.equal(parseManifestReference(`sha256:${HEX64}`).kind, 'digest');
    assert.throws(() => parseManifestReference('.hidden'), { code: 'TAG_INVALID' });
    assert.throws(() => parseManifestReference('x'.repeat(129)), { code: 'TAG_INVALID' });
    assert.throws(() => parseManifestReference('sha256:zz'), { code: 'DIGEST_INVALID' });
  });

  const refs: Array<[string, string]> = [
    ['alpine', 'docker.io/library/alpine:latest'],
    ['alpine:3.19', 'docker.io/library/alpine:3.19'],
    ['bitnami/redis', 'docker.io/bitnami/redis:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['ghcr.io/org/app:v1', 'ghcr.io/org/app:v1'],
    ['127.0.0.1:5000/test/app', '127.0.0.1:5000/test/app:latest'],
    ['localhost/app:x', 'localhost/app:x'],
    [`quay.io/a/b@sha256:${HEX64}`, `quay.io/a/b@sha256:${HEX64}`],
    [`nvcr.io/nvidia/pytorch:24.05-py3@sha256:${HEX64}`, `nvcr.io/nvidia/pytorch:24.05-py3@sha256:${HEX64}`],
  ];
  for (const [input, want] of refs) {
    it(`normalises ${input}`, () => assert.equal(formatImageReference(parseImageReference(input)), want));
  }
  for (const bad of ['', 'UPPER/case', 'a:b:c', 'ghcr.io/', 'x@sha256:1']) {
    it(`rejects reference ${JSON.stringify(bad)}`, () => assert.throws(() => parseImageReference(bad)));
  }
});

describe('Accept negotiation', () => {
  it('parses weights and joined headers', () => {
    assert.deepEqual(parseAccept(['application/a; q=0.5, application/b', 'application/c;q=0']), [
      'application/a',
      'application/b',
    ]);
    assert.deepEqual(parseAccept(undefined), []);
  });
  it('accepts only what was asked for, or anything when nothing was', () => {
    assert.ok(acceptsMediaType([], MediaType.OciManifest));
    assert.ok(acceptsMediaType(['*/*'], MediaType.OciIndex));
    assert.ok(!acceptsMediaType([MediaType.DockerManifest], MediaType.OciManifest));
    assert.ok(acceptsMediaType([MediaType.DockerManifest, MediaType.OciManifest], MediaType.OciManifest));
  });
});

describe('manifests', () => {
  const desc = (n: number) => ({
    mediaType: MediaType.OciLayerGzip,
    digest: `sha256:${String(n).repeat(64)}`,
    size: n,
  });
  it('parses an OCI image manifest without mediaType by its shape', () => {
    const body = Buffer.from(
      JSON.stringify({ schemaVersion: 2, config: desc(1), layers: [desc(2), desc(3)] }),
    );
    const m = parseManifest(body);
    assert.equal(m.kind, 'manifest');
    assert.equal(m.mediaType, MediaType.OciManifest);
    if (m.kind === 'manifest')
      assert.deepEqual(
        m.layers.map((l) => l.size),
        [2, 3],
      );
  });
  it('parses a Docker manifest list with platforms', () => {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.DockerManifestList,
        manifests: [{ ...desc(4), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
      }),
    );
    const m = parseManifest(body);
    assert.equal(m.kind, 'index');
    if (m.kind === 'index')
      assert.deepEqual(m.manifests[0]?.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
  it('uses Content-Type when the document does not say', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, config: desc(1), layers: [] }));
    assert.equal(
      detectManifestMediaType(body, `${MediaType.DockerManifest}; charset=utf-8`),
      MediaType.DockerManifest,
    );
  });
  for (const [name, body] of [
    ['not JSON', '{'],
    ['an array', '[]'],
    ['no layers', '{"schemaVersion":2,"config":{}}'],
    ['a bad digest', JSON.stringify({ config: { ...desc(1), digest: 'sha256:x' }, layers: [] })],
    ['a negative size', JSON.stringify({ config: { ...desc(1), size: -1 }, layers: [] })],
  ] as const) {
    it(`rejects ${name}`, () =>
      assert.throws(() => parseManifest(Buffer.from(body)), { code: 'MANIFEST_INVALID' }));
  }
});

describe('ranges', () => {
  const table: Array<[string, number | undefined, unknown]> = [
    ['bytes=0-9', 100, { kind: 'range', range: { start: 0, end: 9 } }],
    ['bytes=90-', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=90-200', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=-10', 100, { kind: 'range', range: { start: 90, end: 99 } }],
    ['bytes=-1000', 100, { kind: 'range', range: { start: 0, end: 99 } }],
    ['bytes=0-0,50-59', 100, { kind: 'range', range: { start: 0, end: 59 } }],
    ['BYTES = 5-5', 100, { kind: 'range', range: { start: 5, end: 5 } }],
    ['bytes=100-', 100, { kind: 'unsatisfiable' }],
    ['bytes=-0', 100, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=10-', undefined, { kind: 'range', range: { start: 10, end: Number.MAX_SAFE_INTEGER } }],
  ];
  for (const [header, size, want] of table) {
    it(`${header} of ${size}`, () => assert.deepEqual(parseRange(header, size), want));
  }
  assert.deepEqual(parseRange(undefined, 5), { kind: 'none' });
  for (const bad of [
    'bytes',
    'items=0-1',
    'bytes=a-b',
    'bytes=5-1',
    'bytes=',
    'bytes=1-2-3',
    `bytes=${'0-1,'.repeat(3000)}`,
  ]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}`, () =>
      assert.throws(() => parseRange(bad, 100), { code: 'RANGE_INVALID' }));
  }
});
