// Hoist's own test for each spec of the OCI distribution-spec conformance suite's pull workflow
// (distribution-spec v1.1, conformance/01_pull_test.go), so that each check holds even where the
// suite's binary is not built (test/mirror-oci-conformance.test.ts runs the suite itself). The
// content is shaped like the suite's: a config blob, a gzip layer, one manifest pushed by tag and
// one pushed by digest only, all pushed to a real docker-registry and read through the mirror.
// Each `it` names the suite's spec it stands for.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { after, describe, it, type TestContext } from 'node:test';
import { MEDIA_TYPES } from './helpers/images.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { requirePeers } from './helpers/peers.js';
import { sendRaw } from './helpers/raw-http.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const REPO = 'conformance/pull';
/** The error codes the suite accepts in a 400 body (distribution-spec "Error Codes"). */
const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
];
const OCI_ACCEPT = { accept: MEDIA_TYPES.ociManifest };

interface Pushed {
  digest: string;
  body: Buffer;
}

interface Fixture {
  registry: RegistryPeer;
  mirror: MirrorHandle;
  config: Pushed;
  layer: Pushed;
  /** Pushed under the tag `tagtest0`. */
  tagged: Pushed;
  /** Pushed by digest only, never tagged. */
  untagged: Pushed;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** PUTs a manifest to the upstream registry under `ref` (a tag or its digest). */
async function pushManifest(registry: RegistryPeer, ref: string, body: Buffer): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${REPO}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': MEDIA_TYPES.ociManifest },
    body,
  });
  assert.equal(res.status, 201, `manifest push: ${await res.text()}`);
}

/** A manifest like the suite's: one config (unique per call, as the suite's random author) and one layer. */
async function pushImageManifest(registry: RegistryPeer, layer: Pushed): Promise<[Pushed, Pushed]> {
  const configBody = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      author: randomBytes(8).toString('hex'),
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const config = { digest: await pushBlob(registry, REPO, configBody), body: configBody };
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociManifest,
      config: { mediaType: MEDIA_TYPES.ociConfig, digest: config.digest, size: configBody.byteLength },
      layers: [{ mediaType: MEDIA_TYPES.ociLayerGzip, digest: layer.digest, size: layer.body.byteLength }],
    }),
  );
  return [config, { digest: sha256(body), body }];
}

let fixture: Promise<Fixture> | undefined;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** The suite's pull setup, done once: a registry, the mirror in front of it, the pushed content. */
async function peers(t: TestContext): Promise<Fixture | undefined> {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  fixture ??= (async () => {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    // tagTtlSeconds 0: as in the suite's run, every tag read re-checks upstream (see
    // test/mirror-oci-conformance.test.ts for why the suite needs it).
    const mirror = await startMirror(
      { 'up.test': registry.url },
      { defaultUpstream: 'up.test', file: { tagTtlSeconds: 0 } },
    );
    cleanups.push(() => mirror.close());
    const layerBody = gzipSync(Buffer.from('you bothered to find out what was in here\n'));
    const layer = { digest: await pushBlob(registry, REPO, layerBody), body: layerBody };
    const [config, tagged] = await pushImageManifest(registry, layer);
    await pushManifest(registry, 'tagtest0', tagged.body);
    const [, untagged] = await pushImageManifest(registry, layer);
    await pushManifest(registry, untagged.digest, untagged.body);
    return { registry, mirror, config, layer, tagged, untagged };
  })();
  return fixture;
}

async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: Array<{ code?: string; message?: string }> };
  assert.ok(body.errors?.[0]?.message, 'an OCI error body says what was wrong');
  return body.errors[0]?.code;
}

describe('OCI conformance pull workflow, spec by spec', () => {
  it('Setup / Get the name of a tag: tags/list through the mirror lists the pushed tag', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const res = await fetch(`${f.mirror.url}/v2/${REPO}/tags/list`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { name: REPO, tags: ['tagtest0'] });
  });

  it('Pull blobs / HEAD and GET of a nonexistent blob answer 404', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const missing = sha256(Buffer.from('hello world'));
    const head = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${missing}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
    const get = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${missing}`);
    assert.equal(get.status, 404);
    assert.equal(await errorCode(get), 'BLOB_UNKNOWN');
  });

  it('Pull blobs / HEAD and GET of an existing blob answer 200 with its digest', async (t) => {
    const f = await peers(t);
    if (!f) return;
    for (const blob of [f.config, f.layer]) {
      const head = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${blob.digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('docker-content-digest'), blob.digest);
      assert.equal(Number(head.headers.get('content-length')), blob.body.byteLength);
      const get = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${blob.digest}`);
      assert.equal(get.status, 200);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), blob.body);
    }
  });

  it('Pull manifests / HEAD and GET of a malformed tag answer 404 MANIFEST_UNKNOWN, like distribution', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const path = `/v2/${REPO}/manifests/.INVALID_MANIFEST_NAME`;
    const upstream = await fetch(`${f.registry.url}${path}`);
    assert.equal(upstream.status, 404, 'what distribution answers');
    await upstream.arrayBuffer();

    const get = await fetch(`${f.mirror.url}${path}`);
    assert.equal(get.status, 404);
    const body = (await get.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0]?.code, 'MANIFEST_UNKNOWN');
    assert.match(body.errors[0]?.message ?? '', /tag/);
    const head = await fetch(`${f.mirror.url}${path}`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  });

  it('Pull manifests / HEAD and GET by digest answer 200, tagged or not', async (t) => {
    const f = await peers(t);
    if (!f) return;
    for (const m of [f.tagged, f.untagged]) {
      const url = `${f.mirror.url}/v2/${REPO}/manifests/${m.digest}`;
      const head = await fetch(url, { method: 'HEAD', headers: OCI_ACCEPT });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('docker-content-digest'), m.digest);
      const get = await fetch(url, { headers: OCI_ACCEPT });
      assert.equal(get.status, 200);
      assert.equal(get.headers.get('content-type'), MEDIA_TYPES.ociManifest);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), m.body);
    }
  });

  it('Pull manifests / HEAD and GET by tag answer 200 with the tagged digest', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const url = `${f.mirror.url}/v2/${REPO}/manifests/tagtest0`;
    const head = await fetch(url, { method: 'HEAD', headers: OCI_ACCEPT });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('docker-content-digest'), f.tagged.digest);
    const get = await fetch(url, { headers: OCI_ACCEPT });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('docker-content-digest'), f.tagged.digest);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), f.tagged.body);
  });

  it('Error codes / a malformed digest answers 400 with an OCI error code from the spec', async (t) => {
    const f = await peers(t);
    if (!f) return;
    // The suite's request as it sends it: a GET with a body and a Content-Type (fetch refuses a
    // GET body, so it goes raw).
    const port = Number(new URL(f.mirror.url).port);
    const raw = await sendRaw(
      port,
      Buffer.from(
        `GET /v2/${REPO}/manifests/sha256:totallywrong HTTP/1.1\r\nHost: mirror\r\n` +
          `Content-Type: ${MEDIA_TYPES.ociManifest}\r\nContent-Length: 9\r\nConnection: close\r\n\r\nblablabla`,
      ),
    );
    const res = raw.responses[0];
    assert.ok(res, `an answer (${raw.garbage})`);
    assert.equal(res.status, 400, 'the suite accepts 400 or 404; distribution 2.8 itself answers 500');
    const code = (JSON.parse(res.body.toString('utf8')) as { errors: Array<{ code: string }> }).errors[0]
      ?.code;
    assert.equal(code, 'DIGEST_INVALID');
    assert.ok(SPEC_ERROR_CODES.includes(code), `${code} is an OCI error code`);
    const short = await fetch(`${f.mirror.url}/v2/${REPO}/manifests/sha256:1234`);
    assert.equal(short.status, 400);
    assert.equal(await errorCode(short), 'DIGEST_INVALID');
  });

  it('Caching the suite relies on: a tag moved upstream is followed at once with tagTtlSeconds 0', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const url = `${f.mirror.url}/v2/${REPO}/manifests/moving`;
    await pushManifest(f.registry, 'moving', f.tagged.body);
    const first = await fetch(url, { method: 'HEAD', headers: OCI_ACCEPT });
    assert.equal(first.headers.get('docker-content-digest'), f.tagged.digest);
    await pushManifest(f.registry, 'moving', f.untagged.body);
    const moved = await fetch(url, { headers: OCI_ACCEPT });
    assert.equal(moved.status, 200);
    assert.equal(moved.headers.get('docker-content-digest'), f.untagged.digest);
    assert.deepEqual(Buffer.from(await moved.arrayBuffer()), f.untagged.body);
  });

  it('Caching the suite relies on: a 404 is not remembered; content pushed after it is served', async (t) => {
    const f = await peers(t);
    if (!f) return;
    const body = randomBytes(1024);
    const digest = sha256(body);
    const before = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${digest}`);
    assert.equal(before.status, 404);
    await before.arrayBuffer();
    const beforeTag = await fetch(`${f.mirror.url}/v2/${REPO}/manifests/late`, { headers: OCI_ACCEPT });
    assert.equal(beforeTag.status, 404);
    await beforeTag.arrayBuffer();

    await pushBlob(f.registry, REPO, body);
    await pushManifest(f.registry, 'late', f.tagged.body);
    const after = await fetch(`${f.mirror.url}/v2/${REPO}/blobs/${digest}`);
    assert.equal(after.status, 200);
    assert.deepEqual(Buffer.from(await after.arrayBuffer()), body);
    const afterTag = await fetch(`${f.mirror.url}/v2/${REPO}/manifests/late`, { headers: OCI_ACCEPT });
    assert.equal(afterTag.status, 200);
    assert.equal(afterTag.headers.get('docker-content-digest'), f.tagged.digest);
    await afterTag.arrayBuffer();
  });
});
