import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientErrorAnswer, clientErrorResponse } from './client-errors.js';
import { checkRequest, checkRequestTarget } from './request-guard.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('request target guard', () => {
  for (const ok of [
    '/v2/',
    '/healthz',
    `/v2/library/alpine/blobs/${DIGEST}?ns=docker.io`,
    '/v2/a/b.c/manifests/v1.2',
    '/v2/a/tags/list?n=100&last=v1',
    '/v2/a/manifests/v1..x',
  ]) {
    it(`passes ${ok}`, () => assert.equal(checkRequestTarget(ok), undefined));
  }
  for (const [bad, code] of [
    ['/v2/a/../b/manifests/v1', 'NAME_INVALID'],
    ['/v2/a/%2e%2E/b/manifests/v1', 'NAME_INVALID'],
    ['/v2/a/./b/manifests/v1', 'NAME_INVALID'],
    [`/v2/a/blobs/${DIGEST}/.`, 'NAME_INVALID'],
    ['/v2/a\\b/manifests/v1', 'NAME_INVALID'],
    ['//evil.example/v2/a/manifests/v1', 'NAME_INVALID'],
    ['http://evil.example/v2/a/manifests/v1', 'NAME_INVALID'],
    ['*', 'NAME_INVALID'],
    ['/v2/t\u00e9st/manifests/v1', 'NAME_INVALID'],
    [`/v2/${'a'.repeat(5000)}`, 'NAME_INVALID'],
    ['/v2/a/manifests/v1?ns=x&ns=y', 'NAME_INVALID'],
    ['/v2/a/tags/list?n=abc', 'UNSUPPORTED'],
    ['/v2/a/tags/list?n=1&n=2', 'UNSUPPORTED'],
    ['/v2/a/tags/list?n=9999999', 'UNSUPPORTED'],
    ['/v2/a/tags/list?last=../x', 'TAG_INVALID'],
  ] as const) {
    it(`refuses ${JSON.stringify(bad.slice(0, 50))} with a 400`, () => {
      const e = checkRequestTarget(bad);
      assert.equal(e?.code, code);
      assert.equal(e?.status, 400);
    });
  }
  it('refuses HTTP/2.0 and HTTP/0.9 request lines', () => {
    assert.equal(checkRequest({ url: '/v2/', httpVersionMajor: 2, httpVersionMinor: 0 })?.status, 400);
    assert.equal(checkRequest({ url: '/v2/', httpVersionMajor: 0, httpVersionMinor: 9 })?.status, 400);
    assert.equal(checkRequest({ url: '/v2/', httpVersionMajor: 1, httpVersionMinor: 0 }), undefined);
  });
});

describe('client error answers', () => {
  it('maps parser errors to 431, 413, 408 and 400', () => {
    assert.equal(clientErrorAnswer('HPE_HEADER_OVERFLOW').status, 431);
    assert.equal(clientErrorAnswer('HPE_CHUNK_EXTENSIONS_OVERFLOW').status, 413);
    assert.equal(clientErrorAnswer('ERR_HTTP_REQUEST_TIMEOUT').status, 408);
    assert.equal(clientErrorAnswer('HPE_INVALID_METHOD').status, 400);
    assert.equal(clientErrorAnswer(undefined).status, 400);
  });
  it('writes a complete response with an OCI error body and closes', () => {
    const raw = clientErrorResponse(clientErrorAnswer('HPE_HEADER_OVERFLOW'));
    const [head = '', body = ''] = raw.split('\r\n\r\n');
    assert.match(head, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    assert.match(head, /\r\nconnection: close(\r\n|$)/);
    assert.match(head, new RegExp(`\\r\\ncontent-length: ${Buffer.byteLength(body)}(\\r\\n|$)`));
    const parsed = JSON.parse(body) as { errors: Array<{ code: string; message: string }> };
    assert.equal(parsed.errors[0]?.code, 'HEADERS_TOO_LARGE');
  });
});
