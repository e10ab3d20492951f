// Manifests by digest from peers while the upstream cannot be reached (docs/peers.md, "Manifests
// by digest during an upstream outage"): real mirrors and docker-registry on loopback.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fetcherFor } from '../src/peers/index.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { freePort, requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TOKEN = 'peer-token-for-tests-0123456789';
const REPO = 'team/app';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Cluster {
  registry: RegistryPeer;
  /** Between every mirror and the registry: closed or faulted to take the upstream away. */
  proxy: FaultProxy;
  nodes: MirrorHandle[];
  urls: string[];
  /** Node i's peers reach it through fronts.get(i), when it is fronted. */
  fronts: Map<number, FaultProxy>;
}

const ALICE = { username: 'alice', password: 'right-horse-battery' };

/**
 * `n` mirrors that know each other as peers, mirroring one docker-registry through a fault proxy.
 * `creds`: the registry needs them, and every mirror has them (the `verify` access mode).
 */
async function startCluster(
  t: TestContext,
  n: number,
  fronted: number[] = [],
  creds?: typeof ALICE,
): Promise<Cluster | undefined> {
  if (!requirePeers(t, 'docker-registry', ...(creds ? ['htpasswd'] : []))) return undefined;
  const registry = await startRegistry(creds ? { htpasswd: creds } : {});
  cleanups.push(() => registry.stop());
  const proxy = await startFaultProxy(registry.url);
  cleanups.push(() => proxy.close());
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const fronts = new Map<number, FaultProxy>();
  const urls: string[] = [];
  for (const [i, port] of ports.entries()) {
    if (!fronted.includes(i)) {
      urls.push(`http://127.0.0.1:${port}`);
      continue;
    }
    const front = await startFaultProxy(`http://127.0.0.1:${port}`);
    cleanups.push(() => front.close());
    fronts.set(i, front);
    urls.push(front.url);
  }
  const nodes = await Promise.all(
    ports.map((port, i) =>
      startMirror(creds ? {} : { reg: proxy.url }, {
        defaultUpstream: 'reg',
        file: {
          ...(creds ? { upstreams: { reg: { url: proxy.url, ...creds } } } : {}),
          listen: `127.0.0.1:${port}`,
          peers: { self: urls[i], urls, token: TOKEN, stallSeconds: 2 },
        },
      }),
    ),
  );
  for (const node of nodes) cleanups.push(() => node.close());
  return { registry, proxy, nodes, urls, fronts };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Pushes an image (a config and one layer, each fetched through the peers by `holder`, so that the
 * blobs' rendezvous fetcher is the node that pulled them) and its manifest under tag v1.
 */
async function pushImage(c: Cluster, holder: number, creds?: typeof ALICE) {
  const want = c.urls[holder];
  let layer = randomBytes(256 * 1024);
  while (fetcherFor(sha(layer), c.urls) !== want) layer = randomBytes(256 * 1024);
  let config = Buffer.alloc(0);
  for (let i = 0; ; i++) {
    config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: i }));
    if (fetcherFor(sha(config), c.urls) === want) break;
  }
  await pushBlob(c.registry, REPO, layer, creds);
  await pushBlob(c.registry, REPO, config, creds);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length },
      ],
    }),
  );
  const put = await fetch(`${c.registry.url}/v2/${REPO}/manifests/v1`, {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST, ...(creds ? { authorization: basic(creds) } : {}) },
    body: manifest,
  });
  assert.equal(put.status, 201, await put.text());
  return { manifest, digest: sha(manifest), blobs: [config, layer] };
}

const basic = (c: typeof ALICE) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;

async function get(node: MirrorHandle, path: string, creds?: typeof ALICE) {
  const res = await fetch(`${node.url}/v2/${REPO}/${path}`, {
    headers: { accept: OCI_MANIFEST, ...(creds ? { authorization: basic(creds) } : {}) },
  });
  const body = Buffer.from(await res.arrayBuffer());
  return {
    status: res.status,
    body,
    cache: res.headers.get('x-hoist-cache'),
    type: res.headers.get('content-type'),
  };
}

async function pullThrough(node: MirrorHandle, ref: string, blobs: Buffer[], creds?: typeof ALICE) {
  const m = await get(node, `manifests/${ref}`, creds);
  assert.equal(m.status, 200, m.body.toString());
  for (const b of blobs) {
    const r = await get(node, `blobs/${sha(b)}`, creds);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, b);
  }
  return m;
}

const storedManifest = (node: MirrorHandle, digest: string) =>
  access(join(node.storage, 'manifests', 'sha256', digest.slice('sha256:'.length))).then(
    () => true,
    () => false,
  );

test('upstream gone: a node that never saw the image pulls it by digest, manifest and blobs from the peer that did', async (t) => {
  const c = await startCluster(t, 2);
  if (!c) return;
  const [a, b] = c.nodes as [MirrorHandle, MirrorHandle];
  const img = await pushImage(c, 0);
  await pullThrough(a, 'v1', img.blobs);
  assert.equal(await storedManifest(b, img.digest), false, 'node B never saw the manifest');
  // The upstream goes away: connections to it are refused.
  await c.proxy.close();
  await c.registry.stop();

  const m = await pullThrough(b, img.digest, img.blobs);
  assert.deepEqual(m.body, img.manifest, 'byte-identical manifest');
  assert.equal(m.cache, 'peer');
  assert.equal(m.type, OCI_MANIFEST);
  assert.equal(await b.metric('hoist_mirror_peer_manifest_bytes_total'), img.manifest.length);
  assert.equal(await b.metric('hoist_mirror_peer_manifest_requests_total', { result: 'ok' }), 1);
  assert.equal(await a.metric('hoist_mirror_peer_requests_total', { kind: 'manifest' }), 1);
  const blobBytes = img.blobs.reduce((n, x) => n + x.length, 0);
  assert.equal(await b.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' }), blobBytes);
  // Stored and recorded for the repository: served again from B's own store, A not asked again.
  assert.equal(await storedManifest(b, img.digest), true);
  assert.equal((await get(b, `manifests/${img.digest}`)).cache, 'hit');
  assert.equal(await a.metric('hoist_mirror_peer_requests_total', { kind: 'manifest' }), 1);
  // A peer serves a manifest only for a repository it holds it for, and only with the token.
  const peerGet = (repo: string, auth = `Bearer ${TOKEN}`) =>
    fetch(`${a.url}/peer/v1/manifests/${img.digest}?ns=reg&repo=${repo}`, {
      headers: { authorization: auth, 'x-hoist-peer': c.urls[1] as string },
    });
  assert.equal((await peerGet(REPO)).status, 200);
  assert.equal((await peerGet('team/other')).status, 404);
  assert.equal((await peerGet(REPO, 'Bearer wrong')).status, 403);
  // Tags are not shared: B never resolved v1, and a peer's answer about a tag proves nothing.
  assert.notEqual((await get(b, 'manifests/v1')).status, 200);
  assert.equal(await a.metric('hoist_mirror_peer_requests_total', { kind: 'manifest' }), 2);
});

test('a peer that sends wrong manifest bytes: not served, not stored, quarantined', async (t) => {
  const c = await startCluster(t, 2, [0]);
  if (!c) return;
  const [a, b] = c.nodes as [MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  const img = await pushImage(c, 0);
  await pullThrough(a, img.digest, []);
  // The upstream answers 503 to every manifest request; A's answers to peers get a byte flipped.
  c.proxy.inject('manifest', { kind: 'status', status: 503 }, 100);
  front.inject({ pathIncludes: '/peer/v1/manifests/' }, { kind: 'corrupt', at: 20 });
  const m = await get(b, `manifests/${img.digest}`);
  assert.notEqual(m.status, 200, 'the wrong bytes are not served');
  assert.ok(
    front.requests.some((q) => q.fault === 'corrupt'),
    'the peer was asked and lied',
  );
  assert.equal(await storedManifest(b, img.digest), false, 'nothing stored');
  assert.equal(await b.metric('hoist_mirror_peer_errors_total', { reason: 'digest' }), 1);
  assert.equal(await b.metric('hoist_mirror_peer_manifest_requests_total', { result: 'digest' }), 1);
  assert.equal(await b.metric('hoist_mirror_peer_manifest_bytes_total'), 0);
  const status = (await (
    await fetch(`${b.url}/peer/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as { members: Array<{ url: string; state: string }> };
  assert.equal(status.members.find((x) => x.url === c.urls[0])?.state, 'quarantined');
});

test('a 404 from a reachable upstream stands: the peers are not asked', async (t) => {
  const c = await startCluster(t, 2);
  if (!c) return;
  const [a, b] = c.nodes as [MirrorHandle, MirrorHandle];
  const img = await pushImage(c, 0);
  await pullThrough(a, img.digest, []);
  c.proxy.inject('manifest', { kind: 'status', status: 404 }, 10);
  const m = await get(b, `manifests/${img.digest}`);
  assert.equal(m.status, 404);
  assert.match(m.body.toString(), /MANIFEST_UNKNOWN/);
  assert.ok(
    c.proxy.requests.some((q) => q.fault === 'status'),
    'the upstream was asked and said 404',
  );
  assert.equal(await a.metric('hoist_mirror_peer_requests_total', { kind: 'manifest' }), 0);
  assert.equal(await b.metric('hoist_mirror_peer_manifest_requests_total'), 0);
  assert.equal(await storedManifest(b, img.digest), false);
});

test('a private repository during the outage: a peer copy is not served where the upstream check cannot be made', async (t) => {
  // The mirrors have credentials (verify mode): a repository anonymous clients cannot read is
  // served only to a client whose own credentials the upstream accepted, a check cached for
  // accessCacheSeconds. With the upstream gone and no cached check on B, a cached copy would not
  // be served there, and neither is a peer's.
  const c = await startCluster(t, 2, [], ALICE);
  if (!c) return;
  const [a, b] = c.nodes as [MirrorHandle, MirrorHandle];
  const img = await pushImage(c, 0, ALICE);
  assert.equal(
    (await get(a, `manifests/${img.digest}`)).status,
    401,
    'private: anonymous clients are challenged',
  );
  await pullThrough(a, img.digest, [], ALICE);
  await c.proxy.close();
  await c.registry.stop();
  const anonymous = await get(b, `manifests/${img.digest}`);
  assert.equal(anonymous.status, 401);
  const withCreds = await get(b, `manifests/${img.digest}`, ALICE);
  assert.notEqual(withCreds.status, 200, 'the client check needs the upstream');
  assert.equal(
    await a.metric('hoist_mirror_peer_requests_total', { kind: 'manifest' }),
    0,
    'A was never asked',
  );
  assert.equal(await storedManifest(b, img.digest), false);
  // On A, the same client was checked minutes ago: its cached copy is served, as without peers.
  assert.equal((await get(a, `manifests/${img.digest}`, ALICE)).status, 200);
});
