import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { pack } from 'tar-stream';
import { convertLayer } from './convert-layer.js';
import { encodeFooter, parseFooter } from './footer.js';
import { orderEntries, parsePriorityList, cleanEntryName } from './prioritize.js';
import { normalizeAuthKey, parseDockerConfig, resolveEndpoint } from './registry-access.js';
import { worthLazyPulling } from './policy.js';
import { serializeToc, parseToc } from './toc.js';
import { checkBlob, readToc } from './verify.js';
import { FOOTER_SIZE } from './constants.js';

type Header = Parameters<ReturnType<typeof pack>['entry']>[0];

/** A tar built with tar-stream: every entry type eStargz holds, pax xattrs, a long name. */
async function sampleTar(bigBytes = 300_000): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => p.on('end', () => r()));
  // A fixed mtime everywhere: tar-stream's default is now, which made the blob (and so which byte
  // a test flips) differ from run to run; a flip in a gzip member's mtime field is not detectable.
  const add = (h: Header, body?: Buffer | string) =>
    new Promise<void>((resolve, reject) =>
      p.entry({ mtime: new Date(1_700_000_000_000), ...h }, body ?? '', (e) => (e ? reject(e) : resolve())),
    );
  await add({ name: 'etc/', type: 'directory', mode: 0o755 });
  await add(
    { name: 'etc/hello', mode: 0o644, uid: 1000, uname: 'app', mtime: new Date(1_700_000_000_000) },
    'hello\n',
  );
  await add({ name: 'etc/hard', type: 'link', linkname: 'etc/hello' });
  await add({ name: 'etc/sym', type: 'symlink', linkname: 'hello' });
  await add({ name: `etc/${'n'.repeat(140)}` }, 'long');
  await add({ name: 'etc/.wh.gone' }, '');
  await add({ name: 'etc/attr', pax: { 'SCHILY.xattr.user.k': 'v' } }, 'x');
  await add({ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 });
  await add({ name: 'big' }, Buffer.alloc(bigBytes, 7));
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

async function convert(tar: Buffer, prioritizedFiles: string[] = [], chunkSizeBytes = 100_000) {
  const out: Buffer[] = [];
  async function* src() {
    for (let i = 0; i < tar.length; i += 1000) yield tar.subarray(i, i + 1000);
  }
  const result = await convertLayer(src(), async (b) => void out.push(b), {
    prioritizedFiles,
    chunkSizeBytes,
  });
  return { blob: Buffer.concat(out), result };
}

function access(blob: Buffer) {
  return {
    size: blob.length,
    readRange: async (s: number, e: number) => blob.subarray(s, e),
    stream: async function* () {
      for (let i = 0; i < blob.length; i += 777) yield blob.subarray(i, i + 777);
    },
  };
}

describe('footer', () => {
  it('is 51 bytes of valid, empty gzip that holds the TOC offset', () => {
    const f = encodeFooter(0x1234abcd);
    assert.equal(f.length, FOOTER_SIZE);
    assert.equal(gunzipSync(f).length, 0);
    assert.equal(f.toString('latin1', 16, 38), '000000001234abcdSTARGZ');
    assert.equal(parseFooter(f), 0x1234abcd);
  });
  it('rejects a footer without the STARGZ subfield', () => {
    const f = encodeFooter(5);
    f.write('XX', 12, 'latin1');
    assert.throws(() => parseFooter(f), { code: 'ESTARGZ_INVALID' });
    assert.throws(() => parseFooter(Buffer.alloc(51)), { code: 'ESTARGZ_INVALID' });
  });
});

describe('TOC', () => {
  it('omits empty fields and keeps the reference field order', () => {
    const json = serializeToc({
      version: 1,
      entries: [
        {
          name: 'a',
          type: 'reg',
          size: 3,
          mode: 0,
          uid: 0,
          offset: 10,
          digest: 'sha256:x',
          chunkDigest: 'sha256:x',
        },
      ],
    }).toString();
    assert.match(json, /"name": "a",\n\t+"type": "reg",\n\t+"size": 3,\n\t+"offset": 10,\n\t+"digest"/);
    assert.doesNotMatch(json, /"mode"|"uid"/);
    assert.equal(parseToc(Buffer.from(json)).entries[0]?.size, 3);
  });
});

describe('layer conversion', () => {
  it('writes chunks, landmarks and digests the checker verifies', async () => {
    const { blob, result } = await convert(await sampleTar());
    const check = await checkBlob(access(blob), result.tocDigest);
    assert.equal(check.diffId, result.diffId);
    assert.equal(check.uncompressedSize, result.uncompressedSize);
    assert.equal(result.digest, `sha256:${createHash('sha256').update(blob).digest('hex')}`);
    // big (300000 bytes) in 100000-byte chunks is 3 chunks; hello, long, attr, the landmark 1 each
    assert.equal(check.chunksVerified, 7);
    const { toc } = await readToc(blob.subarray(result.tocOffset, blob.length - FOOTER_SIZE));
    const names = toc.entries.map((e) => `${e.type}:${e.name}`);
    assert.equal(names[0], 'reg:.no.prefetch.landmark');
    assert.deepEqual(
      toc.entries.filter((e) => e.name === 'big').map((e) => [e.type, e.chunkOffset ?? 0, e.chunkSize ?? 0]),
      [
        ['reg', 0, 100_000],
        ['chunk', 100_000, 100_000],
        ['chunk', 200_000, 100_000],
      ],
    );
    const attr = toc.entries.find((e) => e.name === 'etc/attr');
    assert.deepEqual(attr?.xattrs, { 'user.k': Buffer.from('v').toString('base64') });
    assert.equal(toc.entries.find((e) => e.name === 'etc/hard')?.linkName, 'etc/hello');
    assert.equal(toc.entries.find((e) => e.name === 'dev/null')?.devMajor, 1);
    // the whole blob is one tar: the original entries, then the TOC
    assert.ok(gunzipSync(blob).includes(Buffer.from(`etc/${'n'.repeat(100)}`)));
  });

  it('puts prioritized files, their parents and link targets first, then the landmark', async () => {
    const { blob, result } = await convert(await sampleTar(), ['etc/hard', '/missing']);
    const { toc } = await readToc(blob.subarray(result.tocOffset, blob.length - FOOTER_SIZE));
    const order = toc.entries.filter((e) => e.type !== 'chunk').map((e) => e.name);
    assert.deepEqual(order.slice(0, 4), ['etc/', 'etc/hello', 'etc/hard', '.prefetch.landmark']);
    assert.deepEqual(result.missedPrioritized, ['/missing']);
    await checkBlob(access(blob), result.tocDigest);
  });

  it('detects a flipped byte, a wrong TOC digest and a truncated blob', async () => {
    const { blob, result } = await convert(await sampleTar());
    const flipped = Buffer.from(blob);
    flipped[Math.floor(result.tocOffset / 2)]! ^= 0xff;
    await assert.rejects(checkBlob(access(flipped), result.tocDigest), { code: 'ESTARGZ_INVALID' });
    await assert.rejects(checkBlob(access(blob), `sha256:${'0'.repeat(64)}`), /TOC digest/);
    await assert.rejects(checkBlob(access(blob.subarray(0, blob.length - 1)), undefined), {
      code: 'ESTARGZ_INVALID',
    });
  });

  // umoci 0.4.x (`umoci insert`) writes layers that stop right after the last file's data: no
  // end-of-archive blocks and the final padding short or missing. Go's archive/tar (containerd,
  // the stargz reference) reads a clean EOF at a header boundary, or inside the final padding,
  // as the end of the archive (reader.go: readHeader, and tryReadFull of the padding).
  it('accepts a tar that ends in or before its last padding, as Go archive/tar does', async () => {
    const full = await sampleTar(); // 'big' (300000 bytes) is last: 32 bytes of padding, 2 zero blocks
    const dataEnd = full.length - 2 * 512 - 32;
    for (const cut of [dataEnd, dataEnd + 10, dataEnd + 32]) {
      const tar = full.subarray(0, cut);
      for (const prioritized of [[], ['etc/hello']]) {
        const { blob, result } = await convert(tar, prioritized);
        const check = await checkBlob(access(blob), result.tocDigest);
        assert.equal(check.diffId, result.diffId);
        const { toc } = await readToc(blob.subarray(result.tocOffset, blob.length - FOOTER_SIZE));
        const big = toc.entries.find((e) => e.name === 'big');
        assert.equal(big?.size, 300_000, `cut at ${cut}, prioritized ${prioritized.join()}`);
        assert.equal(
          big?.digest,
          `sha256:${createHash('sha256').update(Buffer.alloc(300_000, 7)).digest('hex')}`,
        );
      }
    }
  });

  it('refuses a tar that ends inside a file or a header, naming what was cut', async () => {
    const full = await sampleTar();
    const dataEnd = full.length - 2 * 512 - 32;
    for (const prioritized of [[], ['etc/hello']]) {
      await assert.rejects(convert(full.subarray(0, dataEnd - 1), prioritized), {
        code: 'TAR_INVALID',
        message: /ends inside the payload of "big"/,
      });
      await assert.rejects(convert(full.subarray(0, 700), prioritized), {
        code: 'TAR_INVALID',
        message: /ends inside a header/,
      });
    }
  });

  it('refuses a tar with a bad header checksum', async () => {
    const tar = await sampleTar(10);
    tar[600] = 0x41; // inside the second header
    await assert.rejects(convert(tar), { code: 'TAR_INVALID' });
  });
});

describe('prioritized files', () => {
  it('reads plain lists and ctr-remote record files', () => {
    assert.deepEqual(parsePriorityList('# comment\n/bin/sh\n\n/etc/passwd\n/bin/sh\n'), [
      '/bin/sh',
      '/etc/passwd',
    ]);
    assert.deepEqual(
      parsePriorityList(
        '{"path":"/bin/ls","manifestDigest":"sha256:x","layerIndex":0}\n{"path":"/lib/a.so"}\n',
      ),
      ['/bin/ls', '/lib/a.so'],
    );
    assert.throws(() => parsePriorityList('{"nopath":1}'), { code: 'PRIORITY_LIST_INVALID' });
  });
  it('orders like estargz.Build: duplicates replaced, missing parents make a path missed', () => {
    const e = (name: string, type = 'reg', linkname = '') => ({ name, type, linkname });
    const { ordered, missed, landmark } = orderEntries(
      [e('a/', 'dir'), e('a/x'), e('b/y'), e('a/x'), e('.prefetch.landmark')],
      ['./a/x', 'b/y'],
    );
    assert.deepEqual(
      ordered.map((o) => (o === 'landmark' ? o : o.name)),
      ['a/', 'a/x', 'landmark', 'b/y'],
    );
    assert.deepEqual(missed, ['b/y']);
    assert.equal(landmark, '.prefetch.landmark');
    assert.equal(orderEntries([e('x')], []).landmark, '.no.prefetch.landmark');
    assert.equal(cleanEntryName('./a/../b/'), 'b');
  });
});

describe('registry access and policy', () => {
  it('reads Docker config.json auths and normalizes Docker Hub keys', () => {
    const creds = parseDockerConfig(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('u:p:w').toString('base64') },
          '127.0.0.1:5000': { username: 'a', password: 'b' },
          'ghcr.io': { identitytoken: 'x' },
        },
      }),
    );
    assert.deepEqual(creds.get('docker.io'), { username: 'u', password: 'p:w' });
    assert.deepEqual(creds.get('127.0.0.1:5000'), { username: 'a', password: 'b' });
    assert.equal(creds.has('ghcr.io'), false);
    assert.equal(normalizeAuthKey('http://Registry.example:443/v2/'), 'registry.example:443');
  });
  it('uses plain HTTP on loopback or when asked, HTTPS otherwise', () => {
    assert.equal(resolveEndpoint('127.0.0.1:5000', {}, false).url, 'http://127.0.0.1:5000');
    assert.equal(resolveEndpoint('localhost:5000', {}, false).url, 'http://localhost:5000');
    assert.equal(resolveEndpoint('reg.example', {}, false).url, 'https://reg.example');
    assert.equal(resolveEndpoint('reg.example', {}, true).url, 'http://reg.example');
    assert.equal(resolveEndpoint('docker.io', {}, false).url, 'https://registry-1.docker.io');
  });
  it('recommends lazy pulling for images of 5 GB and more only', () => {
    assert.equal(worthLazyPulling({ compressedBytes: 6e9 }).worth, true);
    assert.equal(worthLazyPulling({ compressedBytes: 200e6 }).worth, false);
    assert.equal(worthLazyPulling({ compressedBytes: 6e9, alreadyEstargz: true }).worth, false);
    assert.equal(worthLazyPulling({ compressedBytes: 10e9 }, { minCompressedBytes: 20e9 }).worth, false);
  });
});
