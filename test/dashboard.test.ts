// The controller's dashboard against the real kube-apiserver: a PrePull targets three nodes, the
// controller writes their NodePulls, the test plays the agents; GET /api/v1/state shows the
// nodes × images matrix as the API server holds it, the SSE stream delivers each change without a
// new request, a standby replica serves the same state, and every non-GET method is refused. Node
// caches come from mirrors the controller reads (EndpointSlices) or, for a mirror on the node's
// 127.0.0.1 that it cannot read, from a real agent's NodePull status.mirror.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startMirrorCache, type DashboardState } from '../src/dashboard/index.js';
import { KubeClient, loadKubeConfig } from '../src/kube/index.js';
import { parseMirrorCacheFigures } from '../src/node/index.js';
import type { NodePull } from '../src/prepull/index.js';
import {
  SYSTEM,
  createPrePull,
  digestImage,
  eventually,
  makeNode,
  nodePulls,
  prepareCluster,
  report,
  SseClient,
  startMirroredNode,
  startReplica,
  type ControllerReplica,
} from './helpers/dashboard-cluster.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { skopeoCopyToDir } from './helpers/images.js';
import { shareKubeApiServer } from './helpers/kube.js';
import { startMirror } from './helpers/mirror.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { run } from './helpers/process.js';

const TIMEOUT = { timeout: 240_000 };
const KUBECTL_HOIST = fileURLToPath(new URL('../bin/kubectl-hoist.js', import.meta.url));

async function state(url: string, query = ''): Promise<DashboardState> {
  const res = await fetch(`${url}/api/v1/state${query}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json');
  return (await res.json()) as DashboardState;
}

const phases = (s: DashboardState) =>
  Object.fromEntries(s.matrix.rows.map((r) => [r.node, r.cells.map((c) => c.phase).join(',')]));

describe('dashboard against kube-apiserver', TIMEOUT, () => {
  const replicas: ControllerReplica[] = [];
  // Registered before the API server's own after(), so the replicas stop while it still answers.
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
  });
  const kube = shareKubeApiServer();
  let kubeconfig: string | undefined;

  before(async () => {
    try {
      kube();
    } catch {
      return; // peers not built: the test skips through requireGoPeer
    }
    kubeconfig = await prepareCluster(kube());
  });

  it('reflects a PrePull in progress in /api/v1/state and pushes changes over SSE', TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || kubeconfig === undefined) return;
    const api = kube();
    for (const n of ['gpu-1', 'gpu-2', 'gpu-3']) await makeNode(api, n, { pool: 'gpu' });
    // Heartbeats (which also re-send a changed state) far apart: only a change may bring an event.
    const leader = await startReplica(kubeconfig, 'replica-a', { events: { heartbeatMs: 600_000 } });
    replicas.push(leader);
    await eventually('replica-a leads', async () => (leader.controller.isLeader ? true : undefined));
    const standby = await startReplica(kubeconfig, 'replica-b');
    replicas.push(standby);

    const images = [digestImage('ml/model', 'a'), digestImage('ml/tools', 'b')];
    await createPrePull(api, 'gpu', images, 'gpu');
    // Every node has a NodePull from the start (empty while nothing is wanted there): wait for the work.
    const nps = await eventually('three NodePulls with work', async () => {
      const l = await nodePulls(api);
      return l.length === 3 && l.every((n) => n.spec.images.length === 2) ? l : undefined;
    });
    const specImages = nps[0]!.spec.images.map((e) => e.image).sort();

    const first = await eventually('state shows the three nodes', async () => {
      const s = await state(leader.url);
      return s.matrix.rows.length === 3 ? s : undefined;
    });
    assert.deepEqual(first.matrix.images, specImages);
    assert.deepEqual(phases(first), {
      'gpu-1': 'Pending,Pending',
      'gpu-2': 'Pending,Pending',
      'gpu-3': 'Pending,Pending',
    });
    assert.deepEqual(first.replica, { identity: 'replica-a', leader: true, synced: true });
    assert.equal(first.prePulls[0]?.name, 'gpu');
    assert.equal(first.cache, null, 'no cache source: no data yet');
    assert.equal(first.slowest, null, 'no telemetry source: no data yet');

    const sse = await SseClient.open(`${leader.url}/api/v1/events`);
    t.after(() => sse.close());
    const initial = await sse.waitFor('first state event', (e) => (e.event === 'state' ? e : undefined));
    assert.equal(phases(JSON.parse(initial.data) as DashboardState)['gpu-1'], 'Pending,Pending');
    const seen = sse.events.length;

    // The agent on gpu-1 pulls one image and fails the other; gpu-2 starts.
    await report(api, 'gpu-1', (image) =>
      image === specImages[0]
        ? { phase: 'Succeeded' }
        : { phase: 'Failed', reason: 'ErrImagePull', message: 'manifest unknown' },
    );
    await report(api, 'gpu-2', () => ({ phase: 'Pulling' }));
    const pushed = await sse.waitFor(
      'an SSE state with gpu-1 done and gpu-2 pulling',
      (e) => {
        const s = JSON.parse(e.data) as DashboardState;
        const p = phases(s);
        return p['gpu-1'] === 'Succeeded,Failed' && p['gpu-2'] === 'Pulling,Pulling' ? s : undefined;
      },
      seen,
    );
    assert.deepEqual(pushed.matrix.rows[0]!.cells[1], {
      phase: 'Failed',
      reason: 'ErrImagePull',
      message: 'manifest unknown',
      attempts: 1,
    });
    assert.equal(pushed.counts.failed, 1);
    assert.equal(pushed.counts.succeeded, 1);
    assert.equal(pushed.counts.pulling, 2);

    // A standby replica (no controller informers of its own) serves the same matrix.
    const fromStandby = await eventually('standby shows gpu-1 done', async () => {
      const s = await state(standby.url);
      return phases(s)['gpu-1'] === 'Succeeded,Failed' ? s : undefined;
    });
    assert.equal(fromStandby.replica.leader, false);
    assert.deepEqual(phases(fromStandby), phases(pushed));

    // The node filter narrows the rows and says how many matched.
    const filtered = await state(leader.url, '?node=GPU-2');
    assert.deepEqual(
      filtered.matrix.rows.map((r) => r.node),
      ['gpu-2'],
    );
    assert.equal(filtered.matrix.matchingNodes, 1);
  });

  it(
    'finds node mirrors through EndpointSlices (the RBAC of rbac.ts) and shows their caches',
    TIMEOUT,
    async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || kubeconfig === undefined) return;
      const api = kube();
      const mirror = await startMirror({ 'registry.example': 'http://127.0.0.1:9' });
      t.after(() => mirror.close());
      const port = Number(new URL(mirror.url).port);
      // Ready and not-ready endpoints of the mirrors' Service; only the ready one is read. The API
      // server refuses loopback endpoint addresses, so pod addresses are mapped to the mirror here.
      const created = await api.request(
        'POST',
        `/apis/discovery.k8s.io/v1/namespaces/${SYSTEM}/endpointslices`,
        {
          body: {
            apiVersion: 'discovery.k8s.io/v1',
            kind: 'EndpointSlice',
            metadata: {
              name: 'hoist-mirror-peers-abc',
              labels: { 'kubernetes.io/service-name': 'hoist-mirror-peers' },
            },
            addressType: 'IPv4',
            ports: [{ name: 'http', port, protocol: 'TCP' }],
            endpoints: [
              { addresses: ['10.244.1.5'], nodeName: 'gpu-1', conditions: { ready: true } },
              { addresses: ['10.244.2.5'], nodeName: 'gpu-2', conditions: { ready: false } },
            ],
          },
        },
      );
      assert.equal(created.status, 201, created.body);
      const client = new KubeClient(await loadKubeConfig({ kubeconfig }), { userAgent: 'dashboard-test' });
      const stop = new AbortController();
      t.after(() => {
        stop.abort();
        client.close();
      });
      const cache = startMirrorCache({
        client,
        namespace: SYSTEM,
        service: 'hoist-mirror-peers',
        signal: stop.signal,
        scraper: { intervalMs: 200 },
        mapTarget: (target) => {
          assert.equal(target.url, `http://10.244.1.5:${port}`, 'only the ready endpoint');
          return { ...target, url: mirror.url };
        },
      });
      const replica = await startReplica(kubeconfig, 'replica-c', { cache });
      replicas.push(replica);
      const s = await eventually('the cache table shows gpu-1', async () => {
        const st = await state(replica.url);
        return st.cache?.length === 1 && st.bytes ? st : undefined;
      });
      assert.equal(s.cache![0]!.node, 'gpu-1');
      assert.equal(s.cache![0]!.error, undefined);
      assert.equal(s.cache![0]!.storeBytes, 0);
      assert.deepEqual(s.bytes, { upstream: 0, cache: 0 });
    },
  );

  it(
    "shows a loopback mirror's cache through its agent's NodePull status (no scrape source)",
    TIMEOUT,
    async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || kubeconfig === undefined) return;
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const api = kube();
      await makeNode(api, 'cache-1', { pool: 'cache' });
      // The chart's default node: the mirror on 127.0.0.1, read by the agent over its socket only.
      const node = await startMirroredNode(t, api, 'cache-1');
      // No cache source: the controller reads no mirror itself, as with a loopback node mirror.
      const replica = await startReplica(kubeconfig, 'replica-d');
      replicas.push(replica);
      await createPrePull(api, 'cached', [node.image.ref], 'cache');
      await eventually(
        'the agent pulled the image through the mirror',
        async () => {
          const np = (await nodePulls(api)).find((n) => n.metadata.name === 'cache-1');
          const phase = np?.status?.images?.[0]?.phase;
          if (phase === 'Failed') throw new Error(`pull failed: ${JSON.stringify(np?.status)}`);
          return phase === 'Succeeded' ? true : undefined;
        },
        180_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nagent log:\n${node.agent.stderr()}`);
      });
      // A second pull of the same image through the mirror: every blob a hit.
      const copy = await testTempDir(t, 'hoist-dashboard-copy-');
      await skopeoCopyToDir(
        `docker://${node.mirror.host}/${node.image.repo}@${node.image.digest}`,
        join(copy, 'out'),
      );

      // The mirror's own figures, now that it is quiet; the dashboard must come to show exactly these.
      const own = parseMirrorCacheFigures(await (await fetch(`${node.mirror.url}/metrics`)).text());
      assert.ok(
        own.blobHits >= 2 && own.servedBytes > 400_000 && own.upstreamBytes > 400_000,
        JSON.stringify(own),
      );
      const row = await eventually('the cache table shows the agent-read figures', async () => {
        const st = await state(replica.url);
        const r = st.cache?.find((c) => c.node === 'cache-1');
        return r && r.servedBytes === own.servedBytes && r.hitRatio === own.blobHits / own.blobLookups
          ? { st, r }
          : undefined;
      }).catch(async (err: Error) => {
        throw new Error(`${err.message}; last state: ${JSON.stringify((await state(replica.url)).cache)}`);
      });
      assert.deepEqual(
        {
          source: row.r.source,
          storeBytes: row.r.storeBytes,
          servedBytes: row.r.servedBytes,
          upstreamBytes: row.r.upstreamBytes,
          hitRatio: row.r.hitRatio,
        },
        {
          source: 'agent',
          storeBytes: own.storeBytes,
          servedBytes: own.servedBytes,
          upstreamBytes: own.upstreamBytes,
          hitRatio: own.blobHits / own.blobLookups,
        },
      );
      assert.ok(row.r.hitRatio! > 0, 'the second pull hit the cache');
      assert.ok(row.st.bytes && row.st.bytes.cache > 0, 'bytes from cache show in the totals');

      // The API server holds the field as the agent wrote it, within the CRD's schema...
      const np = (await nodePulls(api)).find((n) => n.metadata.name === 'cache-1') as NodePull;
      assert.equal(np.status?.mirror?.blobHits, own.blobHits);
      assert.match(np.status?.mirror?.observedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // ...and refuses figures that cannot be true.
      for (const [bad, why] of [
        [{ ...np.status!.mirror, blobHits: own.blobLookups + 1 }, /blobHits cannot exceed blobLookups/],
        [{ ...np.status!.mirror, servedBytes: -1 }, /servedBytes.*greater than or equal to 0/],
        [{ storeBytes: 1 }, /Required value/],
      ] as const) {
        const r = await api.kubectl([
          'patch',
          'nodepull',
          'cache-1',
          '--subresource=status',
          // A JSON patch replaces the whole field (a merge patch would keep the fields left out).
          '--type=json',
          '-p',
          JSON.stringify([{ op: 'replace', path: '/status/mirror', value: bad }]),
        ]);
        assert.notEqual(r.code, 0, `accepted ${JSON.stringify(bad)}`);
        assert.match(r.stderr, why);
      }
      assert.match(node.agent.stderr(), /watching the NodePull/, 'the log is the one we think it is');
      assert.doesNotMatch(
        node.agent.stderr(),
        /cannot read the node mirror/,
        'the socket answered every time',
      );
    },
  );

  it(
    'shows the mirror of a node no PrePull targets, in the dashboard and kubectl hoist status -o wide',
    TIMEOUT,
    async (t) => {
      if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || replicas.length === 0) return;
      if (!requirePeers(t, 'docker-registry', 'skopeo', 'containerd')) return;
      if (!requireRoot(t, 'containerd mounts snapshots')) return;
      const api = kube();
      // No PrePull selects pool=idle: the controller still keeps a NodePull there, empty.
      await makeNode(api, 'idle-1', { pool: 'idle' });
      const created = await eventually('an empty NodePull for idle-1', async () =>
        (await nodePulls(api)).find((n) => n.metadata.name === 'idle-1'),
      );
      assert.deepEqual(created.spec.images, []);
      assert.equal(created.metadata.ownerReferences?.[0]?.name, 'idle-1');
      const node = await startMirroredNode(t, api, 'idle-1');
      // Pods on the node pull through its mirror (containerd's hosts.toml): a miss, then a hit.
      const copy = await testTempDir(t, 'hoist-dashboard-idle-');
      for (const n of ['first', 'second'])
        await skopeoCopyToDir(
          `docker://${node.mirror.host}/${node.image.repo}@${node.image.digest}`,
          join(copy, n),
        );
      const own = parseMirrorCacheFigures(await (await fetch(`${node.mirror.url}/metrics`)).text());
      assert.ok(own.blobHits >= 2 && own.servedBytes > 800_000, JSON.stringify(own));

      // The agent writes its figures into the empty NodePull; the dashboard shows them.
      const replica = await startReplica(kubeconfig!, 'replica-e');
      replicas.push(replica);
      const st = await eventually('the cache table shows idle-1', async () => {
        const s = await state(replica.url);
        const r = s.cache?.find((c) => c.node === 'idle-1');
        return r?.servedBytes === own.servedBytes ? s : undefined;
      }).catch(async (err: Error) => {
        const np = (await nodePulls(api)).find((n) => n.metadata.name === 'idle-1');
        throw new Error(
          `${err.message}; NodePull: ${JSON.stringify(np)}\nagent log:\n${node.agent.stderr()}`,
        );
      });
      const row = st.cache!.find((c) => c.node === 'idle-1')!;
      assert.deepEqual(
        [row.source, row.storeBytes, row.upstreamBytes, row.hitRatio],
        ['agent', own.storeBytes, own.upstreamBytes, own.blobHits / own.blobLookups],
      );
      // It is no node of any PrePull: not in the matrix, not counted, no PrePull's target.
      assert.ok(!st.matrix.rows.some((r) => r.node === 'idle-1'), JSON.stringify(st.matrix.rows));
      assert.equal(st.counts.nodes, st.matrix.matchingNodes);
      const np = (await nodePulls(api)).find((n) => n.metadata.name === 'idle-1')!;
      assert.deepEqual(np.spec.images, [], 'still empty');
      assert.deepEqual(np.status?.images, [], 'the agent reported an empty spec');
      assert.deepEqual(np.status?.summary, { images: 0, pending: 0, pulling: 0, succeeded: 0, failed: 0 });
      assert.deepEqual(
        Object.fromEntries(st.prePulls.map((p) => [p.name, p.nodes.desired])),
        { gpu: 3, cached: 1 },
        'the pools gpu and cache only',
      );

      // kubectl hoist status -A -o wide lists its cache among every node's; -o json has the figures.
      const plugin = (args: string[]) =>
        run(process.execPath, [KUBECTL_HOIST, 'status', '-A', '--kubeconfig', api.adminKubeconfig, ...args]);
      const json = JSON.parse((await plugin(['-o', 'json'])).stdout) as {
        caches: Array<{ node: string; servedBytes: number; blobHits: number }>;
      };
      const cached = json.caches.find((c) => c.node === 'idle-1');
      assert.ok(cached, JSON.stringify(json.caches));
      assert.ok(cached.servedBytes >= own.servedBytes && cached.blobHits >= own.blobHits);
      const wide = (await plugin(['-o', 'wide'])).stdout;
      const table = wide.split('\n\n').find((part) => part.startsWith('NODE '));
      assert.match(
        table ?? '',
        new RegExp(`^idle-1 +\\S+ +${((own.blobHits / own.blobLookups) * 100).toFixed(1)}% `, 'm'),
        wide,
      );
    },
  );

  it('serves the page and refuses every method but GET and HEAD', TIMEOUT, async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || replicas.length === 0) return;
    const { url } = replicas[0]!;
    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const html = await page.text();
    assert.match(html, /id="initial-state"/);
    assert.doesNotMatch(html, /\b(src|href)=["']?(https?:)?\/\//, 'no external assets');
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      for (const path of ['/', '/api/v1/state', '/api/v1/events']) {
        const res = await fetch(`${url}${path}`, { method });
        assert.equal(res.status, 405, `${method} ${path}`);
        assert.equal(res.headers.get('allow'), 'GET, HEAD');
      }
    }
    const head = await fetch(`${url}/api/v1/events`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal((await fetch(`${url}/api/v1/nope`)).status, 404);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
  });
});
