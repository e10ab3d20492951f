import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clip, isDigest, parseDigest } from './digest.js';
import { OciParseError } from './errors.js';
import { acceptsMediaType, isIndexMediaType, MediaType, parseAccept } from './media-types.js';
import {
  formatImageReference,
  isValidRepository,
  parseImageReference,
  parseManifestReference,
  parseRepository,
} from './reference.js';

const HEX64 = 'a'.repeat(64);

/** Asserts that `fn` throws an OciParseError with `code` whose message matches `message`. */
function throwsOci(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof OciParseError);
    assert.equal(err.name, 'OciParseError');
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

describe('digest edges', () => {
  it('rejects hex followed by garbage of the right total length', () => {
    assert.throws(() => parseDigest(`sha256:${'a'.repeat(63)}Z`), { code: 'DIGEST_INVALID' });
  });
  it('says which part of a digest is wrong', () => {
    throwsOci(() => parseDigest('sha256'), 'DIGEST_INVALID', /digest "sha256" has no algorithm prefix/);
    throwsOci(() => parseDigest(`md5:${HEX64}`), 'DIGEST_INVALID', /algorithm "md5" is not supported/);
    throwsOci(
      () => parseDigest('sha512:abc'),
      'DIGEST_INVALID',
      /must be 128 lowercase hex characters after "sha512:"/,
    );
  });
  it('isDigest answers false, not just something falsy', () => {
    assert.equal(isDigest('nope'), false);
    assert.equal(isDigest(`sha256:${HEX64}`), true);
  });
  it('clips long untrusted input for messages and leaves short input alone', () => {
    assert.equal(clip('abc', 3), 'abc');
    assert.equal(clip('abcd', 3), 'abc...');
    assert.equal(clip('x'.repeat(80)), 'x'.repeat(80));
    assert.equal(clip('x'.repeat(81)), `${'x'.repeat(80)}...`);
  });
});

describe('media type edges', () => {
  it('knows both index media types', () => {
    assert.ok(isIndexMediaType(MediaType.OciIndex));
    assert.ok(isIndexMediaType(MediaType.DockerManifestList));
    assert.ok(!isIndexMediaType(MediaType.OciManifest));
  });
  it('parses a single Accept header string, skipping empty entries', () => {
    assert.deepEqual(parseAccept('Application/A, ,application/b'), ['application/a', 'application/b']);
  });
  it('drops q=0 however it is spaced, and only the q parameter', () => {
    assert.deepEqual(parseAccept('application/a; q = 0, application/b; xq=0'), ['application/b']);
  });
  it('takes application/* as a wildcard', () => {
    assert.ok(acceptsMediaType(['application/*'], MediaType.OciManifest));
    assert.ok(!acceptsMediaType(['text/*'], MediaType.OciManifest));
  });
});

describe('reference edges', () => {
  it('accepts a repository name of exactly 255 characters', () => {
    assert.ok(isValidRepository('a'.repeat(255)));
    assert.ok(!isValidRepository('a'.repeat(256)));
  });
  it('explains invalid names, tags and references', () => {
    throwsOci(() => parseRepository('A'), 'NAME_INVALID', /repository name "A" is invalid: use lowercase/);
    throwsOci(() => parseManifestReference('-x'), 'TAG_INVALID', /tag "-x" is invalid: up to 128 characters/);
    throwsOci(() => parseImageReference(''), 'REFERENCE_INVALID', /empty or too long/);
    throwsOci(() => parseImageReference('a'.repeat(4097)), 'REFERENCE_INVALID', /empty or too long/);
    throwsOci(() => parseImageReference('alpine:-bad'), 'REFERENCE_INVALID', /has an invalid tag "-bad"/);
    throwsOci(
      () => parseImageReference('Alpine'),
      'REFERENCE_INVALID',
      /image reference "Alpine" has an invalid repository "library\/Alpine"/,
    );
  });

  // Docker's reference grammar decides what is a registry host: only a first component that is
  // a valid domain (or [IPv6]) with a dot, a colon or "localhost" is one.
  const refs: Array<[string, string]> = [
    ['my_x.io/app', 'docker.io/my_x.io/app:latest'],
    ['my.io_x/app', 'docker.io/my.io_x/app:latest'],
    ['a.io/app', 'a.io/app:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['foo.io', 'docker.io/library/foo.io:latest'],
    ['registry-1.docker.io/x', 'docker.io/library/x:latest'],
  ];
  for (const [input, want] of refs) {
    it(`normalises ${input}`, () => assert.equal(formatImageReference(parseImageReference(input)), want));
  }

  it('adds no tag to a reference by digest alone', () => {
    const ref = parseImageReference(`ghcr.io/a/b@sha256:${HEX64}`);
    assert.deepEqual(Object.keys(ref).sort(), ['digest', 'registry', 'repository']);
  });
});
