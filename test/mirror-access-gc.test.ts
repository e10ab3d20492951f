// Access records (`access/<upstream>/<repo>/_members/<alg>/<hex>`) live only as long as the content
// they grant: a blob evicted by the disk budget takes every record of its digest with it, so the
// store does not grow without bound, and a later pull records it again.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { removeTempDir, requirePeers, tempDir } from './helpers/peers.js';
import { pushBlob, startRegistry } from './helpers/registry.js';

const TIMEOUT = { timeout: 120_000 };
const MiB = 1024 * 1024;
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Every record file under access/, as `<upstream>/<repo...>/<digest>`. */
async function records(storage: string): Promise<string[]> {
  const root = join(storage, 'access');
  const out: string[] = [];
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const rel = join(entry.parentPath, entry.name)
      .slice(root.length + 1)
      .split('/');
    const hex = rel.pop();
    const alg = rel.pop();
    rel.pop(); // _members
    out.push(`${decodeURIComponent(rel[0] ?? '')}/${rel.slice(1).join('/')}/${alg}:${hex}`);
  }
  return out.sort();
}

async function pull(mirror: MirrorHandle, repo: string, digest: string): Promise<void> {
  const res = await fetch(`${mirror.url}/v2/${repo}/blobs/${digest}`);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${repo} ${digest}: ${body.toString('utf8', 0, 200)}`);
  assert.equal(sha256(body), digest);
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

const collections = (mirror: MirrorHandle) =>
  mirror.logs().filter((l) => l.module === 'gc' && l.msg === 'evicted least-recently-used blobs').length;

describe('access records and the disk budget', () => {
  it(
    'removes every record of an evicted blob, keeps the others, and records it again on a later pull',
    TIMEOUT,
    async (t) => {
      if (!requirePeers(t, 'docker-registry')) return;
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const shared = randomBytes(MiB);
      const a = await pushBlob(registry, 'team/one', shared);
      await pushBlob(registry, 'team/two', shared);
      const b = await pushBlob(registry, 'team/one', randomBytes(MiB));
      const c = await pushBlob(registry, 'team/one', randomBytes(MiB));
      const storage = await tempDir('hoist-access-gc-');
      t.after(() => removeTempDir(storage));
      const gc = { maxBytes: 2.5 * MiB, lowBytes: 2 * MiB, intervalSeconds: 3600 };
      const mirror = await startMirror({ [registry.host]: registry.url }, { storage, file: { gc } });
      let closed = false;
      t.after(() => (closed ? undefined : mirror.close()));
      const stored = (d: string) => existsSync(join(storage, 'blobs', 'sha256', d.slice(7)));
      const up = registry.host;

      // `a` is fetched for team/one and confirmed upstream for team/two: two records, one blob.
      await pull(mirror, 'team/one', a);
      await pull(mirror, 'team/two', a);
      assert.deepEqual(await records(storage), [`${up}/team/one/${a}`, `${up}/team/two/${a}`].sort());

      // The third MiB takes the store over 2.5 MiB: `a`, least recently used, is evicted.
      await pull(mirror, 'team/one', b);
      await pull(mirror, 'team/one', c);
      // The collector logs once it is done, records included.
      await waitFor('the first collection', () => collections(mirror) === 1);
      assert.equal(stored(a), false);
      const after = await records(storage);
      assert.deepEqual(
        after.filter((r) => r.endsWith(a)),
        [],
        'no record of the evicted blob remains',
      );
      assert.deepEqual(after, [`${up}/team/one/${b}`, `${up}/team/one/${c}`].sort());
      assert.equal(
        existsSync(join(storage, 'access', encodeURIComponent(up), 'team', 'two')),
        false,
        'the emptied repository directory is removed',
      );

      // Pulled again through team/two: served, stored and recorded again.
      await pull(mirror, 'team/two', a);
      assert.ok(stored(a));
      assert.ok((await records(storage)).includes(`${up}/team/two/${a}`));
      await waitFor('the second collection', () => collections(mirror) === 2);
      assert.equal(stored(b), false);
      assert.deepEqual(await records(storage), [`${up}/team/one/${c}`, `${up}/team/two/${a}`].sort());
      await mirror.close();
      closed = true;

      // A record of content no longer stored (a blob `hoist mirror verify` removed while the mirror
      // was stopped) is dropped at start-up.
      const gone = sha256(randomBytes(16));
      const stray = join(storage, 'access', encodeURIComponent(up), 'team', 'three', '_members', 'sha256');
      await mkdir(stray, { recursive: true });
      await writeFile(join(stray, gone.slice(7)), '');

      // Restarted with the upstream gone: what it holds is served from its records alone.
      await registry.stop();
      const restarted = await startMirror({ [registry.host]: registry.url }, { storage, file: { gc } });
      t.after(() => restarted.close());
      await pull(restarted, 'team/one', c);
      await pull(restarted, 'team/two', a);
      assert.deepEqual(await records(storage), [`${up}/team/one/${c}`, `${up}/team/two/${a}`].sort());
      assert.equal(existsSync(join(storage, 'access', encodeURIComponent(up), 'team', 'three')), false);
      const missing = await fetch(`${restarted.url}/v2/team/one/blobs/${b}`);
      await missing.arrayBuffer();
      assert.notEqual(missing.status, 200, 'an evicted blob is not served offline');
    },
  );

  it('keeps the records of a manifest when the same digest is evicted as a blob', TIMEOUT, async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const config = Buffer.from('{}');
    const layer = randomBytes(MiB);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: await pushBlob(registry, 'team/app', config),
          size: config.length,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar',
            digest: await pushBlob(registry, 'team/app', layer),
            size: layer.length,
          },
        ],
      }),
    );
    const m = sha256(manifest);
    const put = await fetch(`${registry.url}/v2/team/app/manifests/v1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    assert.equal(put.status, 201, await put.text());
    // The same bytes as a blob too (this registry does not serve manifests as blobs by itself).
    assert.equal(await pushBlob(registry, 'team/app', manifest), m);
    const other = await pushBlob(registry, 'team/app', randomBytes(MiB));
    const gc = { maxBytes: 1.5 * MiB, lowBytes: MiB, intervalSeconds: 3600 };
    const mirror = await startMirror({ [registry.host]: registry.url }, { file: { gc } });
    t.after(() => mirror.close());
    const up = registry.host;

    const got = await fetch(`${mirror.url}/v2/team/app/manifests/${m}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(got.status, 200);
    assert.equal(sha256(Buffer.from(await got.arrayBuffer())), m);
    // Now the digest is stored both as a manifest and as a blob, with one record.
    await pull(mirror, 'team/app', m);
    await pull(mirror, 'team/app', sha256(layer));
    await pull(mirror, 'team/app', other);
    await waitFor('a collection', () => collections(mirror) === 1);
    assert.equal(existsSync(join(mirror.storage, 'blobs', 'sha256', m.slice(7))), false, 'evicted as a blob');
    const left = await records(mirror.storage);
    assert.ok(left.includes(`${up}/team/app/${m}`), `the manifest keeps its record: ${left.join(', ')}`);
    assert.equal(left.includes(`${up}/team/app/${sha256(layer)}`), false);
    await registry.stop();
    const again = await fetch(`${mirror.url}/v2/team/app/manifests/${m}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    assert.equal(again.status, 200, 'served offline from the manifest store and its record');
    await again.arrayBuffer();
  });
});
