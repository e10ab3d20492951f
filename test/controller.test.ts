// The PrePull controller against the real kube-apiserver and a real private docker-registry,
// running under exactly the RBAC rules of src/prepull/rbac.ts (a service account bound to them).
// No agents here: the test plays the agent by patching NodePull status. It checks targeting
// (selector, tolerated and untolerated taints), the stagger (never more than maxConcurrentNodes
// active), advancing on success, status folding (counts, failures, conditions,
// observedGeneration), edits (a node that stops matching, an image removed), digests resolved
// with the PrePull's pull secret, the mirrored Secret and its removal, and that of two
// controllers only the leader writes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { KubeClient, loadKubeConfig } from '../src/kube/index.js';
import {
  ControllerMetrics,
  DigestResolver,
  PrePullController,
  mirroredSecretName,
  summariseNodePullStatus,
  type NodePull,
  type NodePullImageStatus,
  type PrePull,
} from '../src/prepull/index.js';
import { HOIST_BIN } from './helpers/cri.js';
import { requireGoPeer } from './helpers/go-peers.js';
import { MEDIA_TYPES, buildImage, pushImage } from './helpers/images.js';
import { shareKubeApiServer, type KubeApiServer } from './helpers/kube.js';
import { removeTempDir, requirePeers, tempDir } from './helpers/peers.js';
import {
  eventually as eventuallyShared,
  makeNode,
  nodePulls as nodePullsOf,
  ok,
  prepareCluster,
  SYSTEM,
  TEAM,
  testControllerOptions,
} from './helpers/prepull-cluster.js';
import { fetchManifest, startRegistry, type RegistryPeer } from './helpers/registry.js';

const TIMEOUT = { timeout: 300_000 };
const USER = 'puller';
const PASSWORD = 'pre-pull:s3cret!';
const PREPULLS = `/apis/prepull.hoist.dev/v1alpha1/namespaces/${TEAM}/prepulls`;
const ALL_MANIFESTS = [
  MEDIA_TYPES.ociIndex,
  MEDIA_TYPES.ociManifest,
  MEDIA_TYPES.dockerManifestList,
  MEDIA_TYPES.dockerManifest,
];

interface Fixture {
  registry: RegistryPeer;
  work: string;
  app: string;
  multi: string;
  appDigest: string;
  multiDigest: string;
  saKubeconfig: string;
}

/** The controllers' log lines (pino JSON), for failure messages and the no-secrets check. */
const logLines: string[] = [];

/** `eventually` that adds the controllers' last log lines to its failure. */
const eventually = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs?: number) =>
  eventuallyShared(
    what,
    probe,
    timeoutMs,
    () => `controller log (last lines):\n${logLines.slice(-40).join('\n')}`,
  );

/** Equal as JSON (key order aside). */
function deepEqualJson(a: unknown, b: unknown): boolean {
  try {
    assert.deepEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

describe('PrePull controller against kube-apiserver', TIMEOUT, () => {
  const kube = shareKubeApiServer();
  let fx: Fixture | undefined;
  const controllers: Array<{
    stop: AbortController;
    done: Promise<void>;
    metrics: ControllerMetrics;
    controller: PrePullController;
    client: KubeClient;
  }> = [];

  /** Starts a controller in-process with the service-account kubeconfig. */
  async function startController(identity: string) {
    const config = await loadKubeConfig({ kubeconfig: fx!.saKubeconfig });
    const client = new KubeClient(config, { userAgent: `hoist-controller-${identity}` });
    const metrics = new ControllerMetrics();
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    });
    const controller = new PrePullController({
      client,
      ...testControllerOptions(identity),
      logger: pino({ level: 'debug', base: { identity } }, sink),
      metrics,
      resolver: new DigestResolver(),
    });
    const stop = new AbortController();
    const done = controller.run(stop.signal);
    const handle = { stop, done, metrics, controller, client };
    controllers.push(handle);
    return handle;
  }

  async function writes(metrics: ControllerMetrics, result = 'ok'): Promise<number> {
    const m = await metrics.writes.get();
    return m.values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
  }

  const api = (): KubeApiServer => kube();
  const get = async <T>(path: string): Promise<T | undefined> => {
    const r = await api().request('GET', path);
    return r.status === 200 ? (r.json as T) : undefined;
  };
  const nodePulls = () => nodePullsOf(api());
  /** The NodePulls with work: every node has one, empty where no PrePull has work for it. */
  const withWork = (list: NodePull[]) => list.filter((n) => n.spec.images.length > 0);
  const prePull = (name: string) => get<PrePull>(`${PREPULLS}/${name}`);
  const node = (name: string, labels: Record<string, string>, taints: unknown[] = []) =>
    makeNode(api(), name, labels, taints);

  /** The agent's part: a status for each spec image of a NodePull. */
  async function report(
    name: string,
    phase: (image: string) => Partial<NodePullImageStatus> & Pick<NodePullImageStatus, 'phase'>,
  ) {
    const np = (await nodePulls()).find((n) => n.metadata.name === name);
    assert.ok(np, `NodePull ${name} exists`);
    const images = np.spec.images.map((e) => ({
      image: e.image,
      ...(e.digest ? { digest: e.digest } : {}),
      attempts: 1,
      ...phase(e.image),
    }));
    const r = await api().kubectl([
      'patch',
      'nodepull',
      name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { observedGeneration: 1, images, summary: summariseNodePullStatus(images) } }),
    ]);
    assert.equal(r.code, 0, r.stderr);
  }

  /** Active = the spec holds the PrePull's images and the agent has not finished them all. */
  function assertAtMostActive(nps: NodePull[], max: number) {
    const active = nps.filter((np) => {
      const done = new Map((np.status?.images ?? []).map((s) => [s.image, s.phase]));
      return np.spec.images.some((e) => done.get(e.image) !== 'Succeeded' && done.get(e.image) !== 'Failed');
    });
    assert.ok(
      active.length <= max,
      `${active.length} NodePulls active, more than ${max}: ${active.map((n) => n.metadata.name).join(', ')}`,
    );
  }

  before(async () => {
    try {
      api();
    } catch {
      return; // peers not built: tests skip through requireGoPeer
    }
    const work = await tempDir('hoist-controller');
    const registry = await startRegistry({ htpasswd: { username: USER, password: PASSWORD } });
    const creds = `${USER}:${PASSWORD}`;
    const appImage = await buildImage(join(work, 'app'), {
      tag: 'v1',
      layers: [{ files: [{ path: 'a.txt', content: 'app\n' }] }],
    });
    await pushImage(appImage.dir, 'v1', `${registry.host}/test/app:v1`, { creds });
    const multiImage = await buildImage(join(work, 'multi'), {
      tag: 'v1',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layers: [{ files: [{ path: 'm.txt', content: 'multi\n' }] }],
    });
    await pushImage(multiImage.dir, 'v1', `${registry.host}/test/multi:v1`, { all: true, creds });
    const login = { username: USER, password: PASSWORD };
    const appHead = await fetchManifest(registry, 'test/app', 'v1', ALL_MANIFESTS, login);
    const multiHead = await fetchManifest(registry, 'test/multi', 'v1', ALL_MANIFESTS, login);
    assert.equal(multiHead.contentType, MEDIA_TYPES.ociIndex);

    const saKubeconfig = await prepareCluster(api());
    const dockerconfig = {
      auths: { [registry.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } },
    };
    await ok(
      api().request('POST', `/api/v1/namespaces/${TEAM}/secrets`, {
        body: {
          metadata: { name: 'regcred' },
          type: 'kubernetes.io/dockerconfigjson',
          data: { '.dockerconfigjson': Buffer.from(JSON.stringify(dockerconfig)).toString('base64') },
        },
      }),
      'pull secret',
    );
    fx = {
      registry,
      work,
      app: `${registry.host}/test/app:v1`,
      multi: `${registry.host}/test/multi:v1`,
      appDigest: appHead.digest,
      multiDigest: multiHead.digest,
      saKubeconfig,
    };
  });

  after(async () => {
    for (const c of controllers) c.stop.abort();
    await Promise.all(controllers.map((c) => c.done.catch(() => {})));
    for (const c of controllers) c.client.close();
    await fx?.registry.stop();
    if (fx) await removeTempDir(fx.work);
  });

  it('creates NodePulls only for selected, tolerated nodes, at most maxConcurrentNodes, with resolved digests', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl')) return;
    if (!requirePeers(t, 'docker-registry', 'skopeo', 'htpasswd')) return;
    await node('gpu-1', { pool: 'gpu' });
    await node('gpu-2', { pool: 'gpu' }, [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }]);
    await node('gpu-3', { pool: 'gpu' }, [{ key: 'broken', effect: 'NoExecute' }]);
    await node('gpu-4', { pool: 'gpu' }, [{ key: 'spot', effect: 'PreferNoSchedule' }]);
    await node('cpu-1', { pool: 'cpu' });
    const a = await startController('controller-a');
    await eventually('controller-a leads', async () =>
      a.controller.isLeader && a.controller.ready ? true : undefined,
    );
    await ok(
      api().request('POST', PREPULLS, {
        body: {
          apiVersion: 'prepull.hoist.dev/v1alpha1',
          kind: 'PrePull',
          metadata: { name: 'gpu' },
          spec: {
            images: [fx!.app, fx!.multi],
            imagePullSecrets: [{ name: 'regcred' }],
            nodeSelector: { pool: 'gpu' },
            tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml', effect: 'NoSchedule' }],
            maxConcurrentNodes: 2,
          },
        },
      }),
      'PrePull',
    );

    const all = await eventually('two NodePulls with work, and one for every node', async () => {
      const list = await nodePulls();
      return withWork(list).length >= 2 && list.length === 5 ? list : undefined;
    });
    const nps = withWork(all);
    assert.deepEqual(
      nps.map((n) => n.metadata.name),
      ['gpu-1', 'gpu-2'],
      'targets in name order: gpu-3 (NoExecute not tolerated) and cpu-1 (not selected) never',
    );
    // The others have an empty NodePull, owned by their Node, for their agents to report into.
    const idle = all.filter((n) => n.spec.images.length === 0);
    assert.deepEqual(
      idle.map((n) => [n.metadata.name, n.spec.nodeName, n.metadata.ownerReferences?.[0]?.name]),
      [
        ['cpu-1', 'cpu-1', 'cpu-1'],
        ['gpu-3', 'gpu-3', 'gpu-3'],
        ['gpu-4', 'gpu-4', 'gpu-4'],
      ],
    );
    const secret = mirroredSecretName({ metadata: { name: 'gpu', namespace: TEAM } });
    const entries = Object.fromEntries(nps[0]!.spec.images.map((e) => [e.image, e]));
    assert.equal(entries[fx!.app]?.digest, fx!.appDigest);
    assert.equal(entries[fx!.multi]?.digest, fx!.multiDigest, 'a multi-arch image resolves to its index');
    assert.deepEqual(entries[fx!.app]?.pullSecrets, [secret]);
    assert.deepEqual(entries[fx!.app]?.sources, [`${TEAM}/gpu`]);
    assert.equal(nps[0]!.metadata.ownerReferences?.[0]?.kind, 'Node');
    const mirrored = await get<{ data: Record<string, string>; type: string }>(
      `/api/v1/namespaces/${SYSTEM}/secrets/${secret}`,
    );
    assert.equal(mirrored?.type, 'kubernetes.io/dockerconfigjson');
    assert.match(
      Buffer.from(mirrored!.data['.dockerconfigjson']!, 'base64').toString(),
      new RegExp(fx!.registry.host.replace(/\./g, '\\.')),
    );

    const status = await eventually('status with 2 pulling', async () => {
      const p = await prePull('gpu');
      return p?.status?.nodes?.pulling === 2 ? p.status : undefined;
    });
    assert.deepEqual(status.nodes, { desired: 3, pulling: 2, succeeded: 0, failed: 0 });
    assert.equal(status.observedGeneration, 1);
    assert.equal(status.imageCount, 2);
    assert.deepEqual(
      status.images?.map((i) => [i.image, i.digest]),
      [
        [fx!.app, fx!.appDigest],
        [fx!.multi, fx!.multiDigest],
      ],
    );
    const progressing = status.conditions?.find((c) => c.type === 'Progressing');
    assert.equal(progressing?.status, 'True');
    assertAtMostActive(await nodePulls(), 2);
  });

  it('advances as nodes succeed and folds results, failures included, into the status', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    await report('gpu-1', () => ({ phase: 'Succeeded' }));
    const third = await eventually('gpu-4 starts after gpu-1 is done', async () => {
      const list = await nodePulls();
      assertAtMostActive(list, 2);
      return withWork(list).some((n) => n.metadata.name === 'gpu-4') ? withWork(list) : undefined;
    });
    assert.deepEqual(
      third.map((n) => n.metadata.name),
      ['gpu-1', 'gpu-2', 'gpu-4'],
    );
    await report('gpu-2', (image) =>
      image === fx!.multi
        ? { phase: 'Failed', reason: 'NotFound', message: 'manifest unknown' }
        : { phase: 'Succeeded' },
    );
    await report('gpu-4', () => ({ phase: 'Succeeded' }));
    const status = await eventually('all nodes done', async () => {
      const p = await prePull('gpu');
      return p?.status?.nodes?.pulling === 0 && p.status.nodes.succeeded === 2 ? p.status : undefined;
    });
    assert.deepEqual(status.nodes, { desired: 3, pulling: 0, succeeded: 2, failed: 1 });
    const multi = status.images?.find((i) => i.image === fx!.multi);
    assert.deepEqual(multi?.failures, [{ node: 'gpu-2', reason: 'NotFound', message: 'manifest unknown' }]);
    assert.deepEqual([multi?.succeeded, multi?.failed], [2, 1]);
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason, ready?.observedGeneration], ['False', 'Failed', 1]);
  });

  it('drops a node that stops matching', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    const r = await api().kubectl(['label', 'node', 'gpu-4', 'pool=cpu', '--overwrite']);
    assert.equal(r.code, 0, r.stderr);
    await eventually('gpu-4 NodePull emptied, not deleted', async () =>
      (await nodePulls()).find((n) => n.metadata.name === 'gpu-4')?.spec.images.length === 0
        ? true
        : undefined,
    );
    const status = await eventually('desired 2', async () => {
      const p = await prePull('gpu');
      return p?.status?.nodes?.desired === 2 ? p.status : undefined;
    });
    assert.deepEqual(status.nodes, { desired: 2, pulling: 0, succeeded: 1, failed: 1 });
  });

  it('removes an image edited out, and says Ready once every remaining pull succeeded', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    const r = await api().kubectl([
      'patch',
      'prepull',
      'gpu',
      '-n',
      TEAM,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { images: [fx.app] } }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    await eventually('the multi image leaves every NodePull', async () => {
      const list = withWork(await nodePulls());
      return list.length === 2 &&
        list.every((n) => n.spec.images.length === 1 && n.spec.images[0]!.image === fx!.app)
        ? true
        : undefined;
    });
    const status = await eventually('generation 2 observed', async () => {
      const p = await prePull('gpu');
      return p?.status?.observedGeneration === 2 ? p.status : undefined;
    });
    assert.equal(status.imageCount, 1);
    assert.deepEqual(status.nodes, { desired: 2, pulling: 0, succeeded: 2, failed: 0 });
    const ready = status.conditions?.find((c) => c.type === 'Ready');
    assert.deepEqual([ready?.status, ready?.reason, ready?.observedGeneration], ['True', 'Pulled', 2]);

    // Converged: a pass woken by a change that alters nothing (an annotation) writes nothing.
    const leader = controllers[0]!;
    await eventually('statuses settled', async () => {
      const p = await prePull('gpu');
      return deepEqualJson(p?.status, status) ? true : undefined;
    });
    const passes = async () =>
      (await leader.metrics.reconciles.get()).values.reduce((n, v) => n + v.value, 0);
    const before = { writes: await writes(leader.metrics), passes: await passes() };
    const a = await api().kubectl(['annotate', 'prepull', 'gpu', '-n', TEAM, 'example.com/touched=1']);
    assert.equal(a.code, 0, a.stderr);
    await eventually('a pass after the annotation', async () =>
      (await passes()) > before.passes ? true : undefined,
    );
    assert.equal(await writes(leader.metrics), before.writes, 'a converged pass writes nothing');
  });

  it('with two controllers only the leader writes; the other takes over when it stops', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    const [a] = controllers;
    assert.ok(a);
    const b = await startController('controller-b');
    const lease = await eventually('the Lease names controller-a', async () => {
      const l = await get<{ spec: { holderIdentity?: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM}/leases/hoist-controller`,
      );
      return l?.spec.holderIdentity === 'controller-a' ? l : undefined;
    });
    assert.ok(lease);
    await node('gpu-5', { pool: 'gpu' });
    await eventually('the leader starts gpu-5', async () =>
      withWork(await nodePulls()).some((n) => n.metadata.name === 'gpu-5') ? true : undefined,
    );
    assert.equal(b.controller.isLeader, false);
    assert.equal(await writes(b.metrics), 0, 'the standby wrote nothing');
    assert.equal(await writes(b.metrics, 'error'), 0);

    a.stop.abort();
    await a.done;
    await eventually('controller-b leads', async () =>
      b.controller.isLeader && b.controller.ready ? true : undefined,
    );
    await report('gpu-5', () => ({ phase: 'Succeeded' }));
    await node('gpu-6', { pool: 'gpu' });
    await eventually('the new leader starts gpu-6', async () =>
      withWork(await nodePulls()).some((n) => n.metadata.name === 'gpu-6') ? true : undefined,
    );
    assert.ok((await writes(b.metrics)) > 0, 'the new leader writes');
    assert.equal(await writes(a.metrics, 'error'), 0, 'every write was allowed by the RBAC rules');
    assert.equal(await writes(b.metrics, 'error'), 0);
  });

  it('empties the NodePulls and deletes the mirrored secret when the PrePull goes, and never logs the secret', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    const secret = mirroredSecretName({ metadata: { name: 'gpu', namespace: TEAM } });
    const r = await api().kubectl(['delete', 'prepull', 'gpu', '-n', TEAM]);
    assert.equal(r.code, 0, r.stderr);
    // Every node keeps its NodePull, empty (no garbage collector runs here: the controller itself
    // deletes the NodePull of a Node that is gone).
    const nodeCount = async () => ((await get<{ items: unknown[] }>('/api/v1/nodes'))?.items ?? []).length;
    await eventually('every NodePull empty, one per node', async () => {
      const list = await nodePulls();
      return list.length === (await nodeCount()) && withWork(list).length === 0 ? true : undefined;
    });
    assert.equal((await api().kubectl(['delete', 'node', 'cpu-1'])).code, 0);
    await eventually("the gone Node's NodePull deleted", async () =>
      (await nodePulls()).some((n) => n.metadata.name === 'cpu-1') ? undefined : true,
    );
    assert.equal((await nodePulls()).length, await nodeCount());
    await eventually('mirrored secret gone', async () =>
      (await api().request('GET', `/api/v1/namespaces/${SYSTEM}/secrets/${secret}`)).status === 404
        ? true
        : undefined,
    );
    assert.equal((await api().request('GET', `/api/v1/namespaces/${TEAM}/secrets/regcred`)).status, 200);
    const logs = logLines.join('\n');
    assert.ok(logs.length > 0);
    assert.ok(!logs.includes(PASSWORD), 'the password is in the logs');
    assert.ok(
      !logs.includes(Buffer.from(`${USER}:${PASSWORD}`).toString('base64')),
      'the auth string is in the logs',
    );
  });

  it('runs as `hoist controller`: leads, serves /readyz and /metrics, gives the Lease up on SIGTERM', async (t) => {
    if (!requireGoPeer(t, 'kube-apiserver', 'etcd', 'kubectl') || fx === undefined) return;
    if (!existsSync(join(HOIST_BIN, '../../dist/cli/controller.js'))) {
      t.skip('dist/ is not built (npx tsc -p tsconfig.build.json)');
      return;
    }
    // The in-process replicas step down first; this one takes the same Lease.
    for (const c of controllers) c.stop.abort();
    await Promise.all(controllers.map((c) => c.done));
    const args = [
      'controller',
      '--kubeconfig',
      fx.saKubeconfig,
      '--namespace',
      SYSTEM,
      '--identity',
      'cli-replica',
    ];
    const child = spawn(
      process.execPath,
      [HOIST_BIN, ...args, '--listen', '127.0.0.1:0', '--log-level', 'debug'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', r));
    try {
      const url = await eventually(
        'listening line',
        async () => /^listening on (http:\/\/\S+)$/m.exec(stdout)?.[1],
      );
      await eventually('the CLI replica holds the Lease', async () => {
        const l = await get<{ spec: { holderIdentity?: string } }>(
          `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM}/leases/hoist-controller`,
        );
        return l?.spec.holderIdentity === 'cli-replica' ? true : undefined;
      });
      await eventually('ready', async () =>
        (await fetch(`${url}/readyz`)).status === 200 ? true : undefined,
      );
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, /^hoist_controller_leader 1$/m);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    const lease = await get<{ spec: { holderIdentity?: string } }>(
      `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM}/leases/hoist-controller`,
    );
    assert.notEqual(lease?.spec.holderIdentity, 'cli-replica', 'the Lease is released on the way out');
    assert.ok(!stderr.includes(PASSWORD));
  });
});
