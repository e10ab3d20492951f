// Corners of the OCI distribution-spec pull workflow that its conformance suite checks, against
// the mirror in front of a real docker-registry: a manifest named by a malformed tag is unknown
// (404 MANIFEST_UNKNOWN with an OCI error body, for GET and HEAD), as distribution itself
// answers, while a malformed digest stays a bad request.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startMirror } from './helpers/mirror.js';
import { requirePeers } from './helpers/peers.js';
import { startRegistry } from './helpers/registry.js';

describe('OCI conformance corners', () => {
  it('answers a malformed tag with 404 MANIFEST_UNKNOWN, like the registry itself', async (t) => {
    if (!requirePeers(t, 'docker-registry')) return;
    const registry = await startRegistry();
    t.after(() => registry.stop());
    const mirror = await startMirror({ 'up.test': registry.url }, { defaultUpstream: 'up.test' });
    t.after(() => mirror.close());

    const path = '/v2/conformance/app/manifests/.INVALID_MANIFEST_NAME';
    const upstream = await fetch(`${registry.url}${path}`);
    assert.equal(upstream.status, 404, 'what distribution answers');
    await upstream.arrayBuffer();

    const get = await fetch(`${mirror.url}${path}`);
    assert.equal(get.status, 404);
    const body = (await get.json()) as { errors: Array<{ code: string; message: string }> };
    assert.equal(body.errors[0]?.code, 'MANIFEST_UNKNOWN');
    assert.match(body.errors[0]?.message ?? '', /tag/);
    const head = await fetch(`${mirror.url}${path}`, { method: 'HEAD' });
    assert.equal(head.status, 404);

    const badDigest = await fetch(`${mirror.url}/v2/conformance/app/manifests/sha256:1234`);
    assert.equal(badDigest.status, 400);
    assert.equal(
      ((await badDigest.json()) as { errors: Array<{ code: string }> }).errors[0]?.code,
      'DIGEST_INVALID',
    );
  });
});
