// Peer sharing (issue 13, docs/peers.md) between real Hoist mirrors on loopback, in front of one
// real docker-registry: one upstream GET per blob however many nodes ask at once, relays that
// serve from their own partial files, and the faults a peer can bring (killed mid-transfer,
// flipped bytes, gone, no token). The eight-node, shaped-link version is test/peers-netns.test.ts.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, test, type TestContext } from 'node:test';
import { fetcherFor, rankPeers } from '../src/peers/index.js';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.js';
import { startMirror, type MirrorHandle } from './helpers/mirror.js';
import { freePort, requirePeers } from './helpers/peers.js';
import { pushBlob, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TOKEN = 'peer-token-for-tests-0123456789';
const REPO = 'team/app';
const MiB = 1024 * 1024;

interface Cluster {
  registry: RegistryPeer;
  proxy: FaultProxy;
  nodes: MirrorHandle[];
  urls: string[];
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/**
 * `n` mirrors that know each other as peers, all mirroring one docker-registry through a fault
 * proxy (to hold or break the upstream's bodies). `selfUrl(i, port)` lets a test put something in
 * front of a node's peer port.
 */
async function startCluster(
  t: TestContext,
  n: number,
  opts: {
    holdAfterBytes?: number;
    selfUrl?: (i: number, port: number) => Promise<string>;
    /** More of the `peers` configuration (e.g. the slow-peer floor). */
    peers?: Record<string, unknown>;
    /** More of each mirror's configuration file (e.g. `rangeAheadBytes`). */
    file?: Record<string, unknown>;
  } = {},
): Promise<Cluster | undefined> {
  if (!requirePeers(t, 'docker-registry')) return undefined;
  const registry = await startRegistry();
  cleanups.push(() => registry.stop());
  const proxy = await startFaultProxy(
    registry.url,
    opts.holdAfterBytes !== undefined ? { holdBlobAfterBytes: opts.holdAfterBytes } : {},
  );
  cleanups.push(() => proxy.close());
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const urls = await Promise.all(
    ports.map((p, i) => (opts.selfUrl ? opts.selfUrl(i, p) : Promise.resolve(`http://127.0.0.1:${p}`))),
  );
  const nodes = await Promise.all(
    ports.map((port, i) =>
      startMirror(
        { reg: proxy.url },
        {
          defaultUpstream: 'reg',
          file: {
            ...opts.file,
            listen: `127.0.0.1:${port}`,
            peers: { self: urls[i], urls, token: TOKEN, stallSeconds: 2, ...opts.peers },
          },
        },
      ),
    ),
  );
  for (const node of nodes) cleanups.push(() => node.close());
  return { registry, proxy, nodes, urls };
}

/**
 * A cluster whose nodes at `fronted` are reached by their peers through a fault proxy each (their
 * own upstream reads are not), so that a test can make what one node sends its peers slow or wrong
 * (`throttlePeer`, or the proxy's `inject`). `fronts.get(i)` is node i's proxy.
 */
async function startFrontedCluster(
  t: TestContext,
  n: number,
  fronted: readonly number[],
  opts: Omit<Parameters<typeof startCluster>[2] & object, 'selfUrl'> = {},
): Promise<(Cluster & { fronts: Map<number, FaultProxy> }) | undefined> {
  const fronts = new Map<number, FaultProxy>();
  const c = await startCluster(t, n, {
    ...opts,
    selfUrl: async (i, port) => {
      if (!fronted.includes(i)) return `http://127.0.0.1:${port}`;
      const front = await startFaultProxy(`http://127.0.0.1:${port}`);
      cleanups.push(() => front.close());
      fronts.set(i, front);
      return front.url;
    },
  });
  return c && { ...c, fronts };
}

/** The next `count` peer blob answers through `front` arrive at `bytesPerSecond`. */
function throttlePeer(front: FaultProxy | undefined, bytesPerSecond: number, count = 1): void {
  assert.ok(front, 'that node has no proxy in front of it');
  front.inject({ pathIncludes: '/peer/v1/blobs/' }, { kind: 'throttle', bytesPerSecond }, count);
}

async function getBlob(node: MirrorHandle, digest: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${node.url}/v2/${REPO}/blobs/${digest}`, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, body, sha: `sha256:${createHash('sha256').update(body).digest('hex')}` };
}

function upstreamBlobGets(c: Cluster, digest: string) {
  return c.registry.accessLog().filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));
}

async function sum(
  nodes: MirrorHandle[],
  metric: string,
  labels: Record<string, string> = {},
): Promise<number> {
  let total = 0;
  for (const n of nodes) total += await n.metric(metric, labels);
  return total;
}

test('four nodes asking at once for a cold blob: one upstream GET, relayed node to node, every copy verified', async (t) => {
  const c = await startCluster(t, 4, { holdAfterBytes: 1 * MiB });
  if (!c) return;
  const data = randomBytes(6 * MiB);
  const digest = await pushBlob(c.registry, REPO, data);
  const fetcher = c.nodes[c.urls.indexOf(fetcherFor(digest, c.urls) as string)] as MirrorHandle;
  // The fetcher's client first, so the upstream body is held part-way while the others arrive.
  const first = getBlob(fetcher, digest);
  await c.proxy.held();
  const others = c.nodes.filter((n) => n !== fetcher).map((n) => getBlob(n, digest));
  // Every other node is receiving (from the fetcher or a relay) before the upstream goes on.
  await waitFor(async () => (await sum(c.nodes, 'hoist_mirror_inflight_fetches')) === 4);
  c.proxy.release();
  const results = await Promise.all([first, ...others]);
  const want = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.sha, want);
  }
  await c.registry.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));
  assert.equal(upstreamBlobGets(c, digest).length, 1, 'the upstream sent the blob once for the cluster');
  assert.equal(c.proxy.blobGets.length, 1);
  assert.equal(await sum(c.nodes, 'hoist_mirror_fetched_bytes_total', { source: 'upstream' }), data.length);
  assert.equal(await sum(c.nodes, 'hoist_mirror_fetched_bytes_total', { source: 'peer' }), 3 * data.length);
  // Fanout 1: the fetcher served one peer and sent the other two down the chain.
  assert.equal(await fetcher.metric('hoist_mirror_peer_requests_total', { kind: 'served' }), 1);
  assert.equal(await fetcher.metric('hoist_mirror_peer_requests_total', { kind: 'relayed' }), 2);
  const served = await sum(
    c.nodes.filter((n) => n !== fetcher),
    'hoist_mirror_peer_requests_total',
    { kind: 'served' },
  );
  assert.equal(served, 2, 'two relays each served the next node from their partial file');
});

test('a stored blob is read from the peer that holds it, ranges too (lazy pulling), never from the upstream again', async (t) => {
  const c = await startCluster(t, 3);
  if (!c) return;
  const data = randomBytes(3 * MiB + 17);
  const digest = await pushBlob(c.registry, REPO, data);
  const [a, b, d] = c.nodes as [MirrorHandle, MirrorHandle, MirrorHandle];
  assert.equal((await getBlob(a, digest)).status, 200);
  await c.registry.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));
  const ranged = await fetch(`${b.url}/v2/${REPO}/blobs/${digest}`, { headers: { range: 'bytes=1048576-' } });
  assert.equal(ranged.status, 206);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), data.subarray(1048576));
  const whole = await getBlob(d, digest);
  assert.equal(whole.status, 200);
  assert.deepEqual(whole.body, data);
  assert.equal(upstreamBlobGets(c, digest).length, 1);
  assert.equal(await sum(c.nodes, 'hoist_mirror_fetched_bytes_total', { source: 'upstream' }), data.length);
});

test('the fetcher killed mid-transfer: the receiving node goes on from the byte it has, its client sees one verified body', async (t) => {
  const c = await startCluster(t, 3, { holdAfterBytes: 2 * MiB });
  if (!c) return;
  const data = randomBytes(5 * MiB);
  const digest = await pushBlob(c.registry, REPO, data);
  const ranked = rankPeers(digest, c.urls);
  const fetcher = c.nodes[c.urls.indexOf(ranked[0] as string)] as MirrorHandle;
  const asker = c.nodes[c.urls.indexOf(ranked[2] as string)] as MirrorHandle;
  const pending = getBlob(asker, digest);
  await c.proxy.held();
  // The asker has the fetcher's first bytes; then the fetcher dies.
  await waitFor(async () => (await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' })) > 0);
  const received = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' });
  c.proxy.release();
  await fetcher.mirror.close(0);
  const r = await pending;
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, data, 'one continuous body with every byte right');
  // It resumed with a range from where it was, not from byte 0.
  const resumed = c.proxy.requests.some((q) => /\/blobs\//.test(q.path) && q.range.startsWith('bytes='));
  const fromPeer = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' });
  const fromUpstream = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' });
  assert.ok(received > 0);
  assert.equal(fromPeer + fromUpstream, data.length, `peer ${fromPeer} + upstream ${fromUpstream} bytes`);
  assert.ok(
    resumed || fromPeer > received,
    'the rest came as a ranged read, from the next peer or the upstream',
  );
  assert.ok(
    (await asker.metric('hoist_mirror_peer_switches_total', { reason: 'broken' })) >= 1,
    'counted as a switch because the body broke',
  );
});

test('a peer that flips a byte: the digest catches it, nothing is stored, the peer is avoided and the retry is verified', async (t) => {
  let digest = '';
  // Node 0 is reached by its peers through a proxy that will corrupt what it sends them.
  const c = await startFrontedCluster(t, 3, [0]);
  if (!c) return;
  const liar = c.nodes[0] as MirrorHandle;
  const front = c.fronts.get(0) as FaultProxy;
  // A blob whose fetcher is the liar, so the others ask it first.
  let data = Buffer.alloc(0);
  for (let i = 0; i < 64; i++) {
    data = randomBytes(2 * MiB + i);
    digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (fetcherFor(digest, c.urls) === c.urls[0]) break;
  }
  assert.equal(fetcherFor(digest, c.urls), c.urls[0]);
  await pushBlob(c.registry, REPO, data);
  assert.equal((await getBlob(liar, digest)).sha, digest, 'the liar itself holds good bytes');
  front.inject({ pathIncludes: '/peer/v1/blobs/' }, { kind: 'corrupt', at: MiB + 5 });
  const victim = c.nodes[1] as MirrorHandle;
  // The victim's client gets an aborted body, or an error status if the check failed before its
  // answer started; never a clean 200 with those bytes.
  let outcome: string;
  try {
    const res = await fetch(`${victim.url}/v2/${REPO}/blobs/${digest}`);
    const body = Buffer.from(await res.arrayBuffer());
    outcome = `status ${res.status}, sha256:${createHash('sha256').update(body).digest('hex')}`;
  } catch (err) {
    outcome = `aborted: ${String(err)}`;
  }
  assert.ok(!outcome.startsWith('status 200'), outcome);
  await waitFor(async () => (await victim.metric('hoist_mirror_verify_failures_total')) >= 1);
  // Blamed once the victim has asked its senders for their own verdicts (src/peers/verdicts.ts).
  await waitFor(
    async () => (await victim.metric('hoist_mirror_peer_errors_total', { reason: 'digest' })) >= 1,
  );
  // The client retries (containerd does): the liar is quarantined, the bytes come from elsewhere.
  const retry = await getBlob(victim, digest);
  assert.equal(retry.status, 200);
  assert.equal(retry.sha, digest);
  const status = (await (
    await fetch(`${victim.url}/peer/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).json()) as { members: Array<{ url: string; state: string }> };
  assert.equal(status.members.find((m) => m.url === c.urls[0])?.state, 'quarantined');
});

test('an honest relay below a byte-flipping peer is not blamed: the node below it quarantines only the liar, and the blob leaves the upstream twice, not three times', async (t) => {
  // Node 0 (the liar) is reached by its peers through a proxy that flips a byte of what it sends;
  // the upstream's first whole body is held at 2 MiB, past the flipped byte, while the others ask.
  const c = await startFrontedCluster(t, 3, [0], { holdAfterBytes: 2 * MiB });
  if (!c) return;
  const [liar, relay, below] = c.nodes as [MirrorHandle, MirrorHandle, MirrorHandle];
  const [liarUrl, relayUrl] = c.urls as [string, string];
  // A blob ranked liar, relay, below: the liar fetches it, and once it is out, the relay does.
  let data = Buffer.alloc(0);
  let digest = '';
  for (let i = 0; i < 256; i++) {
    data = randomBytes(3 * MiB + i);
    digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (rankPeers(digest, c.urls).join() === c.urls.join()) break;
  }
  assert.deepEqual(rankPeers(digest, c.urls), c.urls);
  await pushBlob(c.registry, REPO, data);
  const flipAt = MiB + 5;
  (c.fronts.get(0) as FaultProxy).inject(
    { pathIncludes: '/peer/v1/blobs/' },
    { kind: 'corrupt', at: flipAt },
  );
  const attempt = async (node: MirrorHandle) => {
    try {
      const res = await fetch(`${node.url}/v2/${REPO}/blobs/${digest}`);
      const body = Buffer.from(await res.arrayBuffer());
      return `status ${res.status}, sha256:${createHash('sha256').update(body).digest('hex')}`;
    } catch (err) {
      return `aborted: ${String(err)}`;
    }
  };
  // The relay asks the liar, its fetcher, which serves it (fanout 1) and fetches from the upstream.
  const relayFirst = attempt(relay);
  await c.proxy.held();
  await waitFor(async () => (await relay.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' })) > 0);
  // The node below asks the liar too, is sent to the relay, and receives the flipped byte from it.
  const belowFirst = attempt(below);
  await waitFor(
    async () => (await below.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' })) > flipAt,
  );
  assert.equal(await relay.metric('hoist_mirror_peer_requests_total', { kind: 'served' }), 1);
  assert.equal(await liar.metric('hoist_mirror_peer_requests_total', { kind: 'relayed' }), 1);
  c.proxy.release();
  for (const outcome of await Promise.all([relayFirst, belowFirst]))
    assert.ok(!outcome.startsWith('status 200'), outcome);
  // The relay's own check failed and aborted the body below; the node below resumed, and its own
  // check failed too. It asked the relay, which had rejected the blob itself: the liar is blamed.
  await waitFor(async () => (await below.metric('hoist_mirror_verify_failures_total')) >= 1);
  const view = async (node: MirrorHandle) => {
    const res = await fetch(`${node.url}/peer/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const status = (await res.json()) as { members: Array<{ url: string; state: string }> };
    return (url: string) => status.members.find((m) => m.url === url)?.state;
  };
  await waitFor(async () => (await view(below))(liarUrl) === 'quarantined');
  assert.equal((await view(below))(relayUrl), 'up', 'the honest relay is not quarantined below it');
  assert.equal((await view(relay))(liarUrl), 'quarantined');
  assert.equal(await below.metric('hoist_mirror_peer_errors_total', { peer: relayUrl, reason: 'digest' }), 0);
  assert.equal(await below.metric('hoist_mirror_peer_errors_total', { peer: liarUrl, reason: 'digest' }), 1);
  // The clients retry (containerd does): the relay, next in the ranking, fetches the blob again,
  // and the node below gets it from the relay rather than fetching a third copy itself.
  const again = await getBlob(relay, digest);
  assert.equal(again.sha, digest);
  const last = await getBlob(below, digest);
  assert.equal(last.sha, digest);
  assert.equal(
    upstreamBlobGets(c, digest).length,
    2,
    "the liar's GET and the relay's, none by the node below",
  );
  assert.equal(await below.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }), 0);
});

/** A random blob of `size` (+ up to 63 bytes) whose fetcher among `urls` is `urls[want]`. */
function blobFetchedBy(urls: string[], want: number, size: number): { data: Buffer; digest: string } {
  for (let i = 0; i < 256; i++) {
    const data = randomBytes(size + (i % 64));
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (fetcherFor(digest, urls) === urls[want]) return { data, digest };
  }
  throw new Error('no blob found for that fetcher');
}

// Small windows and floors so that the rule acts within a test; the rates are outcomes asserted
// through counters, never timings.
const SLOW = { minBytesPerSecond: 1024 * 1024, slowWindowSeconds: 0.4 };

test('a peer that holds the whole blob but sends too slowly is left for the next source, from the byte reached; the client sees one verified body', async (t) => {
  // Node 0 is reached by its peers through a proxy that will send slowly.
  const c = await startFrontedCluster(t, 2, [0], { peers: SLOW });
  if (!c) return;
  const [holder, asker] = c.nodes as [MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  const { data, digest } = blobFetchedBy(c.urls, 0, 3 * MiB);
  await pushBlob(c.registry, REPO, data);
  assert.equal((await getBlob(holder, digest)).sha, digest, 'the holder stores the blob');
  throttlePeer(front, 64 * 1024);
  const r = await getBlob(asker, digest);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, data, 'one continuous body with every byte right');
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total', { reason: 'slow' }), 1);
  assert.equal(
    await asker.metric('hoist_mirror_peer_errors_total', { peer: c.urls[0] as string, reason: 'slow' }),
    1,
  );
  // It went on from the byte it had: the rest was a ranged read, here from the upstream (the
  // only other source), and the two parts add up to the blob.
  const fromPeer = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' });
  const fromUpstream = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' });
  assert.ok(fromPeer > 0 && fromPeer < data.length, `${fromPeer} bytes from the slow peer`);
  assert.equal(fromPeer + fromUpstream, data.length);
  assert.ok(
    c.proxy.blobGets.some((g) => g.range === `bytes=${fromPeer}-`),
    `a ranged upstream read from ${fromPeer}: ${JSON.stringify(c.proxy.blobGets)}`,
  );
  // The slow peer is avoided for a while, for every blob, and the view says why.
  const view = asker.mirror.peers?.status();
  const member = view?.members.find((m) => m.url === c.urls[0]);
  assert.equal(member?.state, 'slow');
  assert.match(member?.reason ?? '', /held the whole blob but sent \d+ B\/s/);
  assert.equal((await getBlob(asker, digest)).sha, digest, 'a later read is served from the store');
});

/** A random blob of about `size` whose ranking among `urls` is exactly `order` (indexes into urls). */
function blobRanked(urls: string[], order: number[], size: number): { data: Buffer; digest: string } {
  const want = order.map((i) => urls[i]);
  for (let i = 0; i < 1024; i++) {
    const data = randomBytes(size + (i % 64));
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (JSON.stringify(rankPeers(digest, urls)) === JSON.stringify(want)) return { data, digest };
  }
  throw new Error('no blob found for that ranking');
}

test('after a slow holder, the other peers are asked only as relays, and the verdict holds for that blob alone', async (t) => {
  // Node 0 is reached by its peers through a proxy that will send slowly.
  const c = await startFrontedCluster(t, 3, [0], { peers: SLOW });
  if (!c) return;
  const [holder, other, asker] = c.nodes as [MirrorHandle, MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  // Both blobs rank the holder first and the other node above the asker, so a fetcher-style ask
  // after the holder would go to the other node.
  const slowBlob = blobRanked(c.urls, [0, 1, 2], 2 * MiB);
  const nextBlob = blobRanked(c.urls, [0, 1, 2], MiB);
  await pushBlob(c.registry, REPO, slowBlob.data);
  await pushBlob(c.registry, REPO, nextBlob.data);
  assert.equal((await getBlob(holder, slowBlob.digest)).sha, slowBlob.digest);
  throttlePeer(front, 64 * 1024);
  const r = await getBlob(asker, slowBlob.digest);
  assert.equal(r.sha, slowBlob.digest, 'one continuous verified body');
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total', { reason: 'slow' }), 1);
  // The other node does not hold it: asked as a relay, it said so, and fetched nothing. The rest
  // came from the upstream as one ranged read.
  assert.equal(await other.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }), 0);
  const fromPeer = await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' });
  const gets = c.proxy.blobGets.filter((g) => g.path.endsWith(slowBlob.digest));
  assert.deepEqual(
    gets.map((g) => g.range),
    ['', `bytes=${fromPeer}-`],
    "the holder's own GET, then the asker's ranged GET of the rest",
  );
  // Another blob whose fetcher is the same peer still goes to it: the verdict was about one body.
  assert.equal((await getBlob(asker, nextBlob.digest)).sha, nextBlob.digest);
  assert.equal(await other.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }), 0);
  assert.equal(
    await holder.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }),
    slowBlob.data.length + nextBlob.data.length,
    'the holder fetched the next blob, as its fetcher',
  );
  assert.equal(c.proxy.blobGets.filter((g) => g.path.endsWith(nextBlob.digest)).length, 1);
});

test('a lazy-pull range read far ahead, from a slow holder, is not judged: it has no resume, so the client gets its bytes', async (t) => {
  // Node 0 is reached by its peers through a proxy that will send slowly.
  const c = await startFrontedCluster(t, 2, [0], { peers: SLOW, file: { rangeAheadBytes: 64 * 1024 } });
  if (!c) return;
  const [holder, asker] = c.nodes as [MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  const { data, digest } = blobFetchedBy(c.urls, 0, 2 * MiB);
  await pushBlob(c.registry, REPO, data);
  assert.equal((await getBlob(holder, digest)).sha, digest);
  // Both peer reads are slow: the asker's download of the whole blob, and the range it reads
  // ahead of that download for its lazy-pulling client.
  throttlePeer(front, 64 * 1024, 2);
  const start = data.length - 96 * 1024;
  const res = await fetch(`${asker.url}/v2/${REPO}/blobs/${digest}`, {
    headers: { range: `bytes=${start}-` },
  });
  assert.equal(res.status, 206);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), data.subarray(start), 'the range arrived whole');
  assert.ok(
    front.requests.some((q) => q.path.includes('/peer/v1/blobs/') && q.range.startsWith(`bytes=${start}-`)),
    `the range was read from the slow holder: ${JSON.stringify(front.requests)}`,
  );
  // Only the download, which can resume, was left for being slow.
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total', { reason: 'slow' }), 1);
  assert.equal(await asker.metric('hoist_mirror_peer_errors_total', { reason: 'slow' }), 1);
  assert.equal((await getBlob(asker, digest)).sha, digest, 'the download finished verified');
});

test('two holders equally slow at once: the common factor is this node, so neither is left', async (t) => {
  // Nodes 0 and 1 are reached by their peers through proxies that will send slowly. A longer
  // window than SLOW's: the two bodies must both be running when the first is judged.
  const c = await startFrontedCluster(t, 3, [0, 1], { peers: { ...SLOW, slowWindowSeconds: 1 } });
  if (!c) return;
  const asker = c.nodes[2] as MirrorHandle;
  const blobs = [blobFetchedBy(c.urls, 0, 640 * 1024), blobFetchedBy(c.urls, 1, 640 * 1024)];
  for (const [i, b] of blobs.entries()) {
    await pushBlob(c.registry, REPO, b.data);
    assert.equal((await getBlob(c.nodes[i] as MirrorHandle, b.digest)).sha, b.digest);
    throttlePeer(c.fronts.get(i), 256 * 1024);
  }
  // Both layers at once, as a pull does: each body runs below the floor, and so does the other.
  const results = await Promise.all(blobs.map((b) => getBlob(asker, b.digest)));
  for (const [i, r] of results.entries()) assert.equal(r.sha, blobs[i]?.digest);
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total'), 0, 'neither was left');
  const total = blobs.reduce((n, b) => n + b.data.length, 0);
  assert.equal(await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' }), total);
  assert.equal(await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }), 0);
});

for (const [how, pullOwn] of [
  ['its own client', (asker: MirrorHandle, _holder: MirrorHandle, digest: string) => getBlob(asker, digest)],
  [
    "the other node, as that blob's fetcher",
    (_asker: MirrorHandle, holder: MirrorHandle, digest: string) => getBlob(holder, digest),
  ],
] as const) {
  test(`two nodes, one peer: a slow holder is kept while this node's own upstream download (for ${how}) is as slow, so the upstream sends each blob once`, async (t) => {
    // One peer: no other peer's body to compare with, only this node's upstream download. A
    // longer window than SLOW's, so that the upstream body surely runs when the peer's is judged.
    const c = await startFrontedCluster(t, 2, [0], { peers: { ...SLOW, slowWindowSeconds: 1 } });
    if (!c) return;
    const [holder, asker] = c.nodes as [MirrorHandle, MirrorHandle];
    const held = blobFetchedBy(c.urls, 0, 640 * 1024);
    const own = blobFetchedBy(c.urls, 1, 1280 * 1024);
    await pushBlob(c.registry, REPO, held.data);
    await pushBlob(c.registry, REPO, own.data);
    assert.equal((await getBlob(holder, held.digest)).sha, held.digest, 'the holder stores its blob');
    // The asker's own upstream download and the holder's answer both run at a quarter of the
    // floor, as when the asker's downlink or CPU is the bottleneck.
    c.proxy.inject('blob', { kind: 'throttle', bytesPerSecond: 256 * 1024 });
    throttlePeer(c.fronts.get(0), 256 * 1024);
    const ownPull = pullOwn(asker, holder, own.digest);
    await waitFor(
      async () => (await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' })) > 0,
    );
    const r = await getBlob(asker, held.digest);
    assert.equal(r.sha, held.digest);
    assert.equal((await ownPull).sha, own.digest);
    assert.equal(await asker.metric('hoist_mirror_peer_switches_total'), 0, 'the holder was not left');
    assert.equal(
      await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' }),
      held.data.length,
    );
    for (const b of [held, own])
      assert.equal(c.proxy.blobGets.filter((g) => g.path.endsWith(b.digest)).length, 1, b.digest);
  });
}

test('a slow peer beats none: with the upstream failing, the download goes back to the peer it left for slowness', async (t) => {
  // Node 0 is reached by its peers through a proxy that will send slowly.
  const c = await startFrontedCluster(t, 2, [0], { peers: SLOW });
  if (!c) return;
  const [holder, asker] = c.nodes as [MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  const { data, digest } = blobFetchedBy(c.urls, 0, 2 * MiB);
  await pushBlob(c.registry, REPO, data);
  assert.equal((await getBlob(holder, digest)).sha, digest);
  // The holder's first answer is slow; then the upstream fails every blob read.
  throttlePeer(front, 64 * 1024);
  c.proxy.inject('blob', { kind: 'status', status: 503 }, 50);
  const r = await getBlob(asker, digest);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, data);
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total', { reason: 'slow' }), 1);
  assert.ok(
    c.proxy.requests.some((q) => q.fault === 'status'),
    'the upstream was tried and failed',
  );
  assert.equal(await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' }), data.length);
  assert.equal(front.requests.filter((q) => q.path.includes('/peer/v1/blobs/')).length, 2);
});

test('a relay that is slow only because its own source is slow is kept: the upstream sends the blob once', async (t) => {
  const c = await startCluster(t, 2, { peers: SLOW });
  if (!c) return;
  const [fetcher, asker] = c.nodes as [MirrorHandle, MirrorHandle];
  const { data, digest } = blobFetchedBy(c.urls, 0, 2 * MiB);
  await pushBlob(c.registry, REPO, data);
  // The upstream sends at a quarter of the floor: so does the fetcher relaying its download.
  c.proxy.inject('blob', { kind: 'throttle', bytesPerSecond: 256 * 1024 });
  const r = await getBlob(asker, digest);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, data);
  await c.registry.waitForAccess((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));
  assert.equal(upstreamBlobGets(c, digest).length, 1, 'the asker did not leave for the upstream');
  assert.equal(c.proxy.blobGets.length, 1);
  assert.equal(await asker.metric('hoist_mirror_peer_switches_total'), 0);
  assert.equal(await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'peer' }), data.length);
  assert.equal(await fetcher.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }), data.length);
  assert.equal(asker.mirror.peers?.status().members.find((m) => m.url === c.urls[0])?.state, 'up');
});

test('a peer that is sending us bytes and drops one request (a reset connection) is asked again, not left for the upstream: each blob leaves the upstream once', async (t) => {
  const c = await startFrontedCluster(t, 2, [0]);
  if (!c) return;
  const [holder, asker] = c.nodes as [MirrorHandle, MirrorHandle];
  const front = c.fronts.get(0) as FaultProxy;
  const first = blobFetchedBy(c.urls, 0, MiB);
  const second = blobFetchedBy(c.urls, 0, MiB);
  await pushBlob(c.registry, REPO, first.data);
  await pushBlob(c.registry, REPO, second.data);
  // The holder has just sent the asker a blob: it is alive.
  assert.equal((await getBlob(asker, first.digest)).sha, first.digest);
  // Its next answer to the asker is lost: the connection drops before any byte, as a reused
  // keep-alive connection or a lost SYN on a busy link can make it.
  front.inject({ pathIncludes: '/peer/v1/blobs/' }, { kind: 'reset' });
  assert.equal((await getBlob(asker, second.digest)).sha, second.digest);
  assert.ok(
    front.requests.some((q) => q.fault === 'reset'),
    'the request was dropped once',
  );
  assert.equal(
    await asker.metric('hoist_mirror_fetched_bytes_total', { source: 'upstream' }),
    0,
    'the asker fetched nothing from the upstream',
  );
  assert.equal(asker.mirror.peers?.status().members.find((m) => m.url === c.urls[0])?.state, 'up');
  // The holder is the fetcher of both: its own client finds them stored, so each blob left the
  // upstream once for the cluster.
  assert.equal((await getBlob(holder, second.digest)).sha, second.digest);
  for (const b of [first, second])
    assert.equal(c.proxy.blobGets.filter((g) => g.path.endsWith(b.digest)).length, 1, b.digest);
});

test('a dead peer costs a refused connection, not a timeout; a peer that left is not asked', async (t) => {
  const c = await startCluster(t, 3);
  if (!c) return;
  const data = randomBytes(MiB);
  const digest = await pushBlob(c.registry, REPO, data);
  const ranked = rankPeers(digest, c.urls);
  const fetcher = c.nodes[c.urls.indexOf(ranked[0] as string)] as MirrorHandle;
  const asker = c.nodes[c.urls.indexOf(ranked[2] as string)] as MirrorHandle;
  await fetcher.mirror.close(0);
  const r = await getBlob(asker, digest);
  assert.equal(r.sha, `sha256:${createHash('sha256').update(data).digest('hex')}`);
  assert.ok((await asker.metric('hoist_mirror_peer_errors_total', { reason: 'PEER_UNREACHABLE' })) >= 1);
  const status = asker.mirror.peers?.status();
  assert.equal(status?.members.find((m) => m.url === ranked[0])?.state, 'down');
  // Membership changes apply at once: drop the dead node, and it is no longer a member.
  asker.mirror.peers?.membership.set(
    'static',
    c.urls.filter((u) => u !== ranked[0]),
  );
  assert.deepEqual(asker.mirror.peers?.membership.members(), [ranked[1]].sort());
});

test('peer requests need the cluster token; the client API is unchanged', async (t) => {
  const c = await startCluster(t, 2);
  if (!c) return;
  const data = randomBytes(1000);
  const digest = await pushBlob(c.registry, REPO, data);
  const node = c.nodes[0] as MirrorHandle;
  const path = `${node.url}/peer/v1/blobs/${digest}?ns=reg&repo=${REPO}`;
  const peerHeader = { 'x-hoist-peer': c.urls[1] as string };
  for (const authorization of [undefined, 'Bearer wrong-token-wrong-token', `Basic ${TOKEN}`]) {
    const res = await fetch(path, {
      headers: { ...peerHeader, ...(authorization ? { authorization } : {}) },
    });
    assert.equal(res.status, 403, String(authorization));
    const body = (await res.json()) as { errors: Array<{ code: string }> };
    assert.equal(body.errors[0]?.code, 'DENIED');
  }
  assert.equal(upstreamBlobGets(c, digest).length, 0, 'a refused peer request fetched nothing');
  const ok = await fetch(path, { headers: { ...peerHeader, authorization: `Bearer ${TOKEN}` } });
  assert.equal(ok.status, 200);
  assert.deepEqual(Buffer.from(await ok.arrayBuffer()), data);
  // As a relay, a node that holds nothing says so at once and fetches nothing.
  const other = randomBytes(500);
  const otherDigest = await pushBlob(c.registry, REPO, other);
  const relay = await fetch(`${node.url}/peer/v1/blobs/${otherDigest}?ns=reg&repo=${REPO}`, {
    headers: { ...peerHeader, authorization: `Bearer ${TOKEN}`, 'x-hoist-relay': '1' },
  });
  assert.equal(relay.status, 404);
  assert.equal(upstreamBlobGets(c, otherDigest).length, 0);
  assert.equal((await getBlob(node, otherDigest)).status, 200);
});

test('X-Hoist-Complete marks a 200/206 served whole from the store, never an error answer', async (t) => {
  const c = await startCluster(t, 2);
  if (!c) return;
  const data = randomBytes(1000);
  const digest = await pushBlob(c.registry, REPO, data);
  const node = c.nodes[0] as MirrorHandle;
  assert.equal((await getBlob(node, digest)).status, 200, 'stored on the node');
  const ask = (range: string, relay: boolean) =>
    fetch(`${node.url}/peer/v1/blobs/${digest}?ns=reg&repo=${REPO}`, {
      headers: {
        authorization: `Bearer ${TOKEN}`,
        'x-hoist-peer': c.urls[1] as string,
        range,
        ...(relay ? { 'x-hoist-relay': '1' } : {}),
      },
    });
  for (const relay of [false, true]) {
    const ranged = await ask('bytes=10-', relay);
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('x-hoist-complete'), '1');
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), data.subarray(10));
    const outside = await ask('bytes=5000-', relay);
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get('x-hoist-complete'), null, 'an error answer claims nothing');
    await outside.arrayBuffer();
  }
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
