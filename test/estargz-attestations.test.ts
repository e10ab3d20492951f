// `hoist convert` on an index that holds more than images, against the real peers
// (docker-registry, skopeo): a BuildKit attestation manifest (platform unknown/unknown, in-toto
// layer, vnd.docker.reference.* annotations) and an OCI artifact are copied byte for byte, the
// attestation's reference is moved to the converted manifest, and `--platform` converts only the
// platforms it names, dropping the attestations of the others.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { buildImage, pushImage } from './helpers/images.js';
import { requirePeers, testTempDir } from './helpers/peers.js';
import { startRegistry, type RegistryPeer } from './helpers/registry.js';
import { getBlob, getManifest, hoist } from './go/estargz-verifier.js';

const TIMEOUT = { timeout: 300_000 };
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const REF_TYPE = 'vnd.docker.reference.type';
const REF_DIGEST = 'vnd.docker.reference.digest';
const TOC_DIGEST = 'containerd.io/snapshot/stargz/toc.digest';

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

interface Index {
  mediaType: string;
  manifests: Desc[];
}

interface Source {
  /** Digests of the platform manifests in the source index, by os/arch. */
  platforms: Record<string, string>;
  /** The one layer each platform does not share with the other, by arch. */
  markerLayers: Record<string, string>;
  attestation: Desc;
  attestationBody: Buffer;
  statement: Buffer;
  artifact: Desc;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Adds a blob to an OCI layout (image-layout.md: blobs/sha256/<hex>) and returns its descriptor. */
async function putBlob(dir: string, mediaType: string, data: Buffer): Promise<Desc> {
  const digest = sha256(data);
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
  return { mediaType, digest, size: data.length };
}

/**
 * A two-platform image from buildImage, then what BuildKit adds (attestation-storage.md): an
 * attestation manifest for linux/amd64 whose layer is an in-toto statement about that manifest,
 * and an OCI 1.1 artifact (an SBOM with the empty config) with no platform. index.json is rewritten
 * to name the new index before skopeo pushes every entry.
 */
async function sourceImage(t: TestContext, reg: RegistryPeer, repo: string): Promise<Source> {
  const work = await testTempDir(t, 'hoist-esgz-att');
  const dir = join(work, 'layout');
  const built = await buildImage(dir, {
    tag: 'v1',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ],
    layers: [
      {
        files: [
          ...Array.from({ length: 40 }, (_, i) => ({ path: `app/f${i}.txt`, content: `file ${i}\n` })),
          { path: 'app/big.bin', size: 1024 * 1024, seed: 'big' },
        ],
      },
    ],
  });
  const platforms: Record<string, string> = {};
  const markerLayers: Record<string, string> = {};
  for (const m of built.manifests) {
    platforms[m.platform.architecture] = m.manifest.digest;
    markerLayers[m.platform.architecture] = m.layers.at(-1)?.digest ?? '';
  }
  const amd64 = platforms.amd64;
  assert.ok(amd64 && built.index);

  const statement = Buffer.from(
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://slsa.dev/provenance/v0.2',
      subject: [{ name: `pkg:docker/${repo}@v1?platform=linux%2Famd64`, digest: { sha256: amd64.slice(7) } }],
      predicate: { buildType: 'https://mobyproject.org/buildkit@v1', builder: { id: '' } },
    }),
  );
  const layer = await putBlob(dir, 'application/vnd.in-toto+json', statement);
  const config = await putBlob(
    dir,
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        architecture: 'unknown',
        os: 'unknown',
        config: {},
        rootfs: { type: 'layers', diff_ids: [layer.digest] },
      }),
    ),
  );
  const attestationBody = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config,
      layers: [
        { ...layer, annotations: { 'in-toto.io/predicate-type': 'https://slsa.dev/provenance/v0.2' } },
      ],
    }),
  );
  const attestation: Desc = {
    ...(await putBlob(dir, OCI_MANIFEST, attestationBody)),
    platform: { architecture: 'unknown', os: 'unknown' },
    annotations: { [REF_DIGEST]: amd64, [REF_TYPE]: 'attestation-manifest' },
  };

  const empty = await putBlob(dir, 'application/vnd.oci.empty.v1+json', Buffer.from('{}'));
  const sbom = await putBlob(dir, 'application/spdx+json', Buffer.from('{"spdxVersion":"SPDX-2.3"}'));
  const artifact: Desc = {
    ...(await putBlob(
      dir,
      OCI_MANIFEST,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          artifactType: 'application/spdx+json',
          config: empty,
          layers: [sbom],
        }),
      ),
    )),
  };

  const index = JSON.parse(
    await readFile(join(dir, 'blobs', 'sha256', built.index.digest.slice(7)), 'utf8'),
  ) as Index;
  // The artifact's descriptor carries no artifactType (optional there): skopeo 1.9 would refuse
  // to push such an index with --preserve-digests. Hoist recognises it from the manifest itself.
  index.manifests.push(attestation, artifact);
  const newIndex = await putBlob(dir, OCI_INDEX, Buffer.from(JSON.stringify(index)));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ ...newIndex, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
    }),
  );
  await pushImage(dir, 'v1', `${reg.host}/${repo}:v1`, { all: true, preserveDigests: true });
  // skopeo kept every entry and every digest
  const pushed = await getManifest(reg.url, repo, 'v1');
  assert.equal(pushed.digest, newIndex.digest);
  return { platforms, markerLayers, attestation, attestationBody, statement, artifact };
}

async function registry(t: TestContext): Promise<RegistryPeer> {
  const peer = await startRegistry();
  t.after(() => peer.stop());
  return peer;
}

async function index(reg: RegistryPeer, repo: string, ref: string): Promise<Index> {
  return JSON.parse((await getManifest(reg.url, repo, ref)).body.toString()) as Index;
}

interface ConvertOutput {
  digest: string;
  manifests: Array<{ source: string; digest: string; platform?: { architecture: string } }>;
  others: Array<{
    action: string;
    digest: string;
    reason: string;
    reference?: { source: string; destination: string };
  }>;
}

describe('hoist convert: attestations, artifacts and --platform', () => {
  it(
    'copies the attestation and the artifact unchanged and points the attestation at the converted manifest',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const reg = await registry(t);
      const src = await sourceImage(t, reg, 'src/app');
      const res = await hoist([
        'convert',
        `${reg.host}/src/app:v1`,
        `${reg.host}/dst/app:esgz`,
        '--output',
        'json',
      ]);
      assert.equal(res.code, 0, res.stderr);
      const out = JSON.parse(res.stdout) as ConvertOutput;

      const dst = await index(reg, 'dst/app', 'esgz');
      assert.equal(sha256((await getManifest(reg.url, 'dst/app', 'esgz')).body), out.digest);
      assert.deepEqual(
        dst.manifests.map((m) => (m.platform ? `${m.platform.os}/${m.platform.architecture}` : 'none')),
        ['linux/amd64', 'linux/arm64', 'unknown/unknown', 'none'],
      );
      const [amd64, arm64, attestation, artifact] = dst.manifests;
      assert.ok(amd64 && arm64 && attestation && artifact);
      // The images were converted: new digests, eStargz layers.
      assert.notEqual(amd64.digest, src.platforms.amd64);
      const converted = JSON.parse((await getManifest(reg.url, 'dst/app', amd64.digest)).body.toString()) as {
        layers: Desc[];
      };
      assert.ok(converted.layers.every((l) => l.annotations?.[TOC_DIGEST]));

      // The attestation: same manifest bytes and blobs, reference moved to the converted amd64.
      assert.equal(attestation.digest, src.attestation.digest);
      assert.equal(attestation.annotations?.[REF_TYPE], 'attestation-manifest');
      assert.equal(attestation.annotations?.[REF_DIGEST], amd64.digest);
      const copied = await getManifest(reg.url, 'dst/app', attestation.digest);
      assert.deepEqual(copied.body, src.attestationBody);
      const statementDigest = sha256(src.statement);
      assert.deepEqual(await getBlob(reg.url, 'dst/app', statementDigest), src.statement);
      assert.deepEqual(
        out.others.find((o) => o.digest === attestation.digest),
        {
          action: 'copied',
          digest: attestation.digest,
          mediaType: OCI_MANIFEST,
          platform: { architecture: 'unknown', os: 'unknown' },
          reason: 'attestation-manifest',
          reference: { source: src.platforms.amd64, destination: amd64.digest },
        },
      );

      // The artifact: recognised after fetching (artifactType), copied with its blobs.
      assert.equal(artifact.digest, src.artifact.digest);
      assert.equal(
        out.others.find((o) => o.digest === artifact.digest)?.reason,
        'artifact application/spdx+json',
      );
      const sbom = JSON.parse((await getManifest(reg.url, 'dst/app', artifact.digest)).body.toString()) as {
        layers: Desc[];
      };
      assert.equal(
        (await getBlob(reg.url, 'dst/app', sbom.layers[0]?.digest ?? '')).toString(),
        '{"spdxVersion":"SPDX-2.3"}',
      );

      // --check checks the two images and lists the other entries as not checked.
      const check = await hoist(['convert', '--check', `${reg.host}/dst/app:esgz`, '--output', 'json']);
      assert.equal(check.code, 0, check.stdout);
      const report = JSON.parse(check.stdout) as { valid: boolean; manifests: unknown[]; skipped: Desc[] };
      assert.equal(report.valid, true);
      assert.equal(report.manifests.length, 2);
      assert.deepEqual(
        report.skipped.map((s) => s.digest),
        [attestation.digest, artifact.digest],
      );

      // Text output says what was copied and that the statement's subject is the source manifest.
      const text = await hoist(['convert', `${reg.host}/src/app:v1`, `${reg.host}/dst/app:text`]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /unknown\/unknown sha256:\w+ copied unchanged \(attestation-manifest\)/);
      assert.match(text.stdout, /the attestation's own subject is still the source manifest sha256:/);
    },
  );

  it(
    '--platform converts only the platforms named and drops the attestations of the others',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry', 'skopeo')) return;
      const reg = await registry(t);
      const src = await sourceImage(t, reg, 'app');

      const arm = await hoist([
        'convert',
        `${reg.host}/app:v1`,
        `${reg.host}/app:arm`,
        '--platform',
        'linux/arm64',
        '--output',
        'json',
      ]);
      assert.equal(arm.code, 0, arm.stderr);
      const armOut = JSON.parse(arm.stdout) as ConvertOutput;
      assert.deepEqual(
        armOut.manifests.map((m) => m.source),
        [src.platforms.arm64],
      );
      assert.deepEqual(
        armOut.others.map((o) => [o.action, o.digest, o.reason]),
        [
          ['dropped', src.platforms.amd64, 'platform not selected by --platform'],
          ['dropped', src.attestation.digest, 'attestation-manifest of linux/amd64, which is not converted'],
          ['copied', src.artifact.digest, 'artifact application/spdx+json'],
        ],
      );
      const armIndex = await index(reg, 'app', 'arm');
      assert.deepEqual(
        armIndex.manifests.map((m) => m.digest),
        [armOut.manifests[0]?.digest, src.artifact.digest],
      );
      // The left-out platform's own layer was never even downloaded.
      const fetchedBlobs = reg
        .accessLog()
        .filter((e) => e.method === 'GET' && e.userAgent.includes('hoist'))
        .map((e) => e.path);
      assert.ok(fetchedBlobs.includes(`/v2/app/blobs/${src.markerLayers.arm64}`), fetchedBlobs.join('\n'));
      assert.ok(!fetchedBlobs.includes(`/v2/app/blobs/${src.markerLayers.amd64}`));

      // Two flags, in either spelling containerd accepts: both platforms, attestation rewritten.
      const both = await hoist([
        'convert',
        `${reg.host}/app:v1`,
        `${reg.host}/app:both`,
        '--platform',
        'linux/amd64',
        '--platform',
        'linux/arm64/v8',
        '--output',
        'json',
      ]);
      assert.equal(both.code, 0, both.stderr);
      const bothIndex = await index(reg, 'app', 'both');
      assert.equal(bothIndex.manifests.length, 4);
      assert.equal(bothIndex.manifests[2]?.annotations?.[REF_DIGEST], bothIndex.manifests[0]?.digest);

      const amd = await hoist([
        'convert',
        `${reg.host}/app:v1`,
        `${reg.host}/app:amd`,
        '--platform',
        'linux/amd64',
      ]);
      assert.equal(amd.code, 0, amd.stderr);
      assert.match(amd.stdout, /linux\/arm64 sha256:\w+ dropped \(platform not selected by --platform\)/);
      const amdIndex = await index(reg, 'app', 'amd');
      assert.deepEqual(
        amdIndex.manifests.map((m) => m.platform?.architecture ?? 'none'),
        ['amd64', 'unknown', 'none'],
      );
      assert.equal(amdIndex.manifests[1]?.annotations?.[REF_DIGEST], amdIndex.manifests[0]?.digest);

      for (const [platform, message] of [
        [
          'linux/s390x',
          /^hoist: --platform linux\/s390x matches no image of the index \(it has linux\/amd64, linux\/arm64\)\n$/,
        ],
        ['amd64', /^hoist: --platform "amd64" is not os\/arch\[\/variant\]/],
      ] as const) {
        const bad = await hoist([
          'convert',
          `${reg.host}/app:v1`,
          `${reg.host}/app:bad`,
          '--platform',
          platform,
        ]);
        assert.equal(bad.code, 2, bad.stderr);
        assert.match(bad.stderr, message);
      }
      // A single manifest (one platform, by digest) is checked against its config's platform.
      const single = `${reg.host}/app@${src.platforms.amd64}`;
      const wrong = await hoist(['convert', single, `${reg.host}/app:bad`, '--platform', 'linux/arm64']);
      assert.equal(wrong.code, 2, wrong.stderr);
      assert.match(wrong.stderr, /^hoist: the source is a single linux\/amd64 image, not linux\/arm64\n$/);
      const right = await hoist(['convert', single, `${reg.host}/app:single`, '--platform', 'linux/amd64']);
      assert.equal(right.code, 0, right.stderr);
      // Nothing was pushed for the refused runs.
      await assert.rejects(getManifest(reg.url, 'app', 'bad'), /404/);
    },
  );
});
