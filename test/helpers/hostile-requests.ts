// Malformed and hostile HTTP requests for the mirror, as raw bytes (fetch refuses to send most of
// them): hand-picked ones (hostile-table.ts) and random ones generated here from a seeded PRNG, so
// that a failing run can be replayed exactly.
import { isDigest, isValidRepository, isValidTag } from '../../src/oci/index.js';

/** mulberry32: a small, fast, seedable PRNG; good enough to pick fuzz cases reproducibly. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface HostileCase {
  name: string;
  raw: Buffer;
  /** Responses the connection should produce (pipelined requests); default 1. */
  responses?: number;
  /** The (first) request is a HEAD: its answer has no body. */
  head?: boolean;
  /** Node itself refuses this before any handler runs, with a bare status line (no OCI body). */
  bareNodeAnswer?: boolean;
}

export interface Target {
  /** host:port for the Host header. */
  host: string;
  /** The real image: repository, tag, its manifest's digest, and the digest of one of its blobs. */
  repo: string;
  tag: string;
  manifestDigest: string;
  digest: string;
  /** The configured upstream name (a valid `ns`). */
  ns: string;
  /** A token put in traversal attempts, so that an escaped file can be found by name. */
  marker: string;
}

/** A request from parts; `head` lines are sent verbatim, in order. */
export function request(
  method: string,
  target: string,
  headers: string[],
  opts: { version?: string; body?: string | Buffer } = {},
): Buffer {
  const version = opts.version ?? 'HTTP/1.1';
  const line = version === '' ? `${method} ${target}` : `${method} ${target} ${version}`;
  return Buffer.concat([
    Buffer.from(`${line}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`, 'latin1'),
    typeof opts.body === 'string' ? Buffer.from(opts.body, 'latin1') : (opts.body ?? Buffer.alloc(0)),
  ]);
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

/** Tokens that make any repository name, tag or digest invalid wherever they are put. */
function nameBreakers(t: Target): string[] {
  return [
    '..',
    '%2e%2e',
    '%2E%2e',
    '%2f',
    '%2F..%2F',
    '%00',
    '%5c',
    '\\',
    '\\..\\',
    'A',
    'UPPER',
    '%20',
    ';',
    ':',
    '@',
    '~',
    '$',
    "'",
    '(',
    '!',
    '*',
    '%',
    '%%32%65',
    '%c0%ae%c0%ae',
    '%u002e',
    `../../../../${t.marker}`,
    `%2e%2e%2f%2e%2e%2f${t.marker}`,
    `..%2f..%2f${t.marker}`,
    `x`.repeat(300),
    'a'.repeat(5000),
    '-lead',
    '_x',
    '__',
    '.hidden',
    '..;',
    '%ff',
    '%e2%80%ae',
  ];
}

function nsValues(t: Target): string[] {
  return [
    '',
    '..',
    '../..',
    `${t.ns}/..`,
    `${t.ns}%2f..`,
    `../${t.marker}`,
    'http://169.254.169.254/latest',
    'https://evil.example',
    'file:///etc/passwd',
    '127.0.0.1:1',
    'localhost',
    `${t.ns}.`,
    `${t.ns.toUpperCase()}X`,
    'a'.repeat(5000),
    '%00',
    `${t.ns}%00`,
    'docker.io',
    ' ',
  ];
}

function badRanges(): string[] {
  return [
    'bytes',
    'bytes=',
    'bytes=abc',
    'bytes=5-1',
    'bytes=1-2-3',
    'bytes=--1',
    'bytes=-',
    'items=0-1',
    'bytes 0-1',
    'bytes=0x10-0x20',
    'bytes=1e3-2e3',
    'bytes=99999999999999999-',
    'bytes=18446744073709551616-18446744073709551617',
    `bytes=${'0-1,'.repeat(3000)}`,
    `bytes=${'9'.repeat(2000)}-`,
    'bytes=0-1;x',
    'bytes=\t',
    'bytes=-1-',
    'bytes=1--2',
    'bytes=,,,,',
  ];
}

function pathFor(t: Target, kind: 'manifest' | 'blob' | 'tags', name: string, ref: string): string {
  if (kind === 'tags') return `/v2/${name}/tags/list`;
  return `/v2/${name}/${kind === 'manifest' ? 'manifests' : 'blobs'}/${ref}`;
}

/**
 * Inserts breakers into `s` until `stillValid` says no: the OCI grammars decide, so that no
 * "hostile" case is accidentally a valid request (`test` + `.hidden` is a valid name).
 */
function breakWith(
  rand: () => number,
  s: string,
  breakers: string[],
  stillValid: (v: string) => boolean,
): string {
  let out = s;
  while (stillValid(out)) out = insert(rand, out, pick(rand, breakers));
  return out;
}

const validRef = (r: string) => isValidTag(r) || isDigest(r);

/** Inserts `token` into `s` at a random place (start, end, a slash, or anywhere). */
function insert(rand: () => number, s: string, token: string): string {
  const slashes = [...s.matchAll(/\//g)].map((m) => m.index);
  const spots = [0, s.length, ...slashes, Math.floor(rand() * (s.length + 1))];
  const at = pick(rand, spots);
  return `${s.slice(0, at)}${token}${s.slice(at)}`;
}

/**
 * `count` random hostile requests. Each breaks at least one thing the OCI grammar or HTTP forbids:
 * the repository name, the reference or digest, `ns`, the tags query, Range, the request line,
 * or the headers. None of them may get anything but a 4xx.
 */
export function fuzzCases(t: Target, seed: number, count: number): HostileCase[] {
  const rand = prng(seed);
  const breakers = nameBreakers(t);
  const out: HostileCase[] = [];
  const host = `Host: ${t.host}`;
  for (let i = 0; i < count; i++) {
    const kind = pick(rand, ['manifest', 'blob', 'tags'] as const);
    let name = t.repo;
    let ref = kind === 'manifest' ? pick(rand, [t.tag, t.manifestDigest]) : t.digest;
    let query = '';
    const headers = [host];
    let method = pick(rand, ['GET', 'GET', 'GET', 'HEAD']);
    let version = pick(rand, ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0']);
    const breakName = () => {
      name = breakWith(rand, name, breakers, isValidRepository);
    };
    const what = pick(rand, ['name', 'ref', 'both', 'ns', 'query', 'range', 'method', 'line', 'header']);
    if (what === 'name' || what === 'both') breakName();
    if ((what === 'ref' || what === 'both') && kind !== 'tags')
      ref = breakWith(rand, ref, breakers, validRef);
    if (what === 'ref' && kind === 'tags') {
      query = `?last=${encodeURIComponent(breakWith(rand, '', breakers, (v) => v === '' || isValidTag(v)))}`;
    }
    if (what === 'ns') query = `?ns=${pick(rand, nsValues(t))}`;
    if (what === 'query') {
      if (kind === 'tags') {
        query = pick(rand, [
          `?n=${pick(rand, ['-1', 'abc', '1e9', '0x10', '99999999999999999999', '', '1.5', '%201', '1%00'])}`,
          `?last=${pick(rand, ['..', '../../x', '%00', '-x', '.x', 'a'.repeat(200), '%2e%2e', ''])}`,
          `?n=1&n=${pick(rand, ['2', 'x', '-5'])}`,
          `?last=a&last=${pick(rand, ['b', '..'])}`,
        ]);
      } else {
        query = pick(rand, [`?ns=${t.ns}&ns=${pick(rand, nsValues(t))}`, `?${'a=b&'.repeat(800)}`]);
        if (!query.includes('ns=')) breakName();
      }
    }
    if (what === 'range') {
      headers.push(`Range: ${pick(rand, badRanges())}`);
      if (kind !== 'blob') breakName();
    }
    if (what === 'method') {
      method = pick(rand, [
        'POST',
        'PUT',
        'PATCH',
        'DELETE',
        'OPTIONS',
        'TRACE',
        'PROPFIND',
        'MKCOL',
        'LOCK',
        'SEARCH',
        'FOO',
        'get',
        'GeT',
        'G-T',
        'GETT',
        'X'.repeat(64),
      ]);
    }
    if (what === 'line') {
      version = pick(rand, [
        'HTTP/2.0',
        'HTTP/0.9',
        'HTTP/1.2',
        'HTTP/11',
        'HTTP/1.1x',
        'http/1.1',
        'HTTPS/1.1',
        '',
      ]);
      if (version === 'HTTP/1.2') name = insert(rand, name, pick(rand, breakers));
    }
    if (what === 'header') {
      breakName();
      headers.push(
        pick(rand, [
          `Accept: ${'x/y;q=0.5,'.repeat(200)}`,
          'Accept: \u00ff\u00fe/\u00fd',
          'Accept: ,,,,;;;;',
          `X-Big: ${'b'.repeat(20_000)}`,
          'Content-Length: abc',
          'Content-Length: -1',
          'Content-Length: 1\r\nContent-Length: 2',
          'Transfer-Encoding: chunked\r\nContent-Length: 3',
          'Transfer-Encoding: gzip',
          'Bad Header: x',
          ': empty-name',
          ' leading-space: x',
          'X-Fold: a\r\n b',
          'X-Nul: a\u0000b',
          `X-Many: y\r\n${Array.from({ length: 3000 }, (_, j) => `X-H${j}: v`).join('\r\n')}`,
        ]),
      );
    }
    const target = `${pathFor(t, kind, name, ref)}${query}`;
    out.push({
      name: `fuzz#${i} ${what} ${method} ${target.slice(0, 80)}`,
      raw: request(method, target, headers, { version }),
      head: method === 'HEAD',
    });
  }
  return out;
}
