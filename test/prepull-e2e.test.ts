// PrePull end to end, as a cluster runs it: the real kube-apiserver with Hoist's CRDs and the
// install's own RBAC, two `hoist controller` replicas (one leads), three nodes each with its own
// containerd 2.x and `hoist agent` (Node objects made here, a NoSchedule taint on one), one Hoist
// mirror in front of a real docker-registry. It shows: maxConcurrentNodes: 1 never has two nodes
// pulling at once (from the agents' own records), the tainted node is reached only once tolerated,
// pinned images are reported pinned by CRI, a scheduled PrePull pulls a tag that moved upstream at
// its next run, and killing the leader hands over without pulling anything twice.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import type { NodePull } from '../src/agent/index.js';
import { buildInstall, DEFAULT_VALUES } from '../src/install/index.js';
import { startCriNode, startHoist, type LongRunning } from './helpers/cri.js';
import type { ContainerdPeer } from './helpers/containerd.js';
import type { CriClient } from '../src/cri/index.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { buildImage, pushImage, type BuiltImage } from './helpers/images.js';
import { startKubeApiServer, type KubeApiServer } from './helpers/kube.js';
import { startMirror } from './helpers/mirror.js';
import { mirrorFlags } from './helpers/mirrored-node.js';
import { requirePeers, requireRoot, testTempDir } from './helpers/peers.js';
import { waitUntil } from './helpers/process.js';
import { startRegistry } from './helpers/registry.js';

const NAMESPACE = 'hoist-system';
const TEAM = 'ml';
const GROUP = '/apis/prepull.hoist.dev/v1alpha1';
const CRDS = ['prepulls', 'nodepulls'].map(
  (p) => new URL(`../deploy/crds/prepull.hoist.dev_${p}.yaml`, import.meta.url).pathname,
);
const GPU_TAINT = { key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' };
const RBAC_KINDS = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

interface PrePullStatus {
  observedGeneration?: number;
  nodes?: { desired: number; pulling: number; succeeded: number; failed: number };
  images?: Array<{ image: string; digest?: string; desired: number; succeeded: number; failed: number }>;
  conditions?: Array<{ type: string; status: string }>;
  lastScheduleTime?: string;
  nextScheduleTime?: string;
}
interface PrePullObject {
  metadata: { name: string; generation?: number };
  status?: PrePullStatus;
}

interface TestNode {
  name: string;
  ctd: ContainerdPeer;
  cri: CriClient;
  agent: LongRunning;
}

async function kubectlOk(kube: KubeApiServer, args: string[], input?: string): Promise<string> {
  const res = await kube.kubectl(args, input === undefined ? {} : { input });
  assert.equal(res.code, 0, `kubectl ${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

const apply = (kube: KubeApiServer, obj: unknown) =>
  kubectlOk(kube, ['apply', '--server-side', '--force-conflicts', '-f', '-'], JSON.stringify(obj));

async function getJson<T>(kube: KubeApiServer, path: string): Promise<T | undefined> {
  const res = await kube.request('GET', path);
  if (res.status === 404) return undefined;
  assert.equal(res.status, 200, `GET ${path}: ${res.body}`);
  return res.json as T;
}

const prePull = (kube: KubeApiServer, name: string) =>
  getJson<PrePullObject>(kube, `${GROUP}/namespaces/${TEAM}/prepulls/${name}`);
const nodePull = (kube: KubeApiServer, name: string) => getJson<NodePull>(kube, `${GROUP}/nodepulls/${name}`);

function ready(p: PrePullObject | undefined): boolean {
  return (
    p?.status?.observedGeneration === p?.metadata.generation &&
    p?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true
  );
}

/** Waits on the API with a failure message that shows the state and every process's log. */
async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  explain: () => Promise<string>,
  timeoutMs = 240_000,
): Promise<void> {
  try {
    await waitUntil(what, check, { timeoutMs, intervalMs: 250 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await explain()}`);
  }
}

/** [first start, last finish] of the images a node pulled, from its agent's NodePull status. */
function pullWindow(np: NodePull | undefined, images: string[]): { start: number; end: number } | undefined {
  const entries = (np?.status?.images ?? []).filter((i) => images.includes(i.image));
  if (entries.length === 0) return undefined;
  const starts = entries.map((e) => Date.parse(e.startedAt ?? ''));
  const ends = entries.map((e) => Date.parse(e.finishedAt ?? ''));
  assert.ok([...starts, ...ends].every(Number.isFinite), `timestamps in ${JSON.stringify(entries)}`);
  return { start: Math.min(...starts), end: Math.max(...ends) };
}

function peersReady(t: TestContext): boolean {
  if (!requirePeers(t, 'docker-registry', 'skopeo', 'umoci', 'runc')) return false;
  if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl', 'containerd2', 'ctr2')) return false;
  return requireRoot(t, 'containerd mounts snapshots');
}

describe('PrePull end to end', () => {
  it(
    'staggers, tolerates, pins, follows a schedule and survives losing its leader',
    { timeout: 900_000 },
    async (t) => {
      if (!peersReady(t)) return;
      const work = await testTempDir(t, 'hoist-e2e-');
      const kube = await startKubeApiServer();
      t.after(() => kube.stop());

      // The install's own CRDs and RBAC: the controllers and agents run under exactly these.
      await kubectlOk(kube, ['create', 'namespace', NAMESPACE]);
      await kubectlOk(kube, ['create', 'namespace', TEAM]);
      for (const crd of CRDS) await kubectlOk(kube, ['apply', '-f', crd]);
      await kubectlOk(kube, ['wait', '--for', 'condition=Established', '--timeout', '60s', 'crd', '--all']);
      const rbac = buildInstall(DEFAULT_VALUES, { namespace: NAMESPACE }).filter((o) =>
        RBAC_KINDS.has(o.kind),
      );
      await kubectlOk(
        kube,
        ['apply', '-f', '-'],
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
      );
      const controllerKubeconfig = await kube.serviceAccountKubeconfig(NAMESPACE, 'hoist-controller');
      const agentKubeconfig = await kube.serviceAccountKubeconfig(NAMESPACE, 'hoist-agent');

      // Upstream: docker-registry with three images; one Hoist mirror in front of it.
      const registry = await startRegistry();
      t.after(() => registry.stop());
      const build = (name: string, tag: string, seed: string): Promise<BuiltImage> =>
        buildImage(join(work, `${name}-${seed}`), {
          tag,
          layers: [
            { files: [{ path: `${name}/base.bin`, size: 400_000, seed: `${name}-base` }] },
            { files: [{ path: `${name}/${seed}.bin`, size: 300_000, seed }] },
          ],
        });
      const ref = (name: string, tag: string) => `${registry.host}/team/${name}:${tag}`;
      const model = await build('model', 'v1', 'model-v1');
      const runtime = await build('runtime', 'v1', 'runtime-v1');
      const nightlyV1 = await build('nightly', 'latest', 'nightly-1');
      await pushImage(model.dir, 'v1', ref('model', 'v1'));
      await pushImage(runtime.dir, 'v1', ref('runtime', 'v1'));
      await pushImage(nightlyV1.dir, 'latest', ref('nightly', 'latest'));
      // tagTtlSeconds 0: the mirror re-checks a tag at every request, so it sees the moved tag at
      // once (a real mirror's TTL would delay the scheduled re-pull by up to that TTL).
      const mirror = await startMirror({ [registry.host]: registry.url }, { file: { tagTtlSeconds: 0 } });
      t.after(() => mirror.close());

      // Three nodes: containerd 2.x (CRI reports pins) and an agent each; node-3 is tainted.
      const nodes: TestNode[] = [];
      for (const name of ['node-1', 'node-2', 'node-3']) {
        const tainted = name === 'node-3';
        await apply(kube, {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name, labels: { 'kubernetes.io/hostname': name, pool: 'gpu' } },
        });
        // As a Ready kubelet leaves it: the API server taints a new Node not-ready:NoSchedule
        // (TaintNodesByCondition) and no node lifecycle controller runs here to lift it.
        await kubectlOk(kube, [
          'patch',
          'node',
          name,
          '--type=merge',
          '-p',
          JSON.stringify({ spec: { taints: tainted ? [GPU_TAINT] : [] } }),
        ]);
        const { ctd, cri, endpoint } = await startCriNode(t, { flavor: '2.x' });
        const agent = startHoist([
          'agent',
          '--runtime-endpoint',
          endpoint,
          '--listen',
          '127.0.0.1:0',
          '--kubeconfig',
          agentKubeconfig,
          '--node-name',
          name,
          '--namespace',
          NAMESPACE,
          ...mirrorFlags(mirror.url, registry, ctd),
          '--disk-high-water',
          'none',
        ]);
        t.after(() => agent.stop());
        await agent.url;
        nodes.push({ name, ctd, cri, agent });
      }
      const controllers = new Map<string, LongRunning>();
      for (const identity of ['controller-a', 'controller-b']) {
        const c = startHoist([
          'controller',
          '--kubeconfig',
          controllerKubeconfig,
          '--namespace',
          NAMESPACE,
          '--identity',
          identity,
          '--listen',
          '127.0.0.1:0',
          '--resync-seconds',
          '5',
        ]);
        t.after(() => c.stop());
        await c.url;
        controllers.set(identity, c);
      }
      const explain = async () =>
        [
          `prepulls: ${(await kubectlOk(kube, ['get', 'prepulls', '-A', '-o', 'yaml']).catch(String)).slice(0, 6000)}`,
          `nodepulls: ${(await kubectlOk(kube, ['get', 'nodepulls', '-o', 'yaml']).catch(String)).slice(0, 6000)}`,
          ...[...controllers].map(([id, c]) => `${id}:\n${c.stderr().slice(-4000)}`),
          ...nodes.map((n) => `${n.name} agent:\n${n.agent.stderr().slice(-3000)}`),
        ].join('\n');

      // 1. Two images on the gpu pool, one node at a time, pinned; node-3's taint is not tolerated.
      const images = [ref('model', 'v1'), ref('runtime', 'v1')];
      await apply(kube, {
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'PrePull',
        metadata: { name: 'models', namespace: TEAM },
        spec: { images, nodeSelector: { pool: 'gpu' }, maxConcurrentNodes: 1, pin: true },
      });
      await waitFor(
        'PrePull models Ready on the untainted nodes',
        async () => {
          const p = await prePull(kube, 'models');
          return ready(p) && p?.status?.nodes?.succeeded === 2;
        },
        explain,
      );
      const status = (await prePull(kube, 'models'))!.status!;
      assert.deepEqual(status.nodes, { desired: 2, pulling: 0, succeeded: 2, failed: 0 });
      assert.deepEqual(
        status.images?.map((i) => [i.image, i.digest, i.succeeded]),
        [
          [images[0], model.digest, 2],
          [images[1], runtime.digest, 2],
        ],
      );
      assert.equal(
        (await nodePull(kube, 'node-3'))?.spec?.images?.length ?? 0,
        0,
        'the tainted node gets nothing while its taint is not tolerated',
      );
      assert.equal(await nodes[2]!.cri.imageStatus(images[0]!), undefined);

      // The agents' own records: the two nodes' pull windows never overlap.
      const windows = await Promise.all(
        nodes.slice(0, 2).map(async (n) => pullWindow(await nodePull(kube, n.name), images)),
      );
      const [w1, w2] = windows;
      assert.ok(w1 && w2, JSON.stringify(windows));
      assert.ok(
        w1.end <= w2.start || w2.end <= w1.start,
        `two nodes pulled at once: ${JSON.stringify(windows)}`,
      );

      // Pinned, as the kubelet's image GC sees it (CRI ListImages), on both nodes.
      for (const n of nodes.slice(0, 2)) {
        const listed = await n.cri.listImages();
        for (const image of images) {
          const found = listed.find((i) => i.repoTags.includes(image));
          assert.equal(found?.pinned, true, `${image} pinned on ${n.name}: ${JSON.stringify(found)}`);
        }
      }

      // 2. Tolerating the GPU taint reaches node-3.
      await kubectlOk(kube, [
        'patch',
        'prepull',
        'models',
        '-n',
        TEAM,
        '--type',
        'merge',
        '-p',
        JSON.stringify({
          spec: { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] },
        }),
      ]);
      await waitFor(
        'node-3 reached once the taint is tolerated',
        async () => {
          const p = await prePull(kube, 'models');
          return ready(p) && p?.status?.nodes?.succeeded === 3;
        },
        explain,
      );
      for (const image of images) assert.equal((await nodes[2]!.cri.imageStatus(image))?.pinned, true);

      // 3. A scheduled PrePull re-resolves its tag at every run and pulls what moved.
      const nightly = ref('nightly', 'latest');
      await apply(kube, {
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'PrePull',
        metadata: { name: 'nightly', namespace: TEAM },
        spec: {
          images: [nightly],
          schedule: '* * * * *',
          timeZone: 'UTC',
          maxConcurrentNodes: '100%',
          tolerations: [{ operator: 'Exists' }],
        },
      });
      const nightlyOn = async (digest: string) => {
        const p = await prePull(kube, 'nightly');
        if (!ready(p) || p?.status?.images?.[0]?.digest !== digest) return false;
        for (const n of nodes) {
          const found = await n.cri.imageStatus(nightly);
          if (!found?.repoDigests.some((d) => d.endsWith(`@${digest}`))) return false;
        }
        return true;
      };
      await waitFor('the nightly image on every node', () => nightlyOn(nightlyV1.digest), explain, 150_000);
      const firstRun = (await prePull(kube, 'nightly'))!.status!;
      assert.ok(firstRun.lastScheduleTime && firstRun.nextScheduleTime, JSON.stringify(firstRun));

      const nightlyV2 = await build('nightly', 'latest', 'nightly-2');
      await pushImage(nightlyV2.dir, 'latest', nightly);
      assert.notEqual(nightlyV2.digest, nightlyV1.digest);
      await waitFor(
        'the moved tag pulled at the next run',
        () => nightlyOn(nightlyV2.digest),
        explain,
        150_000,
      );
      const secondRun = (await prePull(kube, 'nightly'))!.status!;
      assert.ok(Date.parse(secondRun.lastScheduleTime!) > Date.parse(firstRun.lastScheduleTime!));

      // 4. Kill the leader: the other replica takes over and pulls nothing twice.
      const lease = await getJson<{ spec: { holderIdentity?: string } }>(
        kube,
        `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/hoist-controller`,
      );
      const leader = lease?.spec.holderIdentity;
      assert.ok(leader && controllers.has(leader), `lease holder ${leader}`);
      const survivor = [...controllers.keys()].find((id) => id !== leader)!;
      const before = new Map<string, unknown>();
      for (const n of nodes) {
        const np = await nodePull(kube, n.name);
        for (const i of np?.status?.images ?? [])
          if (images.includes(i.image))
            before.set(`${n.name} ${i.image}`, [i.startedAt, i.attempts, i.imageId]);
      }
      assert.equal(before.size, 6);
      controllers.get(leader)!.child.kill('SIGKILL');
      await controllers.get(leader)!.exited;
      await waitFor(
        `${survivor} to take the lease`,
        async () =>
          (
            await getJson<{ spec: { holderIdentity?: string } }>(
              kube,
              `/apis/coordination.k8s.io/v1/namespaces/${NAMESPACE}/leases/hoist-controller`,
            )
          )?.spec.holderIdentity === survivor,
        explain,
        120_000,
      );
      // The new leader acts: a new PrePull for an image node-1 already holds becomes Ready...
      await apply(kube, {
        apiVersion: 'prepull.hoist.dev/v1alpha1',
        kind: 'PrePull',
        metadata: { name: 'after-handover', namespace: TEAM },
        spec: { images: [images[0]], nodeSelector: { 'kubernetes.io/hostname': 'node-1' } },
      });
      await waitFor(
        'the new leader to serve a new PrePull',
        async () => ready(await prePull(kube, 'after-handover')),
        explain,
      );
      // ...and a rescheduled run of the nightly image (the survivor's own) settles again.
      await waitFor(
        'nightly still settled under the new leader',
        () => nightlyOn(nightlyV2.digest),
        explain,
        150_000,
      );
      for (const n of nodes) {
        const np = await nodePull(kube, n.name);
        for (const i of np?.status?.images ?? []) {
          if (!images.includes(i.image)) continue;
          assert.deepEqual(
            [i.startedAt, i.attempts, i.imageId],
            before.get(`${n.name} ${i.image}`),
            `${n.name} pulled ${i.image} again after the handover`,
          );
        }
      }
      assert.ok(
        !controllers.get(survivor)!.stderr().includes('"level":50'),
        `the survivor logged errors:\n${controllers.get(survivor)!.stderr().slice(-3000)}`,
      );

      // `kubectl get prepulls` shows the printer columns.
      const table = await kubectlOk(kube, ['get', 'prepulls', '-n', TEAM]);
      assert.match(table.split('\n')[0] ?? '', /IMAGES\s+DESIRED\s+SUCCEEDED\s+FAILED\s+READY/);
      assert.match(table, /models\s+2\s+3\s+3\s+0\s+True/);
    },
  );
});
