import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectManifestMediaType, formatPlatform, MAX_MANIFEST_BYTES, parseManifest } from './manifest.js';
import { MediaType } from './media-types.js';

const desc = (n: number, extra: Record<string, unknown> = {}) => ({
  mediaType: MediaType.OciLayerGzip,
  digest: `sha256:${String(n).repeat(64)}`,
  size: n,
  ...extra,
});
const body = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const image = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  config: desc(1),
  layers: [desc(2)],
  ...extra,
});

/** Asserts MANIFEST_INVALID with a message that says where the document is wrong. */
function invalid(doc: string | Buffer, message: RegExp): void {
  assert.throws(
    () => parseManifest(typeof doc === 'string' ? Buffer.from(doc) : doc),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MANIFEST_INVALID');
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('manifest media type detection', () => {
  it('prefers the declared mediaType over the shape', () => {
    assert.equal(
      detectManifestMediaType(body(image({ mediaType: MediaType.DockerManifest }))),
      MediaType.DockerManifest,
    );
  });
  it('ignores a declared or sent type that is not a manifest type', () => {
    assert.equal(
      detectManifestMediaType(body(image({ mediaType: 'application/json' }))),
      MediaType.OciManifest,
    );
    assert.equal(detectManifestMediaType(body(image()), 'application/json'), MediaType.OciManifest);
  });
  it('compares Content-Type case-insensitively, without parameters', () => {
    assert.equal(
      detectManifestMediaType(
        body(image()),
        ' Application/VND.Docker.Distribution.Manifest.V2+JSON ; charset=utf-8',
      ),
      MediaType.DockerManifest,
    );
  });
  it('recognises an index by its shape', () => {
    assert.equal(detectManifestMediaType(body({ schemaVersion: 2, manifests: [] })), MediaType.OciIndex);
  });
  it('needs both config and layers to call a document an image manifest', () => {
    for (const doc of [{}, { layers: [] }, { config: desc(1) }]) {
      assert.throws(
        () => detectManifestMediaType(body(doc)),
        /not an OCI or Docker schema 2 manifest or index/,
      );
    }
  });
});

describe('manifest parsing', () => {
  it('keeps annotations (strings only) on the manifest, an index and descriptors', () => {
    const m = parseManifest(
      body(image({ annotations: { a: 'x', n: 5 }, layers: [desc(2, { annotations: { b: 'y' } })] })),
    );
    assert.deepEqual(m.annotations, { a: 'x' });
    assert.ok(m.kind === 'manifest');
    assert.deepEqual(m.layers[0]?.annotations, { b: 'y' });
    assert.equal('annotations' in m.config, false);
    const i = parseManifest(body({ mediaType: MediaType.OciIndex, manifests: [], annotations: { c: 'z' } }));
    assert.deepEqual(i.annotations, { c: 'z' });
    assert.equal('annotations' in parseManifest(body(image())), false);
  });

  it('ignores null annotations', () => {
    const m = parseManifest(body(image({ annotations: null, layers: [desc(2, { annotations: null })] })));
    assert.equal('annotations' in m, false);
    assert.ok(m.kind === 'manifest' && !('annotations' in m.layers[0]!));
  });

  it('reads a platform only when it has os and architecture, with variant and os.version', () => {
    const m = parseManifest(
      body({
        mediaType: MediaType.OciIndex,
        manifests: [
          desc(1, {
            platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763', variant: 7 },
          }),
          desc(2, { platform: { architecture: 'arm64' } }),
          desc(3, { platform: null }),
          desc(4, { platform: { os: 'linux' } }),
        ],
      }),
    );
    assert.ok(m.kind === 'index');
    assert.deepEqual(m.manifests[0]?.platform, {
      os: 'windows',
      architecture: 'amd64',
      'os.version': '10.0.17763',
    });
    assert.equal(m.manifests[1]?.platform, undefined);
    assert.equal(m.manifests[2]?.platform, undefined);
    assert.equal(m.manifests[3]?.platform, undefined);
  });

  it('accepts a zero-size descriptor', () => {
    const m = parseManifest(body(image({ layers: [desc(0)] })));
    assert.ok(m.kind === 'manifest' && m.layers[0]?.size === 0);
  });

  it('accepts a manifest of exactly the size limit and refuses one byte more', () => {
    const json = JSON.stringify(image());
    const exact = Buffer.from(json + ' '.repeat(MAX_MANIFEST_BYTES - json.length));
    assert.equal(parseManifest(exact).kind, 'manifest');
    invalid(Buffer.concat([exact, Buffer.from(' ')]), /manifest is larger than 4194304 bytes/);
  });

  it('keeps the JSON error as the cause', () => {
    assert.throws(
      () => parseManifest(Buffer.from('{')),
      (err: Error) => err.message === 'manifest is not valid JSON' && err.cause instanceof SyntaxError,
    );
  });

  const bad: Array<[string, string, RegExp]> = [
    ['null', 'null', /not a JSON object/],
    ['a number', '5', /not a JSON object/],
    ['an array', '[]', /not a JSON object/],
    [
      'an index without manifests',
      JSON.stringify({ mediaType: MediaType.OciIndex }),
      /index has no "manifests" array/,
    ],
    [
      'a Docker manifest without layers',
      JSON.stringify({ mediaType: MediaType.DockerManifest, config: desc(1) }),
      /manifest has no "layers" array/,
    ],
    [
      'a null descriptor',
      JSON.stringify(image({ layers: [desc(2), null] })),
      /layers\[1\] is not a descriptor object/,
    ],
    ['a number descriptor', JSON.stringify(image({ config: 5 })), /config is not a descriptor object/],
    [
      'a descriptor without mediaType',
      JSON.stringify(image({ config: { digest: desc(1).digest, size: 1 } })),
      /config\.mediaType is missing/,
    ],
    [
      'a descriptor without digest',
      JSON.stringify({ mediaType: MediaType.OciIndex, manifests: [{ mediaType: 'x', size: 1 }] }),
      /manifests\[0\]\.digest is missing/,
    ],
    [
      'a fractional size',
      JSON.stringify(image({ layers: [desc(2, { size: 1.5 })] })),
      /layers\[0\]\.size must be a non-negative integer/,
    ],
    [
      'a string size',
      JSON.stringify(image({ layers: [desc(2, { size: '2' })] })),
      /layers\[0\]\.size must be/,
    ],
    [
      'a bad digest',
      JSON.stringify(image({ config: desc(1, { digest: 'sha256:x' }) })),
      /config\.digest "sha256:x" is invalid/,
    ],
  ];
  for (const [name, doc, message] of bad) it(`explains ${name}`, () => invalid(doc, message));

  it('keeps the digest error as the cause', () => {
    assert.throws(
      () => parseManifest(body(image({ config: desc(1, { digest: 'sha256:x' }) }))),
      (err: Error) => (err.cause as { code?: string } | undefined)?.code === 'DIGEST_INVALID',
    );
  });
});

describe('formatPlatform', () => {
  it('writes os/architecture and a variant only when there is one', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: '' }), 'linux/arm64');
  });
});
