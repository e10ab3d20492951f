import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageMatches, ImageQueryError, parseImageQuery } from './image-match.js';

const DA = `sha256:${'a'.repeat(64)}`;
const DB = `sha256:${'b'.repeat(64)}`;

describe('image queries', () => {
  it('normalise as containerd names images', () => {
    assert.deepEqual(parseImageQuery('nginx:1.25'), {
      input: 'nginx:1.25',
      name: 'docker.io/library/nginx',
      tag: '1.25',
      anyTag: false,
    });
    assert.deepEqual(parseImageQuery(`localhost:5000/app@${DA}`), {
      input: `localhost:5000/app@${DA}`,
      name: 'localhost:5000/app',
      digest: DA,
      anyTag: false,
    });
    // A port is not a tag.
    assert.equal(parseImageQuery('127.0.0.1:5000/app').anyTag, true);
  });

  it('refuses what is not a reference, with an example of one', () => {
    assert.throws(
      () => parseImageQuery('Not An Image'),
      (e: unknown) => {
        assert.ok(e instanceof ImageQueryError);
        assert.equal(e.code, 'IMAGE_QUERY_INVALID');
        assert.match(e.message, /give one such as nginx:1\.25/);
        return true;
      },
    );
  });

  const cases: Array<[string, string, string | undefined, boolean]> = [
    ['nginx:1.25', 'docker.io/library/nginx:1.25', undefined, true],
    ['docker.io/library/nginx:1.25', 'nginx:1.25', undefined, true],
    ['index.docker.io/library/nginx:1.25', 'nginx:1.25', undefined, true],
    ['nginx:1.25', 'nginx:1.26', undefined, false],
    ['nginx:1.25', 'ghcr.io/library/nginx:1.25', undefined, false],
    ['nginx:latest', 'nginx', undefined, true],
    // No tag in the query: every tag of the repository.
    ['nginx', 'nginx:1.25', undefined, true],
    ['nginx', `nginx@${DA}`, undefined, true],
    ['nginx', 'nginx-exporter:1', undefined, false],
    // Digests: the reference's own, or the one known for a tag.
    [`nginx@${DA}`, `docker.io/library/nginx@${DA}`, undefined, true],
    [`nginx@${DA}`, 'nginx:1.25', DA, true],
    [`nginx@${DA}`, 'nginx:1.25', DB, false],
    [`nginx@${DA}`, 'nginx:1.25', undefined, false],
    [`nginx:1.25@${DA}`, `nginx:1.26@${DA}`, undefined, true],
    ['nginx:1.25', 'not a reference', undefined, false],
  ];
  for (const [query, candidate, digest, want] of cases) {
    it(`${query} ${want ? 'matches' : 'does not match'} ${candidate}${digest ? ` (digest ${digest.slice(7, 10)}…)` : ''}`, () =>
      assert.equal(imageMatches(parseImageQuery(query), candidate, digest), want));
  }
});
