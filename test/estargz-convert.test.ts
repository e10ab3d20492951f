// `hoist convert` registry to registry against the real peers: docker-registry as source and
// destination, skopeo to push the source images, and the stargz reference library (the Go
// verifier in test/go) to open every converted layer, verify its TOC digest against the
// manifest annotation and every chunk digest, and read every file back for comparison.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { TestContext } from 'node:test';
import { after, before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { buildImage, pushImage, run } from './helpers/images.js';
import { findBinary, removeTempDir, requirePeers, tempDir, testTempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';
import {
  buildVerifier,
  getBlob,
  getManifest,
  hasStargzLibrary,
  hoist,
  saveBlob,
  verifyBlob,
  type VerifierReport,
} from './go/estargz-verifier.js';

const TIMEOUT = { timeout: 300_000 };
const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';
const UNCOMPRESSED_SIZE = 'io.containers.estargz.uncompressed-size';

interface SourceFile {
  type: string;
  sha256?: string;
  linkname?: string;
  xattrs?: Record<string, string>;
}

/**
 * A tar as Go's archive/tar reads it, closed for tar-stream: an unterminated tar (umoci 0.4.x)
 * gets its last padding and the two end-of-archive blocks.
 */
function terminated(tar: Buffer): Buffer {
  const pad = (512 - (tar.length % 512)) % 512;
  return Buffer.concat([tar, Buffer.alloc(pad + 1024)]);
}

/** Every entry of a source layer (gzip or tar), by clean path, with its content digest. */
async function sourceFiles(blob: Buffer): Promise<Map<string, SourceFile>> {
  const tar = terminated(blob[0] === 0x1f && blob[1] === 0x8b ? gunzipSync(blob) : blob);
  const out = new Map<string, SourceFile>();
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.on('entry', (h, stream, next) => {
    const hash = createHash('sha256');
    stream.on('data', (d) => void hash.update(d as Buffer));
    stream.on('end', () => {
      const name = posix.normalize(h.name).replace(/\/$/, '');
      const xattrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(h.pax ?? {})) {
        if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
      }
      out.set(name, {
        type: h.type ?? 'file',
        ...(h.type === 'file' ? { sha256: `sha256:${hash.digest('hex')}` } : {}),
        ...(h.linkname ? { linkname: h.linkname } : {}),
        ...(Object.keys(xattrs).length > 0 ? { xattrs } : {}),
      });
      next();
    });
  });
  ex.end(tar);
  await done;
  return out;
}

/** Asserts that the reference library read back every source entry with the same content. */
function assertSameFiles(source: Map<string, SourceFile>, report: VerifierReport): void {
  for (const [name, src] of source) {
    const got = report.files[name];
    assert.ok(got, `${name} is in the converted layer`);
    if (src.type === 'file') {
      assert.equal(got.type, 'reg', name);
      assert.equal(got.sha256, src.sha256, `content of ${name}`);
    } else if (src.type === 'link') {
      // The reader resolves a hard link to its target's entry; the content must be the target's.
      assert.equal(got.source, src.linkname, `${name} links to ${src.linkname}`);
      assert.equal(got.sha256, source.get(src.linkname ?? '')?.sha256, `content of ${name}`);
    } else if (src.type === 'symlink') {
      assert.equal(got.type, 'symlink', name);
      assert.equal(got.linkName, src.linkname, name);
    } else if (src.type === 'directory') {
      assert.equal(got.type, 'dir', name);
    } else if (src.type === 'character-device') {
      assert.equal(got.type, 'char', name);
    } else if (src.type === 'fifo') {
      assert.equal(got.type, 'fifo', name);
    }
    if (src.xattrs) assert.deepEqual(got.xattrs, src.xattrs, `xattrs of ${name}`);
  }
}

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

interface Manifest {
  mediaType: string;
  config: Layer;
  layers: Layer[];
  manifests?: Array<Layer & { platform?: { os: string; architecture: string } }>;
}

let verifier = '';

async function registry(t: TestContext): Promise<RegistryPeer> {
  const peer = await startRegistry();
  t.after(() => peer.stop());
  return peer;
}

function peersPresent(t: TestContext): boolean {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'go')) return false;
  if (hasStargzLibrary()) return true;
  if (process.env.CI === 'true') throw new Error('missing golang-github-containerd-stargz-snapshotter-dev');
  t.skip('missing golang-github-containerd-stargz-snapshotter-dev');
  return false;
}

/**
 * Checks one converted image manifest against its source: OCI types, annotations, the config's
 * diff IDs, and every layer opened and verified by the reference library.
 */
async function verifyConverted(
  reg: RegistryPeer,
  work: string,
  srcRepo: string,
  dstRepo: string,
  srcManifest: Manifest,
  dstManifest: Manifest,
): Promise<VerifierReport[]> {
  assert.equal(dstManifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(dstManifest.config.mediaType, 'application/vnd.oci.image.config.v1+json');
  const config = JSON.parse((await getBlob(reg.url, dstRepo, dstManifest.config.digest)).toString()) as {
    rootfs: { diff_ids: string[] };
  };
  const reports: VerifierReport[] = [];
  assert.equal(dstManifest.layers.length, srcManifest.layers.length);
  for (const [i, layer] of dstManifest.layers.entries()) {
    assert.equal(layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const tocDigest = layer.annotations?.[TOC_DIGEST];
    assert.ok(tocDigest, 'layer has the TOC digest annotation');
    const path = join(work, layer.digest.slice(7));
    await saveBlob(reg.url, dstRepo, layer.digest, path);
    const report = await verifyBlob(verifier, path, tocDigest);
    assert.equal(report.tocDigest, tocDigest);
    assert.equal(report.diffId, config.rootfs.diff_ids[i], 'config diff ID is the decompressed blob');
    assert.equal(layer.annotations?.[UNCOMPRESSED_SIZE], String(report.uncompressedSize));
    assert.ok(report.chunksVerified > 0);
    const srcLayer = srcManifest.layers[i];
    assert.ok(srcLayer);
    assertSameFiles(await sourceFiles(await getBlob(reg.url, srcRepo, srcLayer.digest)), report);
    reports.push(report);
  }
  return reports;
}

function json<T>(b: Buffer): T {
  return JSON.parse(b.toString()) as T;
}

/** A tar with what buildImage cannot make: hard links, xattrs, devices, fifos, long link targets. */
async function specialTar(): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => void chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => p.on('end', () => r()));
  const add = (h: Parameters<typeof p.entry>[0], body: Buffer | string = '') =>
    new Promise<void>((resolve, reject) => p.entry(h, body, (e) => (e ? reject(e) : resolve())));
  const long = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/file-with-a-long-name.txt`;
  await add({ name: 'deep/', type: 'directory' });
  await add({ name: `deep/${'d'.repeat(60)}/`, type: 'directory' });
  await add({ name: `deep/${'d'.repeat(60)}/${'e'.repeat(60)}/`, type: 'directory' });
  await add({ name: long, mode: 0o640, uid: 1234, gid: 99, uname: 'svc', gname: 'grp' }, 'long name\n');
  await add({ name: 'deep/hard', type: 'link', linkname: long });
  await add({ name: 'deep/sym', type: 'symlink', linkname: `/${long}` });
  await add(
    { name: 'deep/caps', pax: { 'SCHILY.xattr.security.capability': 'cap', 'SCHILY.xattr.user.x': 'y' } },
    'c',
  );
  await add({ name: 'deep/tty', type: 'character-device', devmajor: 5, devminor: 0 });
  await add({ name: 'deep/pipe', type: 'fifo' });
  await add({ name: 'deep/.wh..wh..opq' }, '');
  await add({ name: 'deep/.wh.removed' }, '');
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** An OCI layout with the given layer blobs (built by hand, for what buildImage cannot express). */
async function handLayout(
  dir: string,
  layers: Array<{ mediaType: string; blob: Buffer; diffId: string }>,
): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (data: Buffer, mediaType: string) => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
    return { mediaType, digest, size: data.length };
  };
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      }),
    ),
    'application/vnd.oci.image.config.v1+json',
  );
  const descs = [];
  for (const l of layers) descs.push(await put(l.blob, l.mediaType));
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config,
        layers: descs,
      }),
    ),
    'application/vnd.oci.image.manifest.v1+json',
  );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }),
  );
}

describe('hoist convert', () => {
  let goDir: string | undefined;
  before(async () => {
    if (findBinary('go') === undefined || !hasStargzLibrary()) return;
    goDir = await tempDir('hoist-esgz-go');
    verifier = await buildVerifier(goDir);
  });
  after(async () => {
    if (goDir !== undefined) await removeTempDir(goDir);
  });

  it(
    'converts every platform of an index; the reference library verifies every layer',
    TIMEOUT,
    async (t) => {
      if (!peersPresent(t)) return;
      const work = await testTempDir(t, 'hoist-esgz');
      const reg = await registry(t);
      const small = Array.from({ length: 300 }, (_, i) => ({
        path: `app/small/f${i}.txt`,
        content: `file ${i}\n`,
      }));
      await buildImage(join(work, 'layout'), {
        tag: 'v1',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
        layers: [
          {
            files: [
              ...small,
              { path: 'app/big.bin', size: 6 * 1024 * 1024 + 5, seed: 'big' },
              { path: `app/${'long-'.repeat(30)}name.txt`, content: 'long\n' },
              { path: 'app/link', symlink: 'big.bin' },
              { path: 'app/.wh.deleted', content: '' },
            ],
          },
          {
            files: [{ path: 'etc/plain.txt', content: 'from an uncompressed layer\n' }],
            compression: 'none',
          },
        ],
      });
      await pushImage(join(work, 'layout'), 'v1', `${reg.host}/src/app:v1`, {
        all: true,
        preserveDigests: true,
      });

      const res = await hoist([
        'convert',
        `${reg.host}/src/app:v1`,
        `${reg.host}/dst/app:esgz`,
        '--chunk-size',
        '1048576',
        '--output',
        'json',
      ]);
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout) as {
        digest: string;
        manifests: Array<{ layers: Array<{ action: string }> }>;
      };

      const index = await getManifest(reg.url, 'dst/app', 'esgz');
      assert.equal(index.digest, out.digest);
      const dstIndex = json<Manifest>(index.body);
      assert.equal(dstIndex.mediaType, 'application/vnd.oci.image.index.v1+json');
      const srcIndex = json<Manifest>((await getManifest(reg.url, 'src/app', 'v1')).body);
      assert.deepEqual(
        dstIndex.manifests?.map((m) => m.platform),
        srcIndex.manifests?.map((m) => m.platform),
      );
      const converted: string[][] = [];
      for (const [i, m] of (dstIndex.manifests ?? []).entries()) {
        const srcM = json<Manifest>(
          (await getManifest(reg.url, 'src/app', srcIndex.manifests?.[i]?.digest ?? '')).body,
        );
        const dstM = json<Manifest>((await getManifest(reg.url, 'dst/app', m.digest)).body);
        const reports = await verifyConverted(reg, work, 'src/app', 'dst/app', srcM, dstM);
        converted.push(dstM.layers.map((l) => l.digest));
        // No prioritized files: the layer starts with .no.prefetch.landmark.
        for (const r of reports) assert.equal(r.tocOrder[0], '.no.prefetch.landmark');
        // 6 MiB + 5 bytes in 1 MiB chunks.
        assert.deepEqual(reports[0]?.chunkSizes['app/big.bin'], [...Array(6).fill(1048576), 5]);
      }
      // The layers both platforms share are converted once, to the same blob.
      assert.equal(converted[0]?.[0], converted[1]?.[0]);
      assert.equal(converted[0]?.[1], converted[1]?.[1]);
      assert.notEqual(converted[0]?.[2], converted[1]?.[2]);
    },
  );

  it(
    'keeps hard links, xattrs, devices, fifos, whiteouts and long names; Docker types become OCI',
    TIMEOUT,
    async (t) => {
      if (!peersPresent(t)) return;
      const work = await testTempDir(t, 'hoist-esgz');
      const reg = await registry(t);
      const tar = await specialTar();
      const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
      await handLayout(join(work, 'layout'), [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', blob: gzipSync(tar), diffId },
      ]);
      await pushImage(join(work, 'layout'), 'v1', `${reg.host}/special:v1`, { format: 'v2s2' });
      const src = await getManifest(reg.url, 'special', 'v1');
      assert.equal(
        json<Manifest>(src.body).mediaType,
        'application/vnd.docker.distribution.manifest.v2+json',
      );

      const res = await hoist(['convert', `${reg.host}/special:v1`, `${reg.host}/special:esgz`]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /pushed 127\.0\.0\.1:\d+\/special:esgz@sha256:/);
      const dst = json<Manifest>((await getManifest(reg.url, 'special', 'esgz')).body);
      const [report] = await verifyConverted(reg, work, 'special', 'special', json<Manifest>(src.body), dst);
      assert.ok(report);
      assert.deepEqual(report.files['deep/caps']?.xattrs, { 'security.capability': 'cap', 'user.x': 'y' });
      assert.equal(report.files['deep/tty']?.devMajor, 5);
      assert.equal(report.files['deep/hard']?.source?.endsWith('file-with-a-long-name.txt'), true);
      assert.equal(
        report.files[`deep/${'d'.repeat(60)}/${'e'.repeat(60)}/file-with-a-long-name.txt`]?.uid,
        1234,
      );
      assert.ok(report.files['deep/.wh..wh..opq']);
    },
  );

  it('puts the files of a ctr-remote record first, then .prefetch.landmark', TIMEOUT, async (t) => {
    if (!peersPresent(t)) return;
    const work = await testTempDir(t, 'hoist-esgz');
    const reg = await registry(t);
    await buildImage(join(work, 'layout'), {
      tag: 'v1',
      layers: [
        {
          files: [
            { path: 'a/one.txt', content: '1' },
            { path: 'b/two.txt', content: '2' },
            { path: 'c/three.txt', content: '3' },
          ],
        },
      ],
    });
    await pushImage(join(work, 'layout'), 'v1', `${reg.host}/prio:v1`);
    const record = join(work, 'record.json');
    await writeFile(
      record,
      ['/c/three.txt', '/a/one.txt', '/not/there']
        .map((path) => JSON.stringify({ path, layerIndex: 0 }))
        .join('\n'),
    );
    const res = await hoist([
      'convert',
      `${reg.host}/prio:v1`,
      `${reg.host}/prio:esgz`,
      '--prioritize',
      record,
      '--output',
      'json',
    ]);
    assert.equal(res.code, 0, res.stderr);
    const out = JSON.parse(res.stdout) as {
      manifests: Array<{ layers: Array<{ missedPrioritized: string[] }> }>;
    };
    assert.deepEqual(out.manifests[0]?.layers[0]?.missedPrioritized, ['/not/there']);
    const dst = json<Manifest>((await getManifest(reg.url, 'prio', 'esgz')).body);
    const layer = dst.layers[0];
    assert.ok(layer);
    const path = join(work, 'layer');
    await saveBlob(reg.url, 'prio', layer.digest, path);
    const report = await verifyBlob(verifier, path, layer.annotations?.[TOC_DIGEST] ?? '');
    assert.deepEqual(report.tocOrder.slice(0, 5), [
      'c/',
      'c/three.txt',
      'a/',
      'a/one.txt',
      '.prefetch.landmark',
    ]);
  });

  it(
    'authenticates with a Docker config.json or the mirror YAML, and fails clearly without',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
      const work = await testTempDir(t, 'hoist-esgz');
      const creds = { username: 'ci', password: 's3cret:x' };
      const reg = await startRegistry({ htpasswd: creds });
      t.after(() => reg.stop());
      await buildImage(join(work, 'layout'), {
        tag: 'v1',
        layers: [{ files: [{ path: 'a.txt', content: 'a' }] }],
      });
      await pushImage(join(work, 'layout'), 'v1', `${reg.host}/private:v1`, {
        creds: `${creds.username}:${creds.password}`,
      });

      const denied = await hoist(['convert', `${reg.host}/private:v1`, `${reg.host}/private:esgz`], {
        ...process.env,
        DOCKER_CONFIG: join(work, 'none'),
      });
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /^hoist: .*401.*\n$/);

      const dockerDir = join(work, 'docker');
      await mkdir(dockerDir);
      const auth = Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
      await writeFile(join(dockerDir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));
      const viaDocker = await hoist(['convert', `${reg.host}/private:v1`, `${reg.host}/private:esgz`], {
        ...process.env,
        DOCKER_CONFIG: dockerDir,
      });
      assert.equal(viaDocker.code, 0, viaDocker.stderr);

      const yaml = join(work, 'hoist.yaml');
      await writeFile(
        yaml,
        `upstreams:\n  ${JSON.stringify(reg.host)}:\n    url: ${reg.url}\n    username: ${creds.username}\n    password: ${JSON.stringify(creds.password)}\n`,
      );
      const viaYaml = await hoist(
        ['convert', `${reg.host}/private:v1`, `${reg.host}/private:esgz2`, '--config', yaml],
        {
          ...process.env,
          DOCKER_CONFIG: join(work, 'none'),
        },
      );
      assert.equal(viaYaml.code, 0, viaYaml.stderr);
      const check = await hoist([
        'convert',
        '--check',
        `${reg.host}/private:esgz2`,
        '--authfile',
        join(dockerDir, 'config.json'),
      ]);
      assert.equal(check.code, 0, check.stderr);
    },
  );

  it(
    'converts an image built by umoci insert (unterminated tars); the reference library verifies it',
    TIMEOUT,
    async (t) => {
      if (!peersPresent(t) || !requirePeers(t, 'umoci')) return;
      const work = await testTempDir(t, 'hoist-esgz');
      const reg = await registry(t);
      const layout = join(work, 'umoci');
      const image = `${layout}:v1`;
      await run('umoci', ['init', '--layout', layout]);
      await run('umoci', ['new', '--image', image]);
      // Two layers, each ending with a file whose size is not a multiple of 512, so the padding
      // umoci leaves out is visible; the second is one file, the first a tree.
      const tree = join(work, 'tree');
      await mkdir(join(tree, 'bin'), { recursive: true });
      await writeFile(join(tree, 'bin', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
      await writeFile(join(tree, 'data.bin'), Buffer.alloc(70_001, 0x5a));
      await writeFile(join(work, 'motd'), 'hello from umoci\n');
      await run('umoci', ['insert', '--rootless', '--image', image, tree, '/opt/app']);
      await run('umoci', ['insert', '--rootless', '--image', image, join(work, 'motd'), '/etc/motd']);

      // The layers are what the issue describes: no end-of-archive blocks, last padding short.
      const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
        manifests: Array<{ digest: string }>;
      };
      const blob = (d: string) => readFile(join(layout, 'blobs', 'sha256', d.slice(7)));
      const srcManifest = JSON.parse((await blob(index.manifests[0]?.digest ?? '')).toString()) as Manifest;
      assert.equal(srcManifest.layers.length, 2);
      for (const l of srcManifest.layers) {
        const tar = gunzipSync(await blob(l.digest));
        assert.notEqual(tar.length % 512, 0, `umoci left layer ${l.digest} unpadded`);
      }

      await pushImage(layout, 'v1', `${reg.host}/umoci/app:v1`, { preserveDigests: true });
      const res = await hoist(['convert', `${reg.host}/umoci/app:v1`, `${reg.host}/umoci/app:esgz`]);
      assert.equal(res.code, 0, res.stderr);
      const src = json<Manifest>((await getManifest(reg.url, 'umoci/app', 'v1')).body);
      const dst = json<Manifest>((await getManifest(reg.url, 'umoci/app', 'esgz')).body);
      const reports = await verifyConverted(reg, work, 'umoci/app', 'umoci/app', src, dst);
      assert.equal(reports[0]?.files['opt/app/data.bin']?.size, 70_001);
      assert.equal(reports[1]?.files['etc/motd']?.size, 'hello from umoci\n'.length);
    },
  );

  it('refuses a layer truncated inside a file, naming the layer and its index', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-esgz');
    const reg = await registry(t);
    const good = await specialTar();
    const cut = good.subarray(0, good.indexOf(Buffer.from('long name\n')) + 4); // inside the data
    const layers = [good, cut].map((tar) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      blob: gzipSync(tar),
      diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`,
    }));
    await handLayout(join(work, 'layout'), layers);
    await pushImage(join(work, 'layout'), 'v1', `${reg.host}/cut:v1`, { preserveDigests: true });
    const src = await getManifest(reg.url, 'cut', 'v1');
    const bad = json<Manifest>(src.body).layers[1]?.digest ?? '';
    const res = await hoist(['convert', `${reg.host}/cut:v1`, `${reg.host}/cut:esgz`]);
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.ok(
      res.stderr.includes(`layer ${bad} (layers[1] of manifest ${src.digest})`),
      `names the layer: ${res.stderr}`,
    );
    assert.match(res.stderr, /ends inside the payload of "deep\/d+\/e+/);
    await assert.rejects(getManifest(reg.url, 'cut', 'esgz'), /404/);
  });

  it('refuses zstd layers and bad flags with exit code 2 and one line', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
    const work = await testTempDir(t, 'hoist-esgz');
    const reg = await registry(t);
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(100)]);
    await handLayout(join(work, 'layout'), [
      {
        mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
        blob: zstd,
        diffId: `sha256:${'1'.repeat(64)}`,
      },
    ]);
    await pushImage(join(work, 'layout'), 'v1', `${reg.host}/zstd:v1`, { preserveDigests: true });
    const res = await hoist(['convert', `${reg.host}/zstd:v1`, `${reg.host}/zstd:esgz`]);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /^hoist: layer sha256:\w+ is zstd-compressed .*gzip.*\n$/);
    // nothing was pushed
    await assert.rejects(getManifest(reg.url, 'zstd', 'esgz'), /404/);

    for (const args of [
      ['convert', `${reg.host}/zstd:v1`],
      ['convert', `${reg.host}/zstd:v1`, `${reg.host}/x:y`, '--gzip-level', '11'],
      ['convert', 'Bad//Ref', `${reg.host}/x:y`],
      ['convert', `${reg.host}/zstd:v1`, `${reg.host}/x:y`, '--prioritize', join(work, 'missing')],
    ]) {
      const r = await hoist(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
