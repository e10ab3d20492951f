// Hand-picked hostile requests for the mirror: each names one way of attacking path handling, the
// HTTP parser, the headers or the upstream choice.
import { randomBytes } from 'node:crypto';
import { request, type HostileCase, type Target } from './hostile-requests.js';

/** Hand-picked cases: each names one way of attacking path handling, the parser or the headers. */
export function tableCases(t: Target): HostileCase[] {
  const h = `Host: ${t.host}`;
  const get = (target: string, headers: string[] = [h]) => request('GET', target, headers);
  const manifest = `/v2/${t.repo}/manifests/${t.tag}`;
  const blob = `/v2/${t.repo}/blobs/${t.digest}`;
  const cases: Array<[string, Buffer, Partial<HostileCase>?]> = [
    // Dot segments and backslashes that URL parsing would resolve onto the real image.
    ['dot-dot onto the real image', get(`/v2/test/x/../app/manifests/${t.tag}`)],
    ['encoded dot-dot onto the real image', get(`/v2/test/x/%2e%2e/app/manifests/${t.tag}`)],
    ['mixed-case encoded dot-dot', get(`/v2/test/x/%2E%2e/app/blobs/${t.digest}`)],
    ['single dot segment', get(`/v2/test/./app/manifests/${t.tag}`)],
    ['dot-dot after manifests', get(`/v2/${t.repo}/manifests/../manifests/${t.tag}`)],
    ['dot-dot out of /v2', get(`/v2/../v2/${t.repo}/manifests/${t.tag}`)],
    ['dot-dot from /metrics', get(`/metrics/../v2/${t.repo}/manifests/${t.tag}`)],
    ['trailing dot', get(`/v2/${t.repo}/blobs/${t.digest}/.`)],
    ['backslash separator', get(`/v2/test\\app/manifests/${t.tag}`)],
    ['backslash dot-dot', get(`/v2/test\\x\\..\\app/manifests/${t.tag}`)],
    ['encoded slash in name', get(`/v2/test%2fapp/manifests/${t.tag}`)],
    ['encoded slash in digest', get(`/v2/${t.repo}/blobs/sha256%3a..%2f..%2f${t.marker}`)],
    ['traversal in digest', get(`/v2/${t.repo}/blobs/sha256:../../../../${t.marker}`)],
    ['traversal in tag', get(`/v2/${t.repo}/manifests/..%2f..%2f${t.marker}`)],
    ['etc passwd', get('/../../../../etc/passwd')],
    ['encoded etc passwd', get('/%2e%2e/%2e%2e/%2e%2e/etc/passwd')],
    ['overlong utf-8 dots', get(`/v2/%c0%ae%c0%ae/${t.marker}/manifests/x`)],
    ['NUL in name', get(`/v2/test%00/app/manifests/${t.tag}`)],
    ['NUL in tag', get(`/v2/${t.repo}/manifests/v1%00.json`)],
    ['uppercase digest hex', get(`/v2/${t.repo}/blobs/${t.digest.toUpperCase()}`)],
    ['unknown digest algorithm', get(`/v2/${t.repo}/blobs/md5:${'a'.repeat(32)}`)],
    ['digest too short', get(`/v2/${t.repo}/blobs/${t.digest.slice(0, -1)}`)],
    ['tag too long', get(`/v2/${t.repo}/manifests/${'t'.repeat(129)}`)],
    ['name too long', get(`/v2/${'a/'.repeat(200)}b/manifests/${t.tag}`)],
    ['path too long', get(`/v2/${'a'.repeat(3000)}/manifests/${t.tag}`)],
    ['path beyond the header limit', get(`/v2/${'a'.repeat(20_000)}/manifests/${t.tag}`)],
    // Request targets that are not a path.
    ['absolute-form target', get(`http://${t.host}${manifest}`)],
    ['absolute-form to another host', get(`http://169.254.169.254${manifest}`)],
    ['protocol-relative target', get(`//evil.example${manifest}`)],
    ['target without slash', get(manifest.slice(1))],
    ['asterisk target', get('*')],
    ['OPTIONS asterisk', request('OPTIONS', '*', [h])],
    ['CONNECT', request('CONNECT', '127.0.0.1:22', [h])],
    ['CONNECT to the mirror', request('CONNECT', t.host, [h])],
    [
      'non-ASCII in target',
      Buffer.from(`GET /v2/t\u00e9st/app/manifests/v1 HTTP/1.1\r\n${h}\r\n\r\n`, 'latin1'),
    ],
    // ns values.
    ['ns with traversal', get(`${manifest}?ns=../${t.marker}`)],
    ['ns URL', get(`${manifest}?ns=http://169.254.169.254/`)],
    ['ns unknown registry', get(`${manifest}?ns=docker.io`)],
    ['ns twice', get(`${manifest}?ns=${t.ns}&ns=evil.example`)],
    ['ns very long', get(`${manifest}?ns=${'n'.repeat(3000)}`)],
    ['ns with encoded slash', get(`${manifest}?ns=${t.ns}%2f..`)],
    // Tags list pagination, passed on upstream.
    ['tags n not a number', get(`/v2/${t.repo}/tags/list?n=abc`)],
    ['tags n negative', get(`/v2/${t.repo}/tags/list?n=-1`)],
    ['tags n huge', get(`/v2/${t.repo}/tags/list?n=99999999999999999999`)],
    ['tags last traversal', get(`/v2/${t.repo}/tags/list?last=../../${t.marker}`)],
    ['tags n twice', get(`/v2/${t.repo}/tags/list?n=1&n=2`)],
    // Ranges on the real blob.
    ['range not bytes', get(blob, [h, 'Range: items=0-1'])],
    ['range reversed', get(blob, [h, 'Range: bytes=9-1'])],
    ['range garbage', get(blob, [h, 'Range: bytes=\u00ff-\u00fe'])],
    ['range overflow', get(blob, [h, 'Range: bytes=18446744073709551616-'])],
    ['range too many parts', get(blob, [h, `Range: bytes=${'0-0,'.repeat(3500)}`])],
    ['range beyond header limit', get(blob, [h, `Range: bytes=${'0-0,'.repeat(5000)}`])],
    ['range far past the end', get(blob, [h, 'Range: bytes=999999999999-'])],
    ['range twice', get(blob, [h, 'Range: bytes=0-1', 'Range: bytes=x'])],
    ['HEAD with bad range', request('HEAD', blob, [h, 'Range: bytes=x-y']), { head: true }],
    // Headers.
    ['one 17 KiB header', get(manifest, [h, `X-Big: ${'b'.repeat(17 * 1024)}`])],
    ['one 1 MiB header', get(manifest, [h, `X-Big: ${'b'.repeat(1024 * 1024)}`])],
    ['5000 headers', get(manifest, [h, ...Array.from({ length: 5000 }, (_, i) => `X-${i}: v`)])],
    [
      '1900 headers on a bad path',
      get('/v2/%00/manifests/x', [h, ...Array.from({ length: 1900 }, (_, i) => `X${i}: v`)]),
    ],
    ['header without colon', get(manifest, [h, 'NoColonHere'])],
    ['header name with space', get(manifest, [h, 'Bad Name: x'])],
    ['NUL in header value', get(manifest, [h, 'X-Nul: a\u0000b'])],
    ['obs-fold', get(manifest, [h, 'X-Fold: a', ' folded'])],
    ['accept garbage on the real manifest', get(manifest, [h, 'Accept: \u00ff/\u00fe;;;,,'])],
    ['accept of nothing known', get(manifest, [h, 'Accept: text/html, image/png'])],
    ['huge accept', get('/v2/%00/manifests/x', [h, `Accept: ${'a/b,'.repeat(3000)}`])],
    ['two Host headers on a bad path', get('/v2/a/../b/manifests/x', [h, 'Host: evil.example'])],
    ['missing Host (HTTP/1.1)', request('GET', '/v2/%00/manifests/x', []), { bareNodeAnswer: true }],
    ['Expect other than 100-continue', get('/v2/%00/manifests/x', [h, 'Expect: bogus'])],
    ['Expect 100-continue on a bad path', get('/v2/%2e%2e/manifests/x', [h, 'Expect: 100-continue'])],
    // Bodies, Content-Length and Transfer-Encoding.
    [
      'GET with body on a bad path',
      request('GET', `/v2/${t.repo}/manifests/..`, [h, 'Content-Length: 5'], { body: 'hello' }),
    ],
    ['Content-Length not a number', get(manifest, [h, 'Content-Length: abc'])],
    ['Content-Length negative', get(manifest, [h, 'Content-Length: -1'])],
    ['Content-Length overflow', get(manifest, [h, 'Content-Length: 99999999999999999999999'])],
    ['two Content-Lengths', get(manifest, [h, 'Content-Length: 1', 'Content-Length: 2'])],
    ['TE and CL', get(manifest, [h, 'Transfer-Encoding: chunked', 'Content-Length: 3'])],
    ['TE not chunked', get(manifest, [h, 'Transfer-Encoding: gzip'])],
    [
      'TE chunked with garbage chunks',
      request('GET', '/v2/%00/x', [h, 'Transfer-Encoding: chunked'], { body: 'zz\r\nnope\r\n' }),
    ],
    [
      'POST upload with a body',
      request('POST', `/v2/${t.repo}/blobs/uploads/`, [h, 'Content-Length: 65536'], {
        body: randomBytes(65536),
      }),
    ],
    [
      'PUT manifest',
      request('PUT', manifest, [h, 'Content-Type: application/json', 'Content-Length: 2'], { body: '{}' }),
    ],
    ['DELETE blob', request('DELETE', blob, [h])],
    [
      'PATCH upload',
      request('PATCH', `/v2/${t.repo}/blobs/uploads/x`, [h, 'Content-Length: 1'], { body: 'x' }),
    ],
    // Request lines and protocols.
    [
      'HTTP/1.0 traversal',
      request('GET', `/v2/test/x/../app/manifests/${t.tag}`, [], { version: 'HTTP/1.0' }),
    ],
    [
      'HTTP/1.0 keep-alive, bad name',
      request('GET', '/v2/A/manifests/x', ['Connection: keep-alive'], { version: 'HTTP/1.0' }),
    ],
    ['HTTP/0.9', request('GET', '/v2/%00/manifests/x', [], { version: '' })],
    ['HTTP/2.0 in the request line', request('GET', '/v2/%00/x', [h], { version: 'HTTP/2.0' })],
    ['HTTP/2 preface', Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')],
    [
      'TLS client hello',
      Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), randomBytes(500)]),
    ],
    ['random bytes', randomBytes(2000)],
    ['absurd method', request('X'.repeat(10_000), '/v2/', [h])],
    ['lowercase method', request('get', '/v2/%00/x', [h])],
    ['unknown method', request('BREW', '/v2/', [h])],
    ['tab-separated request line', Buffer.from(`GET\t/v2/%00\tHTTP/1.1\r\n${h}\r\n\r\n`, 'latin1')],
    ['bare LF line ends', Buffer.from(`GET /v2/%00 HTTP/1.1\n${h}\n\n`, 'latin1')],
    ['CR without LF', Buffer.from(`GET /v2/%00 HTTP/1.1\r${h}\r\r`, 'latin1')],
    // Pipelining.
    [
      'pipelined bad requests',
      Buffer.concat([get('/v2/a/../b/manifests/x'), get('/v2/%00/blobs/x')]),
      { responses: 2 },
    ],
    [
      'pipelined bad request then garbage',
      Buffer.concat([get('/v2/A/manifests/x'), randomBytes(300)]),
      { responses: 2 },
    ],
    [
      'pipelined garbage first',
      Buffer.concat([Buffer.from('\u0001\u0002junk\r\n\r\n', 'latin1'), get('/v2/')]),
      { responses: 2 },
    ],
  ];
  return cases.map(([name, raw, extra]) => ({ name, raw, ...extra }));
}
