import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatPlatform, parseDigest, type Descriptor } from '../oci/index.js';
import { EstargzError } from './errors.js';
import { artifactReason, classifyEntry, planIndex, rewriteReference } from './index-entries.js';
import { parsePlatform, platformMatches } from './platforms.js';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function desc(n: number, extra: Partial<Descriptor> = {}): Descriptor {
  return {
    mediaType: MANIFEST,
    digest: parseDigest(`sha256:${String(n).repeat(64).slice(0, 64)}`),
    size: 1,
    ...extra,
  };
}

const amd64 = desc(1, { platform: { os: 'linux', architecture: 'amd64' } });
const arm64 = desc(2, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
const attestation = desc(3, {
  platform: { os: 'unknown', architecture: 'unknown' },
  annotations: {
    'vnd.docker.reference.type': 'attestation-manifest',
    'vnd.docker.reference.digest': amd64.digest.value,
  },
});

describe('--platform parsing and matching', () => {
  it('parses os/arch[/variant] and refuses anything else with an example', () => {
    assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parsePlatform('Linux/AMD64'), { os: 'linux', architecture: 'amd64' });
    for (const bad of ['amd64', 'linux/', 'linux/arm/v7/x', 'linux/am d64', '']) {
      assert.throws(
        () => parsePlatform(bad),
        (e: unknown) =>
          e instanceof EstargzError && e.code === 'PLATFORM_INVALID' && /e\.g\. linux\/amd64/.test(e.message),
        bad,
      );
    }
  });

  it('normalises as containerd does: arm64/v8 is arm64, arm is arm/v7, x86_64 is amd64', () => {
    assert.ok(
      platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    );
    assert.ok(
      platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' }),
    );
    assert.ok(platformMatches(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' }));
    assert.ok(
      !platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v6' }),
    );
    assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  });
});

describe('index entries', () => {
  it('tells images from attestations, nested indexes and artifacts', () => {
    assert.deepEqual(classifyEntry(amd64), { kind: 'image' });
    assert.deepEqual(classifyEntry(attestation), {
      kind: 'other',
      reason: 'attestation-manifest',
      refersTo: amd64.digest.value,
    });
    assert.deepEqual(classifyEntry(desc(4, { mediaType: 'application/vnd.oci.image.index.v1+json' })), {
      kind: 'other',
      reason: 'nested index',
    });
    assert.equal(
      classifyEntry(desc(5, { platform: { os: 'unknown', architecture: 'unknown' } })).kind,
      'other',
    );
    const oci = 'application/vnd.oci.image.config.v1+json';
    assert.equal(artifactReason(Buffer.from('{}'), oci), undefined);
    assert.equal(
      artifactReason(Buffer.from('{"artifactType":"application/spdx+json"}'), oci),
      'artifact application/spdx+json',
    );
    assert.equal(
      artifactReason(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json'),
      'artifact with config application/vnd.oci.empty.v1+json',
    );
  });

  const entries = [amd64, arm64, attestation].map((d) => ({ desc: d, kind: classifyEntry(d) }));

  it('converts every image and copies the attestation when no platform is named', () => {
    assert.deepEqual(planIndex(entries, []), [
      { action: 'convert' },
      { action: 'convert' },
      { action: 'copy', reason: 'attestation-manifest', refersTo: amd64.digest.value },
    ]);
  });

  it('drops the platforms not named and the attestations that describe them', () => {
    assert.deepEqual(planIndex(entries, [parsePlatform('linux/arm64')]), [
      { action: 'drop', reason: 'platform not selected by --platform' },
      { action: 'convert' },
      { action: 'drop', reason: 'attestation-manifest of linux/amd64, which is not converted' },
    ]);
  });

  it('refuses a --platform that matches no image, naming the ones there are', () => {
    assert.throws(
      () => planIndex(entries, [parsePlatform('linux/amd64'), parsePlatform('linux/s390x')]),
      (e: unknown) =>
        e instanceof EstargzError &&
        e.code === 'PLATFORM_NOT_FOUND' &&
        e.message ===
          '--platform linux/s390x matches no image of the index (it has linux/amd64, linux/arm64/v8)',
    );
    assert.throws(
      () => planIndex([{ desc: attestation, kind: classifyEntry(attestation) }], []),
      /holds no container image/,
    );
  });

  it('moves a reference to the converted manifest and leaves others alone', () => {
    const moved = rewriteReference(attestation.annotations, new Map([[amd64.digest.value, 'sha256:new']]));
    assert.equal(moved.annotations?.['vnd.docker.reference.digest'], 'sha256:new');
    assert.equal(moved.annotations?.['vnd.docker.reference.type'], 'attestation-manifest');
    assert.deepEqual([moved.from, moved.to], [amd64.digest.value, 'sha256:new']);
    // the source annotations are not modified in place
    assert.equal(attestation.annotations?.['vnd.docker.reference.digest'], amd64.digest.value);
    assert.deepEqual(rewriteReference(attestation.annotations, new Map()), {
      annotations: attestation.annotations,
    });
  });
});
