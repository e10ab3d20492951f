import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { routeRequest, type RoutingTable } from './routing.js';

const table: RoutingTable = {
  upstreams: new Set(['docker.io', 'ghcr.io', '127.0.0.1:6000']),
  defaultUpstream: 'docker.io',
};
const D = `sha256:${'c'.repeat(64)}`;
const route = (path: string, query = '') => routeRequest(path, new URLSearchParams(query), table);

describe('routing', () => {
  it('routes the fixed endpoints', () => {
    for (const [path, kind] of [
      ['/v2/', 'base'],
      ['/v2', 'base'],
      ['/metrics', 'metrics'],
      ['/healthz', 'healthz'],
      ['/readyz', 'readyz'],
      ['/v2/_catalog', 'catalog'],
    ] as const) {
      assert.equal(route(path).kind, kind, path);
    }
  });

  it('chooses the upstream by ns first', () => {
    assert.deepEqual(route('/v2/org/app/manifests/v1', 'ns=ghcr.io'), {
      kind: 'manifest',
      upstream: 'ghcr.io',
      repo: 'org/app',
      reference: { kind: 'tag', tag: 'v1' },
      rawReference: 'v1',
    });
    const r = route(`/v2/test/app/blobs/${D}`, 'ns=127.0.0.1:6000');
    assert.equal(r.kind, 'blob');
    if (r.kind === 'blob') {
      assert.equal(r.upstream, '127.0.0.1:6000');
      assert.equal(r.digest.value, D);
    }
  });

  it('then by a first path segment naming an upstream, then the default', () => {
    const a = route('/v2/ghcr.io/org/app/manifests/latest');
    assert.ok(a.kind === 'manifest' && a.upstream === 'ghcr.io' && a.repo === 'org/app');
    const b = route('/v2/org/app/manifests/latest');
    assert.ok(b.kind === 'manifest' && b.upstream === 'docker.io' && b.repo === 'org/app');
    const c = route('/v2/127.0.0.1:6000/x/tags/list');
    assert.ok(c.kind === 'tags' && c.upstream === '127.0.0.1:6000' && c.repo === 'x');
  });

  it('adds library/ to single-component Docker Hub names', () => {
    const r = route('/v2/alpine/manifests/3', 'ns=docker.io');
    assert.ok(r.kind === 'manifest' && r.repo === 'library/alpine');
    const s = route('/v2/docker.io/alpine/manifests/3');
    assert.ok(s.kind === 'manifest' && s.repo === 'library/alpine');
    const t = route('/v2/127.0.0.1:6000/alpine/manifests/3');
    assert.ok(t.kind === 'manifest' && t.repo === 'alpine');
  });

  it('answers an unknown ns with NAME_UNKNOWN instead of fetching from it', () => {
    assert.throws(() => route('/v2/a/manifests/v1', 'ns=evil.example.com'), { code: 'NAME_UNKNOWN' });
  });

  it('recognises uploads, so that writes can be refused', () => {
    assert.equal(route('/v2/a/blobs/uploads/').kind, 'upload');
    assert.equal(route('/v2/a/blobs/uploads/1234').kind, 'upload');
  });

  const bad: Array<[string, string, string]> = [
    ['/v2/UPPER/manifests/v1', '', 'NAME_INVALID'],
    ['/v2/a/../b/manifests/v1', '', 'NAME_INVALID'],
    // A malformed tag names no manifest: 404, as the OCI conformance suite expects.
    ['/v2/a/manifests/-bad', '', 'MANIFEST_UNKNOWN'],
    ['/v2/a/manifests/.INVALID_MANIFEST_NAME', '', 'MANIFEST_UNKNOWN'],
    ['/v2/a/manifests/sha256:1234', '', 'DIGEST_INVALID'],
    ['/v2/a/blobs/sha256:1234', '', 'DIGEST_INVALID'],
    ['/v2/a/blobs/md5:abcd', '', 'DIGEST_INVALID'],
    ['/v2/a/other/x', '', 'NOT_FOUND'],
    ['/etc/passwd', '', 'NOT_FOUND'],
    [`/v2/${'a/'.repeat(1100)}manifests/v1`, '', 'NAME_INVALID'],
    ['/v2/%2e%2e/manifests/v1', '', 'NAME_INVALID'],
  ];
  for (const [path, query, code] of bad) {
    it(`rejects ${path.slice(0, 40)} with ${code}`, () => assert.throws(() => route(path, query), { code }));
  }
});

describe('routing edges', () => {
  /** Asserts the error code and that the message says what was wrong, in bounded length. */
  const fails = (path: string, query: string, code: string, message: RegExp) =>
    assert.throws(
      () => route(path, query),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, code);
        assert.match(err.message, message);
        assert.ok(err.message.length < 200, `message of ${err.message.length} characters`);
        return true;
      },
    );

  it('says why it refuses, quoting at most a bounded part of the input', () => {
    fails(`/v2/a/manifests/${'x'.repeat(2100)}`, '', 'NAME_INVALID', /request path is too long/);
    fails(`/v2/${'a/'.repeat(300)}manifests/v1`, '', 'NAME_INVALID', /repository name is too long/);
    fails(`/x${'a'.repeat(500)}`, '', 'NOT_FOUND', /^no such endpoint \/xaaa/);
    fails(`/v2/a/other/${'b'.repeat(500)}`, '', 'NOT_FOUND', /^no such endpoint \/v2\/a\/other/);
    fails(
      '/v2/a/manifests/v1',
      `ns=${'e'.repeat(500)}.com`,
      'NAME_UNKNOWN',
      /^registry "eee+" is not mirrored here$/,
    );
  });

  it('serves only the /v2/ API', () => {
    fails('/v3/a/manifests/v1', '', 'NOT_FOUND', /no such endpoint \/v3\/a\/manifests\/v1/);
  });

  it('matches an endpoint only at the end of the path', () => {
    for (const path of [
      '/v2/a/manifests/v1/extra',
      `/v2/a/blobs/${D}/extra`,
      '/v2/a/tags/list/extra',
      '/v2/a/blobs/uploads/1/2',
    ]) {
      fails(path, '', 'NOT_FOUND', /no such endpoint/);
    }
  });

  it('recognises uploads for any repository, with or without a trailing part', () => {
    assert.deepEqual(route('/v2/org/app/blobs/uploads/'), {
      kind: 'upload',
      upstream: 'docker.io',
      repo: 'org/app',
    });
    assert.equal(route('/v2/a/blobs/uploads').kind, 'upload');
  });

  it('takes a first segment as an upstream only when it names one exactly', () => {
    const r = route('/v2/ghcr.iox/manifests/v1');
    assert.ok(r.kind === 'manifest' && r.upstream === 'docker.io' && r.repo === 'library/ghcr.iox');
  });

  it('keeps the tag error as the cause of MANIFEST_UNKNOWN', () => {
    assert.throws(
      () => route('/v2/a/manifests/-bad'),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'MANIFEST_UNKNOWN');
        assert.match(err.message, /^manifest unknown: tag "-bad" is invalid/);
        assert.equal((err.cause as { code?: string } | undefined)?.code, 'TAG_INVALID');
        return true;
      },
    );
  });
});
